"""The crypto adapters: the contract suites, plus what only these adapters promise."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import argon2
import pytest
from argon2 import profiles
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fittwin_adapters.crypto import AesGcmFieldCipher, Argon2PasswordHasher, LocalKeyRing
from fittwin_core.domain.errors import AuthenticationFailed, ConfigurationError, ValidationError
from fittwin_core.ports import WrappedKey, field_aad
from fittwin_core.testing.contract.crypto import (
    FieldCipherContract,
    KeyRingContract,
    PasswordHasherContract,
)

AAD = field_aad("user_profiles", "name", "0190f5c6-7a2b-7c3d-8e4f-5a6b7c8d9e0f")


def secret_spellings(ring: LocalKeyRing) -> list[str]:
    """Every way the ring's key material could leak into text."""
    document = json.loads(ring.to_json())
    material = [base64.b64decode(v) for v in document["keys"].values()]
    material.append(ring.index_key)
    spellings = []
    for raw in material:
        spellings += [raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    return spellings


def assert_no_secrets(text: str, ring: LocalKeyRing) -> None:
    for spelling in secret_spellings(ring):
        assert spelling not in text


# ============================================================================ contract suites


class TestArgon2PasswordHasherContract(PasswordHasherContract):
    @pytest.fixture
    def hasher(self) -> Argon2PasswordHasher:
        return Argon2PasswordHasher.owasp_minimum()

    @pytest.fixture
    def stronger_hasher(self) -> Argon2PasswordHasher:
        return Argon2PasswordHasher(time_cost=3, memory_cost=19_456, parallelism=1)


class TestLocalKeyRingContract(KeyRingContract):
    @pytest.fixture
    def keyring(self) -> LocalKeyRing:
        return LocalKeyRing.generate()


class TestRotatedLocalKeyRingContract(KeyRingContract):
    @pytest.fixture
    def keyring(self) -> LocalKeyRing:
        return LocalKeyRing.generate().rotated().rotated()


class TestAesGcmFieldCipherContract(FieldCipherContract):
    @pytest.fixture
    def keyring(self) -> LocalKeyRing:
        return LocalKeyRing.generate()

    @pytest.fixture
    def cipher(self, keyring: LocalKeyRing) -> AesGcmFieldCipher:
        return AesGcmFieldCipher(keyring, cache_size=4)

    @pytest.fixture
    def rotated_cipher(self, keyring: LocalKeyRing) -> AesGcmFieldCipher:
        return AesGcmFieldCipher(keyring.rotated(), cache_size=4)


class TestUncachedAesGcmFieldCipherContract(TestAesGcmFieldCipherContract):
    @pytest.fixture
    def cipher(self, keyring: LocalKeyRing) -> AesGcmFieldCipher:
        return AesGcmFieldCipher(keyring, cache_size=0)


# ============================================================================ argon2id


class TestArgon2PasswordHasher:
    def test_defaults_are_the_rfc_9106_low_memory_profile(self) -> None:
        hasher = Argon2PasswordHasher()
        expected = profiles.RFC_9106_LOW_MEMORY
        assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
            expected.time_cost,
            expected.memory_cost,
            expected.parallelism,
        )
        encoded = hasher.hash("correct horse")
        assert encoded.startswith(f"$argon2id$v=19$m={expected.memory_cost},t={expected.time_cost},p=")
        assert hasher.verify(encoded, "correct horse")

    def test_owasp_minimum_is_the_weakest_allowed(self) -> None:
        hasher = Argon2PasswordHasher.owasp_minimum()
        assert hasher.hash("x").startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    @pytest.mark.parametrize(
        "parameters",
        [
            {"time_cost": 1},
            {"memory_cost": 19_455},
            {"memory_cost": 8},
            {"parallelism": 0},
            {"time_cost": True},
            {"memory_cost": 19_456.0},
            {"time_cost": "3"},
        ],
    )
    def test_parameters_weaker_than_owasp_minimum_are_refused(self, parameters: dict[str, object]) -> None:
        base: dict[str, object] = {"time_cost": 2, "memory_cost": 19_456, "parallelism": 1}
        with pytest.raises(ConfigurationError, match="argon2id"):
            Argon2PasswordHasher(**{**base, **parameters})  # type: ignore[arg-type]

    def test_a_hash_with_another_argon2_variant_verifies_and_needs_rehash(self) -> None:
        legacy = argon2.PasswordHasher(
            time_cost=2, memory_cost=19_456, parallelism=1, type=argon2.Type.I
        ).hash("correct horse")
        hasher = Argon2PasswordHasher.owasp_minimum()
        assert hasher.verify(legacy, "correct horse")
        assert hasher.needs_rehash(legacy)

    def test_a_weaker_legacy_hash_verifies_and_needs_rehash(self) -> None:
        weak = argon2.PasswordHasher.from_parameters(profiles.CHEAPEST).hash("correct horse")
        hasher = Argon2PasswordHasher.owasp_minimum()
        assert hasher.verify(weak, "correct horse")
        assert not hasher.verify(weak, "correct horsE")
        assert hasher.needs_rehash(weak)

    def test_a_malformed_hash_needs_rehash(self) -> None:
        assert Argon2PasswordHasher.owasp_minimum().needs_rehash("not a hash")

    def test_an_unencodable_password_is_refused_without_echoing_it(self) -> None:
        hasher = Argon2PasswordHasher.owasp_minimum()
        password = "hunter2\ud800"
        with pytest.raises(ValidationError) as failure:
            hasher.hash(password)
        assert failure.value.field == "password"
        assert "hunter2" not in str(failure.value)
        assert hasher.verify(hasher.hash("hunter2"), password) is False

    def test_non_text_never_verifies(self) -> None:
        hasher = Argon2PasswordHasher.owasp_minimum()
        encoded = hasher.hash("hunter2")
        assert hasher.verify(None, "hunter2") is False  # type: ignore[arg-type]
        assert hasher.verify(encoded, b"hunter2") is False  # type: ignore[arg-type]

    def test_repr_names_parameters_only(self) -> None:
        assert repr(Argon2PasswordHasher.owasp_minimum()) == (
            "Argon2PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)"
        )


# ============================================================================ local key ring


def good_document() -> dict[str, object]:
    return json.loads(LocalKeyRing.generate().rotated().to_json())


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class TestLocalKeyRing:
    def test_the_json_document_round_trips(self) -> None:
        ring = LocalKeyRing.generate().rotated()
        kek_id, blob = ring.wrap(bytes(range(32)))
        loaded = LocalKeyRing.from_json(ring.to_json())
        assert loaded.current_kek_id == ring.current_kek_id
        assert loaded.kek_ids == ring.kek_ids
        assert loaded.index_key == ring.index_key
        assert loaded.unwrap(kek_id, blob) == bytes(range(32))
        assert loaded.to_json() == ring.to_json()

    def test_the_document_has_the_documented_shape(self) -> None:
        document = json.loads(LocalKeyRing.generate().to_json())
        assert set(document) == {"version", "current", "keys", "index_key"}
        assert document["version"] == 1
        assert document["current"] in document["keys"]
        assert all(len(base64.b64decode(v, validate=True)) == 32 for v in document["keys"].values())
        assert len(base64.b64decode(document["index_key"], validate=True)) == 32

    def test_generate_makes_distinct_rings(self) -> None:
        first, second = LocalKeyRing.generate(), LocalKeyRing.generate()
        assert first.index_key != second.index_key
        kek_id, blob = first.wrap(bytes(32))
        with pytest.raises(AuthenticationFailed):
            second.unwrap(kek_id, blob)

    def test_rotation_adds_a_current_kek_and_keeps_the_rest(self) -> None:
        ring = LocalKeyRing.generate()
        old_kek, old_blob = ring.wrap(bytes(range(32)))
        rotated = ring.rotated()
        assert rotated.current_kek_id != ring.current_kek_id
        assert set(rotated.kek_ids) == {*ring.kek_ids, rotated.current_kek_id}
        assert rotated.index_key == ring.index_key
        assert rotated.unwrap(old_kek, old_blob) == bytes(range(32))
        new_kek, new_blob = rotated.wrap(bytes(range(32)))
        assert new_kek == rotated.current_kek_id
        with pytest.raises(AuthenticationFailed):
            ring.unwrap(new_kek, new_blob)  # the old ring does not know the new KEK

    def test_a_blob_is_bound_to_its_kek_id(self) -> None:
        rotated = LocalKeyRing.generate().rotated()
        old_kek = next(k for k in rotated.kek_ids if k != rotated.current_kek_id)
        _, blob = rotated.wrap(bytes(range(32)))
        with pytest.raises(AuthenticationFailed):
            rotated.unwrap(old_kek, blob)

    @pytest.mark.parametrize("length", [0, 15, 65])
    def test_wrap_refuses_odd_sized_keys(self, length: int) -> None:
        with pytest.raises(ValidationError):
            LocalKeyRing.generate().wrap(bytes(length))

    def test_repr_shows_ids_but_no_key_material(self) -> None:
        ring = LocalKeyRing.generate().rotated()
        text = repr(ring)
        assert ring.current_kek_id in text
        assert all(kek_id in text for kek_id in ring.kek_ids)
        assert_no_secrets(text, ring)

    # ------------------------------------------------------------------ bad documents

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            (lambda d: d.pop("current"), "missing field"),
            (lambda d: d.pop("index_key"), "missing field"),
            (lambda d: d.update(extra=1), "unknown field"),
            (lambda d: d.update(version=2), "version"),
            (lambda d: d.update(version=True), "version"),
            (lambda d: d.update(current="nope"), "current KEK"),
            (lambda d: d.update(current=5), "'current'"),
            (lambda d: d.update(keys={}), "'keys'"),
            (lambda d: d.update(keys=["a"]), "'keys'"),
            (lambda d: d["keys"].update({"bad id!": b64(bytes(32))}), "KEK ids"),
            (lambda d: d["keys"].update({d["current"]: b64(bytes(16))}), "32 bytes"),
            (lambda d: d["keys"].update({d["current"]: "not base64!"}), "not valid base64"),
            (lambda d: d["keys"].update({d["current"]: 7}), "base64 string"),
            (lambda d: d.update(index_key=b64(bytes(31))), "32 bytes"),
            (lambda d: d.update(index_key=d["keys"][d["current"]]), "differ from every KEK"),
        ],
    )
    def test_a_bad_document_names_the_problem_without_key_material(self, change, problem: str) -> None:
        document = good_document()
        material = [*document["keys"].values(), document["index_key"]]  # type: ignore[attr-defined]
        change(document)
        with pytest.raises(ConfigurationError, match=problem) as failure:
            LocalKeyRing.from_json(json.dumps(document))
        for value in material:
            assert value not in str(failure.value)
        assert failure.value.__suppress_context__ or failure.value.__context__ is None

    @pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"keys"'])
    def test_text_that_is_no_document_is_refused(self, text: str) -> None:
        with pytest.raises(ConfigurationError, match="key ring"):
            LocalKeyRing.from_json(text)

    def test_a_broken_json_document_does_not_chain_the_parser_error(self) -> None:
        document = LocalKeyRing.generate().to_json()
        with pytest.raises(ConfigurationError) as failure:
            LocalKeyRing.from_json(document[:-3])  # JSONDecodeError keeps the whole document
        assert failure.value.__cause__ is None and failure.value.__suppress_context__

    # ------------------------------------------------------------------ environment and files

    def test_from_env_reads_the_document(self, monkeypatch: pytest.MonkeyPatch) -> None:
        ring = LocalKeyRing.generate()
        monkeypatch.setenv("FITTWIN_KEYRING", ring.to_json())
        monkeypatch.delenv("FITTWIN_KEYRING_FILE", raising=False)
        assert LocalKeyRing.from_env().index_key == ring.index_key

    def test_from_env_reads_the_file_named_by_the_file_variable(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        ring = LocalKeyRing.generate()
        path = tmp_path / "keyring.json"
        path.write_text(ring.to_json())
        monkeypatch.delenv("FITTWIN_KEYRING", raising=False)
        monkeypatch.setenv("FITTWIN_KEYRING_FILE", str(path))
        assert LocalKeyRing.from_env().index_key == ring.index_key

    def test_from_env_takes_another_variable_name_and_an_explicit_environment(self, tmp_path: Path) -> None:
        ring = LocalKeyRing.generate()
        assert LocalKeyRing.from_env("APP_KEYS", environ={"APP_KEYS": ring.to_json()}).kek_ids == ring.kek_ids
        path = tmp_path / "keys.json"
        path.write_text(ring.to_json())
        loaded = LocalKeyRing.from_env("APP_KEYS", environ={"APP_KEYS_FILE": str(path)})
        assert loaded.kek_ids == ring.kek_ids

    def test_from_env_refuses_both_or_neither(self, tmp_path: Path) -> None:
        document = LocalKeyRing.generate().to_json()
        with pytest.raises(ConfigurationError, match="only one of FITTWIN_KEYRING and FITTWIN_KEYRING_FILE"):
            LocalKeyRing.from_env(
                environ={"FITTWIN_KEYRING": document, "FITTWIN_KEYRING_FILE": str(tmp_path / "k.json")}
            )
        with pytest.raises(ConfigurationError, match="set FITTWIN_KEYRING"):
            LocalKeyRing.from_env(environ={})
        with pytest.raises(ConfigurationError, match="set FITTWIN_KEYRING"):
            LocalKeyRing.from_env(environ={"FITTWIN_KEYRING": "  "})

    def test_from_file_names_a_missing_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "absent.json"
        with pytest.raises(ConfigurationError, match=r"absent\.json"):
            LocalKeyRing.from_file(missing)

    def test_from_file_refuses_a_bad_document_without_key_material(self, tmp_path: Path) -> None:
        document = good_document()
        document["version"] = 9
        path = tmp_path / "keyring.json"
        path.write_text(json.dumps(document))
        with pytest.raises(ConfigurationError) as failure:
            LocalKeyRing.from_file(path)
        assert document["index_key"] not in str(failure.value)  # type: ignore[operator]


# ============================================================================ field cipher


class CountingKeyRing:
    """A real key ring that counts unwraps (to watch the cache), and can run a hook mid-unwrap."""

    def __init__(self, inner: LocalKeyRing) -> None:
        self.inner = inner
        self.unwraps = 0
        self.during_unwrap: list[object] = []

    @property
    def current_kek_id(self) -> str:
        return self.inner.current_kek_id

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self.inner.wrap(data_key)

    def unwrap(self, kek_id: str, blob: bytes) -> bytes:
        self.unwraps += 1
        for hook in self.during_unwrap:
            hook()  # type: ignore[operator]
        return self.inner.unwrap(kek_id, blob)


class TestAesGcmFieldCipher:
    def test_the_sealed_format_is_the_documented_one(self) -> None:
        ring = LocalKeyRing.generate()
        cipher = AesGcmFieldCipher(ring)
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, "Ada Lovelace", aad=AAD)
        version, key_id, payload = sealed.split(".")
        assert (version, key_id) == ("fte1", key.key_id)
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert len(raw) == 12 + len(b"Ada Lovelace") + 16
        data_key = ring.unwrap(key.kek_id, key.blob)
        opened = AESGCM(data_key).decrypt(raw[:12], raw[12:], b"fte1\x1f" + key_id.encode() + b"\x1f" + AAD)
        assert opened == b"Ada Lovelace"

    def test_data_keys_are_32_bytes_with_16_character_ids(self) -> None:
        ring = LocalKeyRing.generate()
        key = AesGcmFieldCipher(ring).new_data_key()
        assert len(key.key_id) == 16
        assert key.kek_id == ring.current_kek_id
        assert len(ring.unwrap(key.kek_id, key.blob)) == 32

    def test_the_blind_index_is_hmac_sha256_under_an_hkdf_column_key(self) -> None:
        ring = LocalKeyRing.generate()
        column_key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"fittwin blind index v1\x1faddresses.country",
        ).derive(ring.index_key)
        expected = hmac.new(column_key, b"FR", hashlib.sha256).digest()[:16].hex()
        assert AesGcmFieldCipher(ring).blind_index("addresses.country", "FR") == expected
        assert len(expected) == 32

    def test_the_blind_index_does_not_normalise(self) -> None:
        cipher = AesGcmFieldCipher(LocalKeyRing.generate())
        assert cipher.blind_index("addresses.postal_code", "SW1A 1AA") != cipher.blind_index(
            "addresses.postal_code", "sw1a1aa"
        )

    def test_an_explicit_index_key_overrides_the_key_ring(self) -> None:
        ring = LocalKeyRing.generate()
        own = AesGcmFieldCipher(ring, index_key=bytes(range(32)))
        default = AesGcmFieldCipher(ring)
        assert own.blind_index("c", "v") != default.blind_index("c", "v")
        assert own.blind_index("c", "v") == AesGcmFieldCipher(
            LocalKeyRing.generate(), index_key=bytes(range(32))
        ).blind_index("c", "v")

    def test_without_an_index_key_blind_indexes_are_a_configuration_error(self) -> None:
        cipher = AesGcmFieldCipher(CountingKeyRing(LocalKeyRing.generate()))  # exposes no index_key
        key = cipher.new_data_key()
        assert cipher.decrypt(key, cipher.encrypt(key, "ok", aad=AAD), aad=AAD) == "ok"
        with pytest.raises(ConfigurationError, match="index key"):
            cipher.blind_index("addresses.country", "FR")

    @pytest.mark.parametrize("options", [{"index_key": bytes(31)}, {"cache_size": -1}, {"cache_size": True}])
    def test_bad_options_are_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(ConfigurationError):
            AesGcmFieldCipher(LocalKeyRing.generate(), **options)  # type: ignore[arg-type]

    def test_bad_arguments_are_validation_errors(self) -> None:
        cipher = AesGcmFieldCipher(LocalKeyRing.generate())
        key = cipher.new_data_key()
        with pytest.raises(ValidationError, match="plaintext"):
            cipher.encrypt(key, 42, aad=AAD)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="plaintext") as failure:
            cipher.encrypt(key, "Ada\ud800", aad=AAD)
        assert "Ada" not in str(failure.value)
        with pytest.raises(ValidationError, match="aad"):
            cipher.encrypt(key, "Ada", aad="user_profiles/name/1")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="key"):
            cipher.encrypt(WrappedKey(key_id="no.dots", kek_id=key.kek_id, blob=key.blob), "Ada", aad=AAD)
        with pytest.raises(ValidationError, match="value"):
            cipher.blind_index("addresses.country", None)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="column"):
            cipher.blind_index("", "FR")

    # ------------------------------------------------------------------ the data-key cache

    def test_hot_keys_are_unwrapped_once(self) -> None:
        ring = CountingKeyRing(LocalKeyRing.generate())
        key = AesGcmFieldCipher(ring).new_data_key()
        sealed = AesGcmFieldCipher(ring).encrypt(key, "Ada", aad=AAD)  # a fresh cipher: one unwrap
        assert ring.unwraps == 1
        reader = AesGcmFieldCipher(ring)
        for _ in range(5):
            assert reader.decrypt(key, sealed, aad=AAD) == "Ada"
        assert ring.unwraps == 2
        assert reader.cache_info()[:2] == (4, 1)

    def test_a_new_data_key_is_cached_without_an_unwrap(self) -> None:
        ring = CountingKeyRing(LocalKeyRing.generate())
        cipher = AesGcmFieldCipher(ring)
        key = cipher.new_data_key()
        cipher.decrypt(key, cipher.encrypt(key, "Ada", aad=AAD), aad=AAD)
        assert ring.unwraps == 0

    def test_forget_makes_the_next_use_unwrap_again(self) -> None:
        ring = CountingKeyRing(LocalKeyRing.generate())
        cipher = AesGcmFieldCipher(ring)
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, "Ada", aad=AAD)
        cipher.forget(key.key_id)
        assert cipher.cache_info().currsize == 0
        assert cipher.decrypt(key, sealed, aad=AAD) == "Ada"
        assert ring.unwraps == 1

    def test_without_a_cache_every_use_unwraps(self) -> None:
        ring = CountingKeyRing(LocalKeyRing.generate())
        cipher = AesGcmFieldCipher(ring, cache_size=0)
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, "Ada", aad=AAD)
        cipher.decrypt(key, sealed, aad=AAD)
        assert ring.unwraps == 2
        assert cipher.cache_info().currsize == 0

    def test_the_least_recently_used_key_is_evicted(self) -> None:
        ring = CountingKeyRing(LocalKeyRing.generate())
        cipher = AesGcmFieldCipher(ring, cache_size=2)
        first, second = cipher.new_data_key(), cipher.new_data_key()
        sealed = cipher.encrypt(first, "Ada", aad=AAD)  # first is now the most recent
        cipher.new_data_key()  # evicts second
        cipher.decrypt(first, sealed, aad=AAD)
        assert ring.unwraps == 0
        cipher.encrypt(second, "Grace", aad=AAD)
        assert ring.unwraps == 1

    def test_a_cached_key_is_not_served_for_another_blob(self) -> None:
        ring = LocalKeyRing.generate()
        cipher = AesGcmFieldCipher(ring)
        key, other = cipher.new_data_key(), cipher.new_data_key()
        sealed = cipher.encrypt(key, "Ada", aad=AAD)
        swapped = WrappedKey(key_id=key.key_id, kek_id=key.kek_id, blob=other.blob)
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(swapped, sealed, aad=AAD)
        tampered = WrappedKey(key_id=key.key_id, kek_id=key.kek_id, blob=key.blob[:-1] + b"\x00")
        with pytest.raises(AuthenticationFailed):
            cipher.decrypt(tampered, sealed, aad=AAD)
        assert cipher.decrypt(key, sealed, aad=AAD) == "Ada"

    def test_a_forget_during_an_unwrap_is_not_undone(self) -> None:
        ring = CountingKeyRing(LocalKeyRing.generate())
        writer = AesGcmFieldCipher(ring)
        key = writer.new_data_key()
        sealed = writer.encrypt(key, "Ada", aad=AAD)
        reader = AesGcmFieldCipher(ring)
        ring.during_unwrap.append(lambda: reader.forget(key.key_id))  # erase races the read
        assert reader.decrypt(key, sealed, aad=AAD) == "Ada"
        assert reader.cache_info().currsize == 0

    # ------------------------------------------------------------------ rotation and shredding

    def test_rewrap_under_the_same_ring_makes_a_new_blob_for_the_same_key(self) -> None:
        ring = LocalKeyRing.generate()
        cipher = AesGcmFieldCipher(ring)
        key = cipher.new_data_key()
        sealed = cipher.encrypt(key, "Ada", aad=AAD)
        again = cipher.rewrap(key)
        assert (again.key_id, again.kek_id) == (key.key_id, key.kek_id)
        assert again.blob != key.blob
        assert AesGcmFieldCipher(ring).decrypt(again, sealed, aad=AAD) == "Ada"

    def test_retiring_a_kek_before_rewrapping_makes_its_keys_unreadable(self) -> None:
        old = LocalKeyRing.generate()
        key = AesGcmFieldCipher(old).new_data_key()
        sealed = AesGcmFieldCipher(old).encrypt(key, "Ada", aad=AAD)
        document = json.loads(old.rotated().to_json())
        del document["keys"][old.current_kek_id]
        retired = LocalKeyRing.from_json(json.dumps(document))
        with pytest.raises(AuthenticationFailed):
            AesGcmFieldCipher(retired).decrypt(key, sealed, aad=AAD)
        with pytest.raises(AuthenticationFailed):
            AesGcmFieldCipher(retired).rewrap(key)

    def test_repr_shows_no_key_material(self) -> None:
        ring = LocalKeyRing.generate()
        cipher = AesGcmFieldCipher(ring, cache_size=8)
        key = cipher.new_data_key()
        text = repr(cipher)
        assert "cache_size=8" in text
        assert_no_secrets(text, ring)
        data_key = ring.unwrap(key.kek_id, key.blob)
        assert data_key.hex() not in text and key.blob.hex() not in repr(key)


def test_the_contract_suite_imports_no_infrastructure_library() -> None:
    code = (
        "import sys, fittwin_core.testing.contract.crypto\n"
        "banned = {'cryptography', 'argon2', 'sqlalchemy', 'psycopg', 'fsspec', 's3fs', 'stripe'}\n"
        "print(sorted(banned & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
