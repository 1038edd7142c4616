"""Sealing personal data under per-owner data keys (envelope encryption), and shredding it.

Every owner (a shopper; the platform for data that belongs to no user) has one data key in
``data_keys``, wrapped by a key-encryption key. A sealed value is bound to its table, column
and row, so it cannot be copied elsewhere. Deleting the owner's data key crypto-shreds every
copy of everything sealed under it, backups included.
"""

from __future__ import annotations

from uuid import UUID

import attrs

from fittwin_core.domain import AuthenticationFailed, Conflict, DataKey, TransientConflict
from fittwin_core.domain.keys import PLATFORM_KEY_OWNER
from fittwin_core.ports import Clock, FieldCipher, UnitOfWork, WrappedKey, field_aad


class KeyShredded(AuthenticationFailed):
    """The owner's data key was deleted (their data was erased): sealed values cannot be opened."""


@attrs.frozen
class Vault:
    """Seal and open fields with the owner's data key, inside the caller's unit of work."""

    cipher: FieldCipher
    clock: Clock

    def key(self, uow: UnitOfWork, owner_id: UUID, *, create: bool = True) -> WrappedKey | None:
        """The owner's wrapped data key, created on first use when ``create``."""
        row = uow.data_keys.find(owner_id)
        if row is not None:
            return WrappedKey(row.key_id, row.kek_id, row.wrapped_key)
        if not create:
            return None
        wrapped = self.cipher.new_data_key()
        now = self.clock.now()
        try:
            uow.data_keys.add(
                DataKey(
                    owner_id=owner_id,
                    key_id=wrapped.key_id,
                    kek_id=wrapped.kek_id,
                    wrapped_key=wrapped.blob,
                    created_at=now,
                    updated_at=now,
                )
            )
        except Conflict as exc:  # another unit of work created it first: try again and use theirs
            raise TransientConflict("data key created concurrently") from exc
        return wrapped

    def seal(
        self, uow: UnitOfWork, owner_id: UUID, table: str, column: str, row_id: object, plaintext: str
    ) -> str:
        """Encrypt ``plaintext`` for ``table.column`` of row ``row_id`` under the owner's key."""
        key = self.key(uow, owner_id)
        assert key is not None
        return self.cipher.encrypt(key, plaintext, aad=field_aad(table, column, row_id))

    def seal_optional(
        self, uow: UnitOfWork, owner_id: UUID, table: str, column: str, row_id: object, plaintext: str | None
    ) -> str | None:
        """:meth:`seal`, passing ``None`` through."""
        return None if plaintext is None else self.seal(uow, owner_id, table, column, row_id, plaintext)

    def open(
        self, uow: UnitOfWork, owner_id: UUID, table: str, column: str, row_id: object, sealed: str
    ) -> str:
        """Decrypt a sealed value; :class:`KeyShredded` once the owner's data was erased."""
        return self.open_with(uow.data_keys.find(owner_id), table, column, row_id, sealed)

    def open_with(
        self, data_key: DataKey | None, table: str, column: str, row_id: object, sealed: str
    ) -> str:
        """:meth:`open` with the owner's ``data_keys`` row already read (``None``: there is none,
        :class:`KeyShredded`)."""
        if data_key is None:
            raise KeyShredded("this personal data was erased")
        key = WrappedKey(data_key.key_id, data_key.kek_id, data_key.wrapped_key)
        return self.cipher.decrypt(key, sealed, aad=field_aad(table, column, row_id))

    def open_optional(
        self, uow: UnitOfWork, owner_id: UUID, table: str, column: str, row_id: object, sealed: str | None
    ) -> str | None:
        """:meth:`open`, passing ``None`` through."""
        return None if sealed is None else self.open(uow, owner_id, table, column, row_id, sealed)

    def shred(self, uow: UnitOfWork, owner_id: UUID) -> bool:
        """Delete the owner's data key (crypto-shredding); whether there was one."""
        row = uow.data_keys.find(owner_id)
        if row is None:
            return False
        uow.data_keys.delete(owner_id)
        self.cipher.forget(row.key_id)
        return True

    def rotate(self, uow: UnitOfWork) -> int:
        """Re-wrap every data key under the current key-encryption key; how many changed.

        Rows sealed under the data keys are not touched: only the small wrapped keys are.
        """
        changed = 0
        for row in uow.data_keys.where(order_by="owner_id"):
            rewrapped = self.cipher.rewrap(WrappedKey(row.key_id, row.kek_id, row.wrapped_key))
            if rewrapped.kek_id != row.kek_id or rewrapped.blob != row.wrapped_key:
                uow.data_keys.update(
                    attrs.evolve(
                        row, kek_id=rewrapped.kek_id, wrapped_key=rewrapped.blob, updated_at=self.clock.now()
                    )
                )
                changed += 1
        return changed

    def blind_index(self, column: str, value: str) -> str:
        """The keyed equality index of an already normalised value."""
        return self.cipher.blind_index(column, value)


__all__ = ["PLATFORM_KEY_OWNER", "KeyShredded", "Vault"]
