"""The object store over fsspec: one adapter for ``memory://``, ``file://`` and ``s3://``."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs
import fsspec

from fittwin_adapters.objectstore.keys import RESERVED_FOLDER, check_object_key
from fittwin_core.domain import rules
from fittwin_core.domain.converter import structure, unstructure
from fittwin_core.domain.errors import (
    ConfigurationError,
    Conflict,
    FitTwinError,
    NotFound,
    StoreUnavailable,
    ValidationError,
)
from fittwin_core.ports import StoredObject

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_EXPIRES_IN = 7 * 24 * 3600
"""The longest a signed URL may live: S3's limit for SigV4 presigned URLs (7 days)."""

_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_FILE_PROTOCOLS = frozenset({"file", "local"})
# What file-like backends raise for "no object here" (a missing file, a folder, a file in the way).
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_SHA256_HEX = frozenset("0123456789abcdef")

_check_content_type = rules.text(
    max_len=255,
    pattern=r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;[ -~]*)?",
    rule="must be a media type such as model/gltf-binary",
)
_check_expires_in = rules.integer(ge=1, le=MAX_EXPIRES_IN)


def checksum(data: bytes) -> str:
    """The checksum the store records for ``data``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- locations


@attrs.frozen
class _Found:
    """What a backend knows about a stored object; ``None`` where it kept no record."""

    size: int
    content_type: str | None
    checksum: str | None


class _Records(Protocol):
    """How a kind of backend keeps content type and checksum, and which keys can coexist."""

    def upload_options(self, expected: StoredObject) -> dict[str, Any]: ...

    def check_room(self, location: _Location, key: str) -> None: ...

    def record(self, location: _Location, expected: StoredObject) -> None: ...

    def describe(self, location: _Location, key: str) -> _Found: ...

    def forget(self, location: _Location, key: str) -> None: ...


@attrs.frozen
class _Location:
    """Where one region's objects live: a filesystem and the root path inside it."""

    region: str | None
    protocol: str
    fs: Any
    root: str
    records: _Records

    def path(self, key: str) -> str:
        return f"{self.root}/{key}"

    @property
    def label(self) -> str:
        return "the default location" if self.region is None else f"region {self.region!r}"

    def __str__(self) -> str:
        return str(self.fs.unstrip_protocol(self.root))


def _is_file(fs: Any, path: str) -> bool:
    try:
        found = fs.info(path)
    except _MISSING:
        return False
    return bool(found.get("type") == "file")


def _remove(fs: Any, path: str) -> None:
    with contextlib.suppress(*_MISSING):
        fs.rm_file(path)
    fs.invalidate_cache(path)


class _ObjectMetadata:
    """S3: the content type and checksum travel with the object (``Content-Type`` and the user
    metadata ``x-amz-meta-sha256``); keys are flat, so ``a`` and ``a/b`` may both exist."""

    def upload_options(self, expected: StoredObject) -> dict[str, Any]:
        digest = expected.checksum.removeprefix("sha256:")
        return {"ContentType": expected.content_type, "Metadata": {"sha256": digest}}

    def check_room(self, location: _Location, key: str) -> None:
        return None

    def record(self, location: _Location, expected: StoredObject) -> None:
        return None

    def describe(self, location: _Location, key: str) -> _Found:
        bucket, object_key, _ = location.fs.split_path(location.path(key))
        head = location.fs.call_s3("head_object", Bucket=bucket, Key=object_key)
        digest = (head.get("Metadata") or {}).get("sha256", "")
        valid = len(digest) == 64 and set(digest) <= _SHA256_HEX
        return _Found(
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType"),
            checksum=f"sha256:{digest}" if valid else None,
        )

    def forget(self, location: _Location, key: str) -> None:
        return None


@attrs.frozen
class _SidecarRecords:
    """File-like backends (memory, local disk): content type and checksum go in a small JSON
    sidecar under ``<root>/.fittwin-meta/``, named by the SHA-256 of the key. Folders exist
    there, so a key cannot also be a folder of other keys. On local disk, folders a delete
    leaves empty are removed (they would block their name as a key and keep user ids around)."""

    prunes_folders: bool

    def upload_options(self, expected: StoredObject) -> dict[str, Any]:
        return {}

    def check_room(self, location: _Location, key: str) -> None:
        path = location.path(key)
        if location.fs.isdir(path):
            if self.prunes_folders:
                # An empty folder left behind (by a crash, say) gives way; a folder with files does not.
                with contextlib.suppress(OSError):
                    location.fs.rmdir(path)
            if location.fs.isdir(path):
                raise Conflict(f"object key {key} is already a folder of other objects in {location.label}")
        segments = key.split("/")
        for end in range(1, len(segments)):
            folder = "/".join(segments[:end])
            if _is_file(location.fs, location.path(folder)):
                raise Conflict(f"object key {key} lies under the object {folder} in {location.label}")

    def record(self, location: _Location, expected: StoredObject) -> None:
        document = json.dumps(unstructure(expected)).encode()
        location.fs.pipe_file(self._sidecar(location, expected.key), document)

    def describe(self, location: _Location, key: str) -> _Found:
        found = location.fs.info(location.path(key))
        if found.get("type") != "file":
            raise FileNotFoundError(key)
        size = int(found["size"])
        try:
            recorded = structure(json.loads(location.fs.cat_file(self._sidecar(location, key))), StoredObject)
        except (*_MISSING, ValueError):
            return _Found(size, None, None)
        if recorded.key != key or recorded.size != size:
            # The object was replaced behind the store's back: the record is stale.
            return _Found(size, None, None)
        return _Found(size, recorded.content_type, recorded.checksum)

    def forget(self, location: _Location, key: str) -> None:
        _remove(location.fs, self._sidecar(location, key))
        if not self.prunes_folders:
            return
        folders = key.split("/")[:-1]
        while folders:
            try:
                location.fs.rmdir(location.path("/".join(folders)))  # refuses a folder that is not empty
            except OSError:
                return
            folders.pop()

    @staticmethod
    def _sidecar(location: _Location, key: str) -> str:
        return location.path(f"{RESERVED_FOLDER}/{hashlib.sha256(key.encode()).hexdigest()}.json")


def _with_defaults(protocol: str, options: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(options)
    # A private filesystem instance without listing caches: exists/info always ask the backend,
    # whatever other code in the process does with an fsspec instance of the same options.
    merged.setdefault("skip_instance_cache", True)
    merged.setdefault("use_listings_cache", False)
    if protocol in _FILE_PROTOCOLS:
        merged.setdefault("auto_mkdir", True)
    if protocol in _S3_PROTOCOLS:
        config = dict(merged.get("config_kwargs") or {})
        config.setdefault("signature_version", "s3v4")
        merged["config_kwargs"] = config
    return merged


def _open_location(region: str | None, url: object, options: Mapping[str, Any]) -> _Location:
    where = "the object store" if region is None else f"region {region!r}"
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"the URL for {where} must name a protocol, such as memory://media, "
            "file:///srv/media or s3://bucket/prefix"
        )
    if "::" in url:
        raise ConfigurationError(f"the URL for {where} chains filesystems (::), which is not supported")
    protocol = url.split("://", 1)[0]
    try:
        fs, root = fsspec.core.url_to_fs(url, **_with_defaults(protocol, options))
    except ImportError as exc:
        extra = " (install fittwin[s3])" if protocol in _S3_PROTOCOLS else ""
        raise ConfigurationError(f"{protocol}:// for {where} needs a package that is missing{extra}") from exc
    except Exception as exc:
        raise ConfigurationError(
            f"cannot open the {protocol}:// URL for {where} with these storage options ({type(exc).__name__})"
        ) from exc
    root = str(root).rstrip("/")
    records: _Records
    if protocol in _S3_PROTOCOLS:
        if not root:
            raise ConfigurationError(f"the s3:// URL for {where} must name a bucket")
        records = _ObjectMetadata()
    else:
        records = _SidecarRecords(prunes_folders=protocol in _FILE_PROTOCOLS)
    return _Location(region=region, protocol=protocol, fs=fs, root=root, records=records)


# ----------------------------------------------------------------------------- the store


class FsspecObjectStore:
    """Store media by key on any fsspec URL: ``memory://``, ``file://`` or ``s3://``.

    ``url`` is one URL for every region, or a ``{region: URL}`` map that keeps each user's
    media in their region (``region=None`` means ``default_region``, which may be left out
    when the map has one entry). ``storage_options`` go to fsspec (for S3: ``endpoint_url``,
    ``key``, ``secret``, ``client_kwargs``, ...); ``region_storage_options`` adds or replaces
    options for single regions (an endpoint or credentials per region).

    Content type and a ``sha256:<hex>`` checksum are recorded with every object: as object
    metadata on S3, in a sidecar record under ``.fittwin-meta/`` elsewhere. A put that fails
    or does not store exactly what was sent leaves nothing under its key. Backend and driver
    errors surface as :class:`NotFound`, :class:`StoreUnavailable`,
    :class:`ConfigurationError` or :class:`Conflict`.
    """

    def __init__(
        self,
        url: str | Mapping[str, str],
        *,
        storage_options: Mapping[str, Any] | None = None,
        default_region: str | None = None,
        region_storage_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        shared = dict(storage_options or {})
        per_region = dict(region_storage_options or {})
        if isinstance(url, str):
            if default_region is not None or per_region:
                raise ConfigurationError(
                    "default_region and region_storage_options need a {region: URL} map; "
                    "a single URL serves every region"
                )
            self._default = _open_location(None, url, shared)
            self._regions: dict[str, _Location] = {}
            return
        if not isinstance(url, Mapping) or not url:
            raise ConfigurationError("url must be an fsspec URL or a non-empty {region: URL} map")
        for region in (*url, *per_region):
            if not isinstance(region, str) or not region:
                raise ConfigurationError("region names must be non-empty strings")
        unknown = sorted(set(per_region) - set(url))
        if unknown:
            raise ConfigurationError(f"region_storage_options names regions without a URL: {unknown}")
        self._regions = {
            region: _open_location(region, region_url, {**shared, **per_region.get(region, {})})
            for region, region_url in url.items()
        }
        if default_region is None:
            if len(self._regions) > 1:
                raise ConfigurationError("default_region is required when there is more than one region")
            default_region = next(iter(self._regions))
        if default_region not in self._regions:
            raise ConfigurationError(f"default_region {default_region!r} has no URL")
        self._default = self._regions[default_region]

    def __repr__(self) -> str:
        if not self._regions:
            return f"FsspecObjectStore({str(self._default)!r})"
        places = ", ".join(f"{region}={str(location)!r}" for region, location in self._regions.items())
        return f"FsspecObjectStore({places}, default_region={self._default.region!r})"

    # ------------------------------------------------------------------------- the port

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        region: str | None = None,
    ) -> StoredObject:
        """Store ``data`` under ``key``, replacing any object there, and return what was stored.

        If the upload fails, or the backend does not hold exactly ``data`` afterwards, nothing
        is left under ``key`` (not even a previous object) and :class:`StoreUnavailable` is
        raised. On file-like backends a key cannot also be a folder of other keys
        (:class:`Conflict`).
        """
        key = check_object_key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError("data", "must be bytes")
        data = bytes(data)
        _check_content_type.check("content_type", content_type)
        location = self._location(region)
        expected = StoredObject(key=key, size=len(data), content_type=content_type, checksum=checksum(data))
        with self._translated("store", key, location):
            location.records.check_room(location, key)
        try:
            with self._translated("store", key, location):
                path = location.path(key)
                self._upload(location.fs, path, data, location.records.upload_options(expected))
                location.fs.invalidate_cache(path)
                location.records.record(location, expected)
                stored = self._describe(location, key)
            if stored != expected:
                raise StoreUnavailable(f"object {key} was not stored as sent (size or checksum differs)")
        except BaseException:
            self._discard(location, key)
            raise
        return stored

    def get(self, key: str, *, region: str | None = None) -> bytes:
        """The bytes stored under ``key``; :class:`NotFound` if there are none."""
        key = check_object_key(key)
        location = self._location(region)
        with self._translated("read", key, location):
            return bytes(location.fs.cat_file(location.path(key)))

    def info(self, key: str, *, region: str | None = None) -> StoredObject:
        """Size, content type and checksum of the object under ``key``; :class:`NotFound` if absent.

        Objects written by other tools have no record: their content type reads as
        ``application/octet-stream`` (on S3, whatever S3 holds) and their checksum is computed
        from the bytes.
        """
        key = check_object_key(key)
        location = self._location(region)
        with self._translated("read", key, location):
            return self._describe(location, key)

    def exists(self, key: str, *, region: str | None = None) -> bool:
        """Whether an object is stored under ``key`` (a folder of other keys is not one)."""
        key = check_object_key(key)
        location = self._location(region)
        with self._translated("read", key, location):
            return _is_file(location.fs, location.path(key))

    def delete(self, key: str, *, region: str | None = None) -> None:
        """Remove the object under ``key`` and its record; nothing happens if it is already gone."""
        key = check_object_key(key)
        location = self._location(region)
        with self._translated("delete", key, location):
            _remove(location.fs, location.path(key))
            location.records.forget(location, key)

    def signed_url(self, key: str, *, expires_in: int = 3600, region: str | None = None) -> str:
        """A URL that fetches the object for ``expires_in`` seconds (1 s to 7 days), presigned on S3.

        :class:`ConfigurationError` where the backend cannot sign (``memory://``, ``file://``);
        :class:`NotFound` when there is no object under ``key``.
        """
        key = check_object_key(key)
        _check_expires_in.check("expires_in", expires_in)
        location = self._location(region)
        path = location.path(key)
        with self._translated("sign", key, location):
            try:
                url = location.fs.sign(path, expiration=expires_in)
            except NotImplementedError:
                raise ConfigurationError(
                    f"{location.protocol}:// cannot sign URLs: keep media on S3 (or an S3-compatible "
                    "store) to hand out signed URLs"
                ) from None
            if not _is_file(location.fs, path):
                raise NotFound("object", key)
        return str(url)

    # ------------------------------------------------------------------------- subclass point

    def _upload(self, fs: Any, path: str, data: bytes, options: Mapping[str, Any]) -> None:
        """Send ``data`` to ``path`` on ``fs`` (``options`` are backend write parameters).

        Subclass point for tests that inject upload failures (see
        :class:`~fittwin_adapters.objectstore.InterruptedObjectStore`): whatever this leaves
        behind when it raises, :meth:`put` removes.
        """
        fs.pipe_file(path, data, **options)

    # ------------------------------------------------------------------------- internals

    def _location(self, region: str | None) -> _Location:
        if region is None:
            return self._default
        if not isinstance(region, str):
            raise ValidationError("region", "must be a string")
        if not self._regions:
            return self._default
        try:
            return self._regions[region]
        except KeyError:
            known = ", ".join(sorted(self._regions))
            raise ValidationError("region", f"unknown region {region!r} (configured: {known})") from None

    def _describe(self, location: _Location, key: str) -> StoredObject:
        found = location.records.describe(location, key)
        size, digest = found.size, found.checksum
        if digest is None:
            data = location.fs.cat_file(location.path(key))
            size, digest = len(data), checksum(data)
        return StoredObject(
            key=key, size=size, content_type=found.content_type or DEFAULT_CONTENT_TYPE, checksum=digest
        )

    def _discard(self, location: _Location, key: str) -> None:
        # Best effort after a failed put: the failure being reported matters more than this one.
        with contextlib.suppress(Exception):
            _remove(location.fs, location.path(key))
        with contextlib.suppress(Exception):
            location.records.forget(location, key)

    @contextlib.contextmanager
    def _translated(self, action: str, key: str, location: _Location) -> Iterator[None]:
        """Turn backend and driver errors into FitTwin errors (the driver's stays as the cause)."""
        try:
            yield
        except FitTwinError:
            raise
        except _MISSING as exc:
            if action == "store":
                raise ConfigurationError(
                    f"the object store for {location.label} does not exist (missing bucket?)"
                ) from exc
            raise NotFound("object", key) from exc
        except FileExistsError as exc:
            raise Conflict(f"object key {key} clashes with another object in {location.label}") from exc
        except PermissionError as exc:
            raise StoreUnavailable(
                f"the object store for {location.label} refused to {action} object {key}: "
                "check credentials and permissions"
            ) from exc
        except Exception as exc:
            raise StoreUnavailable(
                f"the object store for {location.label} failed to {action} object {key} "
                f"({type(exc).__name__})"
            ) from exc
