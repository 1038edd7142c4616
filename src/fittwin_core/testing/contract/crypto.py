"""Contract suite for the security ports: ``PasswordHasher``, ``KeyRing`` and ``FieldCipher``.

Subclass a contract and provide its fixtures::

    class TestMyKeyRing(KeyRingContract):
        @pytest.fixture
        def keyring(self):
            return MyKmsKeyRing(...)

- :class:`PasswordHasherContract` needs ``hasher`` and ``stronger_hasher`` (a hasher of the
  same kind with other, stronger parameters).
- :class:`KeyRingContract` needs ``keyring``.
- :class:`FieldCipherContract` needs ``cipher`` and ``rotated_cipher`` (a cipher over a key
  ring rotated from ``cipher``'s: a new current KEK, the older ones kept, the same index key).
  A cipher that caches data keys (capability :class:`CachesDataKeys`) also has its cache
  bound checked: give it a small cache (a few entries) so the check stays quick.

Only pytest, hypothesis and the core are imported here, so adapters outside FitTwin (a KMS
key ring, say) can run the suite.
"""

from __future__ import annotations

import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittwin_core.domain import DataKey
from fittwin_core.domain.errors import AuthenticationFailed, FitTwinError
from fittwin_core.domain.users import BLIND_INDEX_PATTERN, SEALED_PATTERN
from fittwin_core.ports import FieldCipher, KeyRing, PasswordHasher, WrappedKey, field_aad

_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]
"""Fixtures here are immutable adapters, fine to share across hypothesis examples; and each
contract runs once per adapter subclass, so a test body meets several executors by design."""

_with_fixtures = settings(suppress_health_check=_SHARED)
_slow = settings(max_examples=5, deadline=None, suppress_health_check=_SHARED)

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SAMPLE_PASSWORD = "correct horse battery staple"  # noqa: S105 (a sample, not a credential)
_PLACE = ("user_profiles", "name", "0190f5c6-7a2b-7c3d-8e4f-5a6b7c8d9e0f")

passwords = st.text(max_size=64)
"""Passwords: any text, including empty and non-ASCII."""


def _encodings(secret: bytes) -> list[str]:
    """Spellings of a secret that must never show up in a repr or error message."""
    return [
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


def _payload(sealed: str) -> bytes:
    encoded = sealed.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


# ============================================================================ passwords


class PasswordHasherContract:
    """What every ``PasswordHasher`` does. Fixtures: ``hasher``, ``stronger_hasher``."""

    @_slow
    @given(password=passwords)
    def test_a_hash_verifies_its_password(self, hasher: PasswordHasher, password: str) -> None:
        assert hasher.verify(hasher.hash(password), password) is True

    @_slow
    @given(password=passwords, other=passwords)
    def test_another_password_does_not_verify(
        self, hasher: PasswordHasher, password: str, other: str
    ) -> None:
        if other == password:
            other += "x"
        assert hasher.verify(hasher.hash(password), other) is False

    def test_hashes_are_salted(self, hasher: PasswordHasher) -> None:
        first, second = hasher.hash("correct horse"), hasher.hash("correct horse")
        assert first != second
        assert hasher.verify(first, "correct horse") and hasher.verify(second, "correct horse")

    def test_the_hash_does_not_contain_the_password(self, hasher: PasswordHasher) -> None:
        password = _SAMPLE_PASSWORD
        encoded = hasher.hash(password)
        assert password not in encoded
        assert all(spelling not in encoded for spelling in _encodings(password.encode()))

    @pytest.mark.parametrize(
        "malformed",
        [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=8,t=1,p=1$abc$def",
            "é" * 10,
            "$2b$12$" + "a" * 53,
        ],
    )
    def test_a_malformed_hash_verifies_as_false(self, hasher: PasswordHasher, malformed: str) -> None:
        assert hasher.verify(malformed, "correct horse") is False

    @_with_fixtures
    @given(malformed=st.text(max_size=120))
    def test_arbitrary_text_as_hash_never_raises(self, hasher: PasswordHasher, malformed: str) -> None:
        assert hasher.verify(malformed, "correct horse") is False

    def test_a_truncated_hash_verifies_as_false(self, hasher: PasswordHasher) -> None:
        encoded = hasher.hash("correct horse")
        assert hasher.verify(encoded[:-4], "correct horse") is False
        assert hasher.verify(encoded[: len(encoded) // 2], "correct horse") is False

    def test_a_fresh_hash_needs_no_rehash(self, hasher: PasswordHasher) -> None:
        assert hasher.needs_rehash(hasher.hash("correct horse")) is False

    def test_a_hash_made_with_other_parameters_needs_rehash_but_still_verifies(
        self, hasher: PasswordHasher, stronger_hasher: PasswordHasher
    ) -> None:
        old = hasher.hash("correct horse")
        assert stronger_hasher.needs_rehash(old) is True
        assert stronger_hasher.verify(old, "correct horse") is True
        assert stronger_hasher.needs_rehash(stronger_hasher.hash("correct horse")) is False

    def test_the_repr_shows_no_password(self, hasher: PasswordHasher) -> None:
        password = _SAMPLE_PASSWORD
        hasher.verify(hasher.hash(password), password)
        assert password not in repr(hasher)


# ============================================================================ key rings


class KeyRingContract:
    """What every ``KeyRing`` does. Fixture: ``keyring``."""

    @_with_fixtures
    @given(data_key=st.binary(min_size=32, max_size=32))
    def test_wrap_then_unwrap_gives_the_data_key_back(self, keyring: KeyRing, data_key: bytes) -> None:
        kek_id, blob = keyring.wrap(data_key)
        assert kek_id == keyring.current_kek_id
        assert keyring.unwrap(kek_id, blob) == data_key

    def test_two_wraps_of_one_key_differ(self, keyring: KeyRing) -> None:
        data_key = bytes(range(32))
        (_, first), (_, second) = keyring.wrap(data_key), keyring.wrap(data_key)
        assert first != second

    def test_the_blob_does_not_contain_the_data_key(self, keyring: KeyRing) -> None:
        data_key = bytes(range(32))
        _, blob = keyring.wrap(data_key)
        assert data_key not in blob
        assert data_key[:8] not in blob

    def test_the_blob_is_storable(self, keyring: KeyRing) -> None:
        kek_id, blob = keyring.wrap(bytes(32))
        stamp = datetime.now(UTC)
        DataKey(
            owner_id=uuid4(),
            key_id="k",
            kek_id=kek_id,
            wrapped_key=blob,
            created_at=stamp,
            updated_at=stamp,
        )

    def test_an_unknown_kek_fails(self, keyring: KeyRing) -> None:
        _, blob = keyring.wrap(bytes(range(32)))
        with pytest.raises(AuthenticationFailed):
            keyring.unwrap(keyring.current_kek_id + "-unknown", blob)

    @_with_fixtures
    @given(data=st.data())
    def test_any_flipped_bit_fails(self, keyring: KeyRing, data: st.DataObject) -> None:
        data_key = bytes(range(32))
        kek_id, blob = keyring.wrap(data_key)
        index = data.draw(st.integers(0, len(blob) - 1), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        tampered = bytearray(blob)
        tampered[index] ^= 1 << bit
        with pytest.raises(AuthenticationFailed) as failure:
            keyring.unwrap(kek_id, bytes(tampered))
        message = str(failure.value) + repr(failure.value)
        assert all(spelling not in message for spelling in _encodings(data_key) + _encodings(blob))

    @_with_fixtures
    @given(data=st.data())
    def test_a_truncated_or_extended_blob_fails(self, keyring: KeyRing, data: st.DataObject) -> None:
        kek_id, blob = keyring.wrap(bytes(range(32)))
        cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
        with pytest.raises(AuthenticationFailed):
            keyring.unwrap(kek_id, blob[:cut])
        with pytest.raises(AuthenticationFailed):
            keyring.unwrap(kek_id, blob + b"\x00")


# ============================================================================ field cipher


class KeyCacheStats(Protocol):
    """What a data-key cache reports (like :func:`functools.lru_cache`'s ``cache_info()``)."""

    @property
    def maxsize(self) -> int: ...

    @property
    def currsize(self) -> int: ...


@runtime_checkable
class CachesDataKeys(Protocol):
    """Capability: a field cipher that keeps unwrapped data keys in a bounded cache."""

    def cache_info(self) -> KeyCacheStats:
        """Statistics of the cache."""
        ...


class FieldCipherContract:
    """What every ``FieldCipher`` does. Fixtures: ``cipher``, ``rotated_cipher``."""

    # ------------------------------------------------------------------ round trips and format

    @_with_fixtures
    @given(plaintext=st.text())
    def test_decrypt_gives_back_what_was_encrypted(self, cipher: FieldCipher, plaintext: str) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        assert cipher.decrypt(key, cipher.encrypt(key, plaintext, aad=aad), aad=aad) == plaintext

    @_with_fixtures
    @given(plaintext=st.text())
    def test_ciphertext_is_a_sealed_value(self, cipher: FieldCipher, plaintext: str) -> None:
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, plaintext, aad=field_aad(*_PLACE))
        assert SEALED_PATTERN.fullmatch(sealed)
        assert sealed.split(".")[:2] == ["fte1", key.key_id]

    @_with_fixtures
    @given(plaintext=st.text(min_size=8))
    def test_ciphertext_never_contains_the_plaintext(self, cipher: FieldCipher, plaintext: str) -> None:
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, plaintext, aad=field_aad(*_PLACE))
        assert plaintext not in sealed
        assert plaintext.encode() not in _payload(sealed)

    def test_two_encryptions_of_one_value_differ(self, cipher: FieldCipher) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        first, second = (cipher.encrypt(key, "Ada Lovelace", aad=aad) for _ in range(2))
        assert first != second
        assert _payload(first)[:12] != _payload(second)[:12]

    def test_new_data_keys_are_distinct_and_storable(self, cipher: FieldCipher) -> None:
        keys = [cipher.new_data_key() for _ in range(5)]
        assert len({key.key_id for key in keys}) == 5
        assert len({key.blob for key in keys}) == 5
        stamp = datetime.now(UTC)
        for key in keys:
            DataKey(
                owner_id=uuid4(),
                key_id=key.key_id,
                kek_id=key.kek_id,
                wrapped_key=key.blob,
                created_at=stamp,
                updated_at=stamp,
            )
            assert key.blob.hex() not in repr(key)

    # ------------------------------------------------------------------ what must not open

    @pytest.mark.parametrize(
        "elsewhere",
        [
            ("addresses", "name", _PLACE[2]),
            (_PLACE[0], "phone", _PLACE[2]),
            (_PLACE[0], _PLACE[1], "0190f5c6-7a2b-7c3d-8e4f-5a6b7c8d9e10"),
            (_PLACE[0] + "x", _PLACE[1], _PLACE[2]),
        ],
        ids=["other-table", "other-column", "other-row", "longer-table-name"],
    )
    def test_a_value_moved_elsewhere_does_not_open(
        self, cipher: FieldCipher, elsewhere: tuple[str, str, str]
    ) -> None:
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=field_aad(*_PLACE))
        with pytest.raises(AuthenticationFailed) as failure:
            cipher.decrypt(key, sealed, aad=field_aad(*elsewhere))
        assert "Ada" not in str(failure.value)

    def test_another_key_does_not_open(self, cipher: FieldCipher) -> None:
        key, other = cipher.new_data_key(), cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=aad)
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(other, sealed, aad=aad)
        # The same key id with another key's material (a swapped data_keys row).
        impostor = WrappedKey(key_id=key.key_id, kek_id=other.kek_id, blob=other.blob)
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(impostor, sealed, aad=aad)

    @_with_fixtures
    @given(data=st.data(), plaintext=st.text(max_size=40))
    def test_any_changed_character_does_not_open(
        self, cipher: FieldCipher, data: st.DataObject, plaintext: str
    ) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, plaintext, aad=aad)
        index = data.draw(st.integers(0, len(sealed) - 1), label="index")
        replacement = data.draw(st.sampled_from(_B64URL + ".").filter(lambda c: c != sealed[index]))
        tampered = sealed[:index] + replacement + sealed[index + 1 :]
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(key, tampered, aad=aad)

    @pytest.mark.parametrize("plaintext", ["", "A", "Ad"], ids=["28-bytes", "29-bytes", "30-bytes"])
    def test_every_single_character_change_does_not_open(self, cipher: FieldCipher, plaintext: str) -> None:
        # Exhaustive over positions and characters, and over the three lengths of the last
        # base64 group: a lax decoder ignoring the unused low bits of the last character
        # would let some changed strings open.
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, plaintext, aad=aad)
        for index, original in enumerate(sealed):
            for replacement in _B64URL + ".":
                if replacement == original:
                    continue
                with pytest.raises(AuthenticationFailed):
                    cipher.decrypt(key, sealed[:index] + replacement + sealed[index + 1 :], aad=aad)

    @_with_fixtures
    @given(data=st.data())
    def test_a_truncated_or_extended_value_does_not_open(
        self, cipher: FieldCipher, data: st.DataObject
    ) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=aad)
        cut = data.draw(st.integers(0, len(sealed) - 1), label="cut")
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(key, sealed[:cut], aad=aad)
        extra = data.draw(st.sampled_from(_B64URL), label="extra")
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(key, sealed + extra, aad=aad)

    @pytest.mark.parametrize(
        "malformed", ["", "Ada Lovelace", "fte1", "fte1..", "fte2.abc.AAAAAAAAAAAAAAAAAAAA"]
    )
    def test_malformed_values_do_not_open(self, cipher: FieldCipher, malformed: str) -> None:
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(cipher.new_data_key(), malformed, aad=field_aad(*_PLACE))

    def test_a_value_sealed_under_another_version_prefix_does_not_open(self, cipher: FieldCipher) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=aad)
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(key, "fte2" + sealed[4:], aad=aad)

    # ------------------------------------------------------------------ keys over time

    def test_rewrap_under_a_rotated_key_ring_keeps_values_readable(
        self, cipher: FieldCipher, rotated_cipher: FieldCipher
    ) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=aad)
        rewrapped = rotated_cipher.rewrap(key)
        assert rewrapped.key_id == key.key_id
        assert rewrapped.kek_id != key.kek_id
        assert rewrapped.blob != key.blob
        assert rotated_cipher.decrypt(rewrapped, sealed, aad=aad) == "Ada Lovelace"
        assert rotated_cipher.decrypt(key, sealed, aad=aad) == "Ada Lovelace"  # old KEK kept
        resealed = rotated_cipher.encrypt(rewrapped, "Grace Hopper", aad=aad)
        assert rotated_cipher.decrypt(key, resealed, aad=aad) == "Grace Hopper"

    def test_new_keys_of_a_rotated_key_ring_use_its_new_kek(
        self, cipher: FieldCipher, rotated_cipher: FieldCipher
    ) -> None:
        assert rotated_cipher.new_data_key().kek_id != cipher.new_data_key().kek_id

    def test_a_forgotten_key_still_opens_from_its_wrapped_form(self, cipher: FieldCipher) -> None:
        key = cipher.new_data_key()
        aad = field_aad(*_PLACE)
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=aad)
        assert cipher.decrypt(key, sealed, aad=aad) == "Ada Lovelace"
        cipher.forget(key.key_id)
        assert cipher.decrypt(key, sealed, aad=aad) == "Ada Lovelace"
        cipher.forget("never-seen-key-id")

    def test_the_key_cache_stays_within_its_bound(self, cipher: FieldCipher) -> None:
        if not isinstance(cipher, CachesDataKeys):
            pytest.skip("this cipher keeps no data-key cache")
        bound = cipher.cache_info().maxsize
        aad = field_aad(*_PLACE)
        for number in range(bound + 3):
            key = cipher.new_data_key()
            assert cipher.decrypt(key, cipher.encrypt(key, str(number), aad=aad), aad=aad) == str(number)
            assert cipher.cache_info().currsize <= bound
        assert cipher.cache_info().currsize == bound
        cipher.forget(key.key_id)
        assert cipher.cache_info().currsize == max(bound - 1, 0)

    def test_concurrent_encrypt_and_decrypt_from_threads(self, cipher: FieldCipher) -> None:
        keys = [cipher.new_data_key() for _ in range(6)]
        threads, rounds = 8, 40
        barrier = threading.Barrier(threads)

        def work(worker: int) -> int:
            barrier.wait()
            done = 0
            for step in range(rounds):
                key = keys[(worker + step) % len(keys)]
                aad = field_aad("user_profiles", "name", f"{worker}-{step}")
                value = f"worker {worker} step {step}"
                assert cipher.decrypt(key, cipher.encrypt(key, value, aad=aad), aad=aad) == value
                if step % 7 == 0:
                    cipher.forget(key.key_id)
                done += 1
            return done

        with ThreadPoolExecutor(max_workers=threads) as pool:
            assert sum(pool.map(work, range(threads))) == threads * rounds

    # ------------------------------------------------------------------ blind indexes

    @_with_fixtures
    @given(value=st.text())
    def test_a_blind_index_is_deterministic_and_survives_kek_rotation(
        self, cipher: FieldCipher, rotated_cipher: FieldCipher, value: str
    ) -> None:
        first = cipher.blind_index("addresses.postal_code", value)
        assert cipher.blind_index("addresses.postal_code", value) == first
        assert rotated_cipher.blind_index("addresses.postal_code", value) == first

    @_with_fixtures
    @given(value=st.text())
    def test_blind_indexes_are_separated_by_column(self, cipher: FieldCipher, value: str) -> None:
        assert cipher.blind_index("addresses.postal_code", value) != cipher.blind_index(
            "addresses.country", value
        )

    @_with_fixtures
    @given(values=st.lists(st.text(), min_size=2, max_size=2, unique=True))
    def test_different_values_get_different_blind_indexes(
        self, cipher: FieldCipher, values: list[str]
    ) -> None:
        first, second = (cipher.blind_index("addresses.postal_code", value) for value in values)
        assert first != second

    @_with_fixtures
    @given(value=st.text())
    def test_a_blind_index_has_a_fixed_length_and_is_lower_hex(self, cipher: FieldCipher, value: str) -> None:
        index = cipher.blind_index("addresses.postal_code", value)
        assert len(index) == len(cipher.blind_index("addresses.postal_code", ""))
        assert re.fullmatch(BLIND_INDEX_PATTERN, index)
        if len(value) >= 4:
            assert value not in index

    def test_errors_and_reprs_show_no_plaintext(self, cipher: FieldCipher) -> None:
        key = cipher.new_data_key()
        personal = "Ada Lovelace 221B"
        sealed = cipher.encrypt(key, personal, aad=field_aad(*_PLACE))
        with pytest.raises(FitTwinError) as failure:
            cipher.decrypt(key, sealed, aad=field_aad("addresses", "line1", _PLACE[2]))
        for text in (str(failure.value), repr(failure.value), repr(cipher), repr(key)):
            assert personal not in text
            assert key.blob.hex() not in text


__all__ = [
    "CachesDataKeys",
    "FieldCipherContract",
    "KeyCacheStats",
    "KeyRingContract",
    "PasswordHasherContract",
]
