"""Security adapters: argon2id password hashing, a local key ring, envelope field encryption
and blind indexes (``PasswordHasher``, ``KeyRing`` and ``FieldCipher`` of :mod:`fittwin_core.ports`).

>>> from fittwin_adapters.crypto import AesGcmFieldCipher, LocalKeyRing
>>> from fittwin_core.ports import field_aad
>>> cipher = AesGcmFieldCipher(LocalKeyRing.generate())
>>> key = cipher.new_data_key()
>>> sealed = cipher.encrypt(key, "Ada Lovelace", aad=field_aad("user_profiles", "name", 1))
>>> cipher.decrypt(key, sealed, aad=field_aad("user_profiles", "name", 1))
'Ada Lovelace'
"""

from fittwin_adapters.crypto.fields import AesGcmFieldCipher, KeyCacheInfo
from fittwin_adapters.crypto.keyring import LocalKeyRing
from fittwin_adapters.crypto.passwords import Argon2PasswordHasher

__all__ = ["AesGcmFieldCipher", "Argon2PasswordHasher", "KeyCacheInfo", "LocalKeyRing"]
