"""Envelope encryption of single fields (AES-256-GCM) and blind indexes (HMAC-SHA256)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fittwin_core.domain.errors import AuthenticationFailed, ConfigurationError, ValidationError
from fittwin_core.ports import KeyRing, WrappedKey

FORMAT_VERSION = "fte1"
"""First part of every sealed value; names this format (AES-256-GCM, header bound as AAD)."""
DATA_KEY_BYTES = 32
"""Length of a data key (AES-256)."""
NONCE_BYTES = 12
"""AES-GCM nonce length: 96 random bits per encryption."""
KEY_ID_BYTES = 12
"""Random bytes in a data key id (16 base64url characters)."""
BLIND_INDEX_BYTES = 16
"""Length of a blind index before hex encoding (32 hex characters)."""
BLIND_INDEX_INFO = b"fittwin blind index v1\x1f"
"""HKDF ``info`` prefix; the column name follows it."""
MIN_INDEX_KEY_BYTES = 32
"""Shortest index key accepted."""

_TAG_BYTES = 16
_TOKEN = re.compile(r"fte1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{38,})")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_CACHED_COLUMNS = 256
_INVALID = "sealed value does not open with this key for this place"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode_strict(text: str) -> bytes | None:
    """Decode unpadded base64url, refusing every non-canonical spelling (so that no two
    strings decode to the same bytes and a changed character always changes the bytes)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64url(raw) == text else None


def _sealing_aad(key_id: str, aad: bytes) -> bytes:
    # The header (version and key id) is authenticated together with the caller's AAD.
    return b"%s\x1f%s\x1f%s" % (FORMAT_VERSION.encode("ascii"), key_id.encode("ascii"), aad)


def _check_aad(aad: object) -> bytes:
    if not isinstance(aad, bytes):
        raise ValidationError("aad", "must be bytes (see fittwin_core.ports.field_aad)")
    return aad


def _check_key(key: object) -> WrappedKey:
    if (
        not isinstance(key, WrappedKey)
        or not isinstance(key.key_id, str)
        or _KEY_ID.fullmatch(key.key_id) is None
        or not isinstance(key.kek_id, str)
        or not isinstance(key.blob, bytes)
    ):
        raise ValidationError("key", "must be a WrappedKey (key_id, kek_id, blob bytes)")
    return key


class KeyCacheInfo(NamedTuple):
    """Statistics of a cipher's data-key cache, like :func:`functools.lru_cache`'s."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class _DataKeyCache:
    """A bounded, thread-safe LRU of unwrapped data keys keyed by ``(key_id, kek_id)``.

    Each entry remembers the blob it was unwrapped from and is used only for that very blob,
    so the cache never opens more than its caller could open by unwrapping.
    """

    __slots__ = ("_entries", "_epoch", "_hits", "_lock", "_maxsize", "_misses")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[tuple[str, str], tuple[bytes, AESGCM]] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0
        self._hits = 0
        self._misses = 0

    def get(self, key: WrappedKey) -> tuple[AESGCM | None, int]:
        """The cached cipher for ``key`` (or ``None``) and the epoch to hand back to :meth:`put`."""
        with self._lock:
            entry = self._entries.get((key.key_id, key.kek_id))
            if entry is not None and hmac.compare_digest(entry[0], key.blob):
                self._entries.move_to_end((key.key_id, key.kek_id))
                self._hits += 1
                return entry[1], self._epoch
            self._misses += 1
            return None, self._epoch

    def put(self, key: WrappedKey, aead: AESGCM, epoch: int | None) -> None:
        """Remember ``aead`` for ``key`` unless something was forgotten since ``epoch``
        (an unwrap racing with :meth:`forget` must not bring the key back); ``None`` for a
        key just made, which nothing can have forgotten."""
        if self._maxsize == 0:
            return
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return
            self._entries[(key.key_id, key.kek_id)] = (bytes(key.blob), aead)
            self._entries.move_to_end((key.key_id, key.kek_id))
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._epoch += 1
            for cache_key in [k for k in self._entries if k[0] == key_id]:
                del self._entries[cache_key]

    def info(self) -> KeyCacheInfo:
        with self._lock:
            return KeyCacheInfo(self._hits, self._misses, self._maxsize, len(self._entries))


class AesGcmFieldCipher:
    """Seal single fields with per-owner data keys (envelope encryption); implements ``FieldCipher``.

    A value is sealed with AES-256-GCM under a 32-byte data key and a random 96-bit nonce into
    ``fte1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``; the associated data authenticates
    the header and the caller's ``aad`` (``field_aad(table, column, row_id)``), so a value
    moved to another table, column or row, or edited, does not open. Data keys are wrapped by
    ``keyring``; unwrapped keys are kept in a bounded, thread-safe LRU cache of ``cache_size``
    entries (0 disables it). ``index_key`` (default: ``keyring.index_key`` when the key ring
    has one) keys :meth:`blind_index`. Instances are safe to share between threads.
    """

    __slots__ = ("_cache", "_column_keys", "_column_lock", "_index_key", "_keyring")

    def __init__(self, keyring: KeyRing, *, index_key: bytes | None = None, cache_size: int = 1024) -> None:
        if not isinstance(cache_size, int) or isinstance(cache_size, bool) or cache_size < 0:
            raise ConfigurationError("field cipher: cache_size must be a non-negative integer")
        if index_key is None:
            candidate = getattr(keyring, "index_key", None)
            index_key = candidate if isinstance(candidate, bytes) else None
        if index_key is not None and (
            not isinstance(index_key, bytes) or len(index_key) < MIN_INDEX_KEY_BYTES
        ):
            raise ConfigurationError(f"field cipher: index_key must be at least {MIN_INDEX_KEY_BYTES} bytes")
        self._keyring = keyring
        self._index_key = index_key
        self._cache = _DataKeyCache(cache_size)
        self._column_keys: dict[str, bytes] = {}
        self._column_lock = threading.Lock()

    # ------------------------------------------------------------------ data keys

    def new_data_key(self) -> WrappedKey:
        """Generate a random 32-byte data key with a fresh random id, wrapped under the key
        ring's current KEK. Store it (``data_keys``) before sealing anything with it."""
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        key_id = _b64url(secrets.token_bytes(KEY_ID_BYTES))
        kek_id, blob = self._keyring.wrap(data_key)
        wrapped = WrappedKey(key_id=key_id, kek_id=kek_id, blob=blob)
        self._cache.put(wrapped, AESGCM(data_key), None)
        return wrapped

    def rewrap(self, key: WrappedKey) -> WrappedKey:
        """The same data key (same ``key_id``) wrapped under the key ring's current KEK: rows
        sealed with it stay as they are. Always re-wraps, even under the same KEK."""
        key = _check_key(key)
        kek_id, blob = self._keyring.wrap(self._keyring.unwrap(key.kek_id, key.blob))
        return WrappedKey(key_id=key.key_id, kek_id=kek_id, blob=blob)

    def forget(self, key_id: str) -> None:
        """Drop the cached plaintext of this data key (call it after crypto-shredding the key);
        a later use unwraps again. Unknown ids are ignored."""
        self._cache.forget(key_id)

    def cache_info(self) -> KeyCacheInfo:
        """Hits, misses, bound and current size of the data-key cache."""
        return self._cache.info()

    def _aead(self, key: WrappedKey) -> AESGCM:
        aead, epoch = self._cache.get(key)
        if aead is None:
            data_key = self._keyring.unwrap(key.kek_id, key.blob)
            if len(data_key) != DATA_KEY_BYTES:
                raise AuthenticationFailed("data key has the wrong length")
            aead = AESGCM(data_key)
            self._cache.put(key, aead, epoch)
        return aead

    # ------------------------------------------------------------------ sealing

    def encrypt(self, key: WrappedKey, plaintext: str, *, aad: bytes) -> str:
        """Seal ``plaintext`` under ``key`` bound to ``aad`` (build it with
        ``fittwin_core.ports.field_aad(table, column, row_id)``). Each call uses a fresh
        nonce, so sealing the same value twice gives different strings."""
        key = _check_key(key)
        aad = _check_aad(aad)
        if not isinstance(plaintext, str):
            raise ValidationError("plaintext", "must be a string")
        try:
            data = plaintext.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("plaintext", "must be valid Unicode text") from None
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead(key).encrypt(nonce, data, _sealing_aad(key.key_id, aad))
        return f"{FORMAT_VERSION}.{key.key_id}.{_b64url(nonce + sealed)}"

    def decrypt(self, key: WrappedKey, ciphertext: str, *, aad: bytes) -> str:
        """Open a sealed value; :class:`AuthenticationFailed` if it was not sealed under ``key``
        for ``aad`` (another key, table, column or row), is malformed or was tampered with."""
        key = _check_key(key)
        aad = _check_aad(aad)
        match = _TOKEN.fullmatch(ciphertext) if isinstance(ciphertext, str) else None
        if match is None or match.group(1) != key.key_id:
            raise AuthenticationFailed(_INVALID)
        payload = _b64url_decode_strict(match.group(2))
        if payload is None or len(payload) < NONCE_BYTES + _TAG_BYTES:
            raise AuthenticationFailed(_INVALID)
        aead = self._aead(key)
        try:
            data = aead.decrypt(payload[:NONCE_BYTES], payload[NONCE_BYTES:], _sealing_aad(key.key_id, aad))
            return data.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise AuthenticationFailed(_INVALID) from None

    # ------------------------------------------------------------------ blind indexes

    def blind_index(self, column: str, value: str) -> str:
        """A keyed hash of ``value`` for equality search on an encrypted ``column`` (32
        lower-case hex characters): HMAC-SHA256 under a key derived for the column from the
        index key, truncated to 16 bytes.

        The same value gives the same index only in the same column: name columns fully
        (``"addresses.postal_code"``). The value is hashed exactly as given, so normalise it
        first (trim, case-fold, strip spaces, ...) the same way when storing and when searching.
        :class:`ConfigurationError` when the cipher has no index key.
        """
        if not isinstance(column, str) or not column:
            raise ValidationError("column", "must be a non-empty string")
        if not isinstance(value, str):
            raise ValidationError("value", "must be a string")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("value", "must be valid Unicode text") from None
        digest = hmac.digest(self._column_key(column), data, "sha256")
        return digest[:BLIND_INDEX_BYTES].hex()

    def _column_key(self, column: str) -> bytes:
        with self._column_lock:
            key = self._column_keys.get(column)
        if key is None:
            if self._index_key is None:
                raise ConfigurationError("field cipher: no index key configured for blind indexes")
            try:
                info = BLIND_INDEX_INFO + column.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("column", "must be valid Unicode text") from None
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
            key = hkdf.derive(self._index_key)
            with self._column_lock:
                if len(self._column_keys) < _MAX_CACHED_COLUMNS:
                    self._column_keys[column] = key
        return key

    def __repr__(self) -> str:
        info = self._cache.info()
        return (
            f"{type(self).__name__}(keyring={self._keyring!r}, cache_size={info.maxsize}, "
            f"index_key={'<redacted>' if self._index_key is not None else None})"
        )


__all__ = ["FORMAT_VERSION", "AesGcmFieldCipher", "KeyCacheInfo"]
