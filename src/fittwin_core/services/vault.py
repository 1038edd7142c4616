"""Sealing personal data under per-owner data keys (envelope encryption), and shredding it.

Every owner (a shopper; the platform for data that belongs to no user) has one data key in
``data_keys``, wrapped by a key-encryption key. A sealed value is bound to its table, column
and row, so it cannot be copied elsewhere. Which columns are sealed, blind-indexed or keyed
hashes is declared once, in :mod:`fittwin_core.schema`; callers name entities, never columns
as strings. Deleting the owner's data key crypto-shreds every
copy of everything sealed under it, backups included.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import AuthenticationFailed, Conflict, DataKey, TransientConflict
from fittwin_core.domain.keys import PLATFORM_KEY_OWNER
from fittwin_core.ports import Clock, FieldCipher, UnitOfWork, WrappedKey, field_aad
from fittwin_core.schema import NestedSecret, Protection, table_for


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

    def seal_fields(
        self, uow: UnitOfWork, owner_id: UUID, entity: type[Any], row_id: object, **plaintexts: str | None
    ) -> dict[str, Any]:
        """Seal values for the columns of ``entity``'s table declared sealed (see
        :mod:`fittwin_core.schema`), for row ``row_id``, under the owner's key: ``{column:
        ciphertext}`` (``None`` passes through). A column not declared sealed is a
        :class:`ValueError` (a programming error, never input)."""
        table = table_for(entity)
        undeclared = sorted(set(plaintexts) - set(table.sealed_columns))
        if undeclared:
            raise ValueError(f"{table.name}: {', '.join(undeclared)} not declared sealed")
        key: WrappedKey | None = None  # read (or created) once for every column, on first use
        sealed: dict[str, Any] = {}
        for column, value in plaintexts.items():
            if value is None:
                sealed[column] = None
                continue
            if key is None:
                key = self.key(uow, owner_id)
                assert key is not None
            sealed[column] = self.cipher.encrypt(key, value, aad=field_aad(table.name, column, row_id))
        return sealed

    def open_fields(self, uow: UnitOfWork, owner_id: UUID, row: Any) -> dict[str, str | None]:
        """Every sealed column of ``row`` opened: ``{column: plaintext}`` (``None`` stays
        ``None``); :class:`KeyShredded` once the owner's data was erased."""
        data_key = uow.data_keys.find(owner_id)  # read once for every column
        return {
            column: self.open_with(data_key, row, column) for column in table_for(type(row)).sealed_columns
        }

    def seal_nested(
        self,
        uow: UnitOfWork,
        owner_id: UUID,
        where: NestedSecret,
        row_id: object,
        item_id: object,
        plaintext: str,
    ) -> str:
        """Seal a secret kept inside an item of a JSON column, bound to the row *and* the item."""
        return self._seal(
            uow, owner_id, field_aad(where.table, where.column, where.place(row_id, item_id)), plaintext
        )

    def open_nested(
        self,
        uow: UnitOfWork,
        owner_id: UUID,
        where: NestedSecret,
        row_id: object,
        item_id: object,
        sealed: str,
    ) -> str:
        """Open what :meth:`seal_nested` sealed; it fails for an item copied into another row."""
        return self._open(
            uow, owner_id, field_aad(where.table, where.column, where.place(row_id, item_id)), sealed
        )

    def _seal(self, uow: UnitOfWork, owner_id: UUID, aad: bytes, plaintext: str) -> str:
        key = self.key(uow, owner_id)
        assert key is not None
        return self.cipher.encrypt(key, plaintext, aad=aad)

    def open_with(self, data_key: DataKey | None, row: Any, column: str) -> str | None:
        """One sealed ``column`` of ``row`` opened with the owner's ``data_keys`` row already
        read (``None``: there is none, :class:`KeyShredded`); ``None`` stays ``None``. A column
        not declared sealed is a :class:`ValueError` (a programming error, never input)."""
        table = table_for(type(row))
        if column not in table.sealed_columns:
            raise ValueError(f"{table.name}: {column} not declared sealed")
        sealed = getattr(row, column)
        if sealed is None:
            return None
        key = None if data_key is None else WrappedKey(data_key.key_id, data_key.kek_id, data_key.wrapped_key)
        return self._decrypt(key, field_aad(table.name, column, getattr(row, table.key[0])), sealed)

    def _open(self, uow: UnitOfWork, owner_id: UUID, aad: bytes, sealed: str) -> str:
        return self._decrypt(self.key(uow, owner_id, create=False), aad, sealed)

    def _decrypt(self, key: WrappedKey | None, aad: bytes, sealed: str) -> str:
        if key is None:
            raise KeyShredded("this personal data was erased")
        return self.cipher.decrypt(key, sealed, aad=aad)

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

    def blind_indexes(self, entity: type[Any], **values: str) -> dict[str, Any]:
        """The blind index columns for already normalised values of the columns they index
        (as declared): ``blind_indexes(Address, country="DE")`` → ``{"country_bidx": ...}``."""
        table = table_for(entity)
        indexes = table.blind_indexes
        undeclared = sorted(set(values) - set(indexes))
        if undeclared:
            raise ValueError(f"{table.name}: {', '.join(undeclared)} has no declared blind index")
        return {indexes[c]: self.cipher.blind_index(f"{table.name}.{c}", v) for c, v in values.items()}

    def keyed_hash(self, entity: type[Any], column: str, value: str) -> str:
        """The keyed hash stored in ``column`` (declared :attr:`Protection.KEYED_HASH`) for a
        value that is itself never stored (an IP address, a device fingerprint)."""
        table = table_for(entity)
        declared = table.personal.get(column)
        if declared is None or declared.protection is not Protection.KEYED_HASH:
            raise ValueError(f"{table.name}.{column} is not declared a keyed hash")
        return self.cipher.blind_index(f"{table.name}.{column}", value)

    def token_mac(self, purpose: str, value: str) -> str:
        """A keyed MAC of ``value`` for a token that is never stored (``purpose`` separates
        uses, e.g. ``"email_verification"``)."""
        return self.cipher.blind_index(purpose, value)


__all__ = ["PLATFORM_KEY_OWNER", "KeyShredded", "Vault"]
