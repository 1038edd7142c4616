"""A local key ring: key-encryption keys held in a JSON document (development and tests)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fittwin_core.domain.errors import AuthenticationFailed, ConfigurationError, ValidationError

KEY_BYTES = 32
"""Length of every key-encryption key and of the index key (AES-256, HMAC-SHA256)."""
NONCE_BYTES = 12
"""AES-GCM nonce length (96 bits, random per wrap)."""
DOCUMENT_VERSION = 1
"""The key ring document format :meth:`LocalKeyRing.to_json` writes."""
DEFAULT_ENV_VAR = "FITTWIN_KEYRING"
"""Environment variable holding the key ring document; ``<name>_FILE`` may hold a path instead."""

KEK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""Allowed key-encryption key ids (they are stored in ``data_keys.kek_id``)."""

_BLOB_VERSION = b"\x01"
_WRAP_AAD_PREFIX = b"fittwin-kek-v1\x1f"
_TAG_BYTES = 16
_MIN_DATA_KEY, _MAX_DATA_KEY = 16, 64
_DOCUMENT_FIELDS = frozenset({"version", "current", "keys", "index_key"})


def _new_kek_id(taken: Mapping[str, object]) -> str:
    while True:
        candidate = f"kek-{secrets.token_hex(6)}"
        if candidate not in taken:
            return candidate


def _wrap_aad(kek_id: str) -> bytes:
    return _WRAP_AAD_PREFIX + kek_id.encode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode_key(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ConfigurationError(f"key ring: {what} must be a base64 string")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"key ring: {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigurationError(f"key ring: {what} must decode to {KEY_BYTES} bytes")
    return raw


class LocalKeyRing:
    """Key-encryption keys (KEKs) held in memory; implements ``KeyRing``.

    Data keys are wrapped with AES-256-GCM under the current KEK (random 96-bit nonce, the KEK
    id bound as associated data); older KEKs stay to unwrap what they wrapped until every data
    key has been re-wrapped. A separate ``index_key`` keys the blind indexes: it is never
    rotated with the KEKs (rotating it would orphan every stored index).

    Meant for development, tests and single-host deployments; production hosts usually wrap
    with a KMS (another ``KeyRing`` adapter). Load it with :meth:`from_env` or :meth:`from_file`,
    make one with :meth:`generate`. Its repr shows key ids only.
    """

    __slots__ = ("_aeads", "_current", "_index_key", "_keys")

    def __init__(self, keys: Mapping[str, bytes], current: str, index_key: bytes) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise ConfigurationError("key ring: keys must map at least one KEK id to a key")
        checked: dict[str, bytes] = {}
        for kek_id, key in keys.items():
            if not isinstance(kek_id, str) or KEK_ID_PATTERN.fullmatch(kek_id) is None:
                raise ConfigurationError(
                    "key ring: KEK ids must be 1-64 characters of letters, digits, '_', '.', ':', '-'"
                )
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ConfigurationError(f"key ring: KEK {kek_id!r} must be {KEY_BYTES} bytes")
            checked[kek_id] = key
        if not isinstance(current, str) or current not in checked:
            raise ConfigurationError("key ring: the current KEK id is not one of its keys")
        if not isinstance(index_key, bytes) or len(index_key) != KEY_BYTES:
            raise ConfigurationError(f"key ring: index_key must be {KEY_BYTES} bytes")
        if any(secrets.compare_digest(index_key, key) for key in checked.values()):
            raise ConfigurationError("key ring: index_key must differ from every KEK")
        self._keys = checked
        self._current = current
        self._index_key = index_key
        self._aeads = {kek_id: AESGCM(key) for kek_id, key in checked.items()}

    # ------------------------------------------------------------------ making and loading

    @classmethod
    def generate(cls) -> LocalKeyRing:
        """A fresh random key ring (one KEK and an index key) that lives only in memory:
        save :meth:`to_json` somewhere safe if anything sealed with it must outlive the process."""
        kek_id = _new_kek_id({})
        return cls({kek_id: secrets.token_bytes(KEY_BYTES)}, kek_id, secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_json(cls, document: str | bytes) -> LocalKeyRing:
        """Load the JSON document written by :meth:`to_json`; :class:`ConfigurationError` naming
        the problem (never the key material) when it is not one."""
        try:
            data: Any = json.loads(document)
        except (ValueError, TypeError):  # JSONDecodeError keeps the document: do not chain it
            raise ConfigurationError("key ring: the document is not valid JSON") from None
        if not isinstance(data, dict):
            raise ConfigurationError("key ring: the document must be a JSON object")
        unknown = sorted(set(data) - _DOCUMENT_FIELDS)
        if unknown:
            raise ConfigurationError(f"key ring: unknown field(s) {', '.join(map(repr, unknown))}")
        missing = sorted(_DOCUMENT_FIELDS - set(data))
        if missing:
            raise ConfigurationError(f"key ring: missing field(s) {', '.join(map(repr, missing))}")
        version = data["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version != DOCUMENT_VERSION:
            raise ConfigurationError(f"key ring: unsupported version (expected {DOCUMENT_VERSION})")
        keys = data["keys"]
        if not isinstance(keys, dict) or not keys:
            raise ConfigurationError("key ring: 'keys' must be a non-empty object of KEK id to base64 key")
        if not isinstance(data["current"], str):
            raise ConfigurationError("key ring: 'current' must be a KEK id string")
        decoded = {}
        for kek_id, value in keys.items():
            label = f"key {kek_id!r}" if KEK_ID_PATTERN.fullmatch(kek_id) else "a key"
            decoded[kek_id] = _decode_key(value, label)
        return cls(decoded, data["current"], _decode_key(data["index_key"], "'index_key'"))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LocalKeyRing:
        """Load the key ring document stored in the file at ``path``."""
        try:
            document = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"key ring: cannot read {os.fspath(path)!r}: {exc.strerror or type(exc).__name__}"
            ) from None
        return cls.from_json(document)

    @classmethod
    def from_env(
        cls, var: str = DEFAULT_ENV_VAR, *, environ: Mapping[str, str] | None = None
    ) -> LocalKeyRing:
        """Load the key ring from the environment: ``var`` holds the JSON document, or
        ``<var>_FILE`` (``FITTWIN_KEYRING_FILE``) a path to it. Setting both, or neither,
        is a :class:`ConfigurationError`."""
        env = os.environ if environ is None else environ
        file_var = f"{var}_FILE"
        document, path = env.get(var, ""), env.get(file_var, "")
        if document.strip() and path.strip():
            raise ConfigurationError(f"key ring: set only one of {var} and {file_var}")
        if document.strip():
            return cls.from_json(document)
        if path.strip():
            return cls.from_file(path.strip())
        raise ConfigurationError(
            f"key ring: set {var} to a key ring document or {file_var} to its path "
            "(LocalKeyRing.generate().to_json() makes one)"
        )

    def to_json(self) -> str:
        """The key ring document: ``{"version": 1, "current": ..., "keys": {id: base64},
        "index_key": base64}``. It holds every secret of the ring: store it like a password."""
        document = {
            "version": DOCUMENT_VERSION,
            "current": self._current,
            "keys": {kek_id: _b64(key) for kek_id, key in self._keys.items()},
            "index_key": _b64(self._index_key),
        }
        return json.dumps(document, indent=2)

    def rotated(self) -> LocalKeyRing:
        """A new key ring whose current KEK is fresh and random; it keeps the older KEKs (so
        it still unwraps what they wrapped) and the same index key."""
        kek_id = _new_kek_id(self._keys)
        keys = {**self._keys, kek_id: secrets.token_bytes(KEY_BYTES)}
        return type(self)(keys, kek_id, self._index_key)

    # ------------------------------------------------------------------ KeyRing

    @property
    def current_kek_id(self) -> str:
        """The KEK new data keys are wrapped with."""
        return self._current

    @property
    def kek_ids(self) -> tuple[str, ...]:
        """Every KEK id the ring can unwrap with."""
        return tuple(self._keys)

    @property
    def index_key(self) -> bytes:
        """The key blind indexes are derived from (32 bytes; keep it as secret as the KEKs)."""
        return self._index_key

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` (16 to 64 bytes) with the current KEK: ``(kek_id, blob)``."""
        if not isinstance(data_key, bytes) or not _MIN_DATA_KEY <= len(data_key) <= _MAX_DATA_KEY:
            raise ValidationError("data_key", f"must be {_MIN_DATA_KEY} to {_MAX_DATA_KEY} bytes")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aeads[self._current].encrypt(nonce, data_key, _wrap_aad(self._current))
        return self._current, _BLOB_VERSION + nonce + sealed

    def unwrap(self, kek_id: str, blob: bytes) -> bytes:
        """Recover a data key; :class:`AuthenticationFailed` if the KEK is unknown or the blob
        was tampered with (or wrapped under another KEK)."""
        aead = self._aeads.get(kek_id) if isinstance(kek_id, str) else None
        if aead is None:
            raise AuthenticationFailed("data key is wrapped under an unknown key-encryption key")
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise AuthenticationFailed("wrapped data key is malformed")
        blob = bytes(blob)
        header = len(_BLOB_VERSION) + NONCE_BYTES
        if len(blob) < header + _TAG_BYTES + _MIN_DATA_KEY or not blob.startswith(_BLOB_VERSION):
            raise AuthenticationFailed("wrapped data key is malformed")
        nonce = blob[len(_BLOB_VERSION) : header]
        try:
            return aead.decrypt(nonce, blob[header:], _wrap_aad(kek_id))
        except InvalidTag:
            raise AuthenticationFailed("wrapped data key does not unwrap") from None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(current={self._current!r}, kek_ids={list(self._keys)!r}, "
            "keys=<redacted>, index_key=<redacted>)"
        )


__all__ = ["DEFAULT_ENV_VAR", "DOCUMENT_VERSION", "KEK_ID_PATTERN", "KEY_BYTES", "LocalKeyRing"]
