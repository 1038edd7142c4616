"""The persisted tables as data: keys, unique indexes, foreign keys and audit rules.

One description both stores follow: the memory store enforces it directly, the PostgreSQL
schema declares the same constraints (a test checks they agree), and the contract suite reads
it to know what to test. Table, column and index names are the data model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import attrs

from fittwin_core.domain import (
    Address,
    Avatar,
    Brand,
    BrandUser,
    DataKey,
    EventLog,
    FitMap,
    FitMapProposal,
    IdempotencyRecord,
    Order,
    OrderItem,
    OutboxEffect,
    PaymentMethod,
    Product,
    ProductVariant,
    Referral,
    ReferralEvent,
    RewardLedgerEntry,
    SizeChart,
    UserProfile,
)


@attrs.frozen
class ForeignKey:
    """``column`` references ``table(ref_column)`` (``ON UPDATE CASCADE ON DELETE RESTRICT``)."""

    column: str
    table: str
    ref_column: str = "id"


@attrs.frozen
class UniqueKey:
    """A unique index. ``case_insensitive`` columns compare case-folded (citext / ``lower()``);
    ``only_when`` makes it partial: it applies to rows whose column holds one of the values.
    ``by_trigger``: PostgreSQL cannot declare it as a unique index (``orders`` is partitioned by
    ``id``, and a unique index of a partitioned table must contain the partition key), so a
    trigger enforces it over every partition, and the named index is a plain one for lookups."""

    name: str
    columns: tuple[str, ...]
    case_insensitive: frozenset[str] = frozenset()
    only_when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    by_trigger: bool = False


class Protection(StrEnum):
    """How a personal or secret column is stored."""

    SEALED = "sealed"
    """AES-256-GCM under the owner's data key; AAD = table ‖ column ‖ row id."""
    BLIND_INDEX = "blind_index"
    """A keyed HMAC of another (sealed) column of the row, for equality search."""
    KEYED_HASH = "keyed_hash"
    """A keyed HMAC of a value that is never stored (an IP address, a device fingerprint)."""
    HASHED = "hashed"
    """A one-way password hash (argon2id)."""
    SECRET = "secret"  # noqa: S105 - a kind of column, not a password
    """Stored as is, but a secret: provider tokens, invite tokens, wrapped keys, request hashes."""
    PLAIN = "plain"
    """Personal data stored in the clear (needed for lookups, or not worth sealing)."""


class Erasure(StrEnum):
    """What erasing a shopper does to a column."""

    SHRED = "shred"
    """Left as ciphertext under the deleted data key: unreadable (crypto-shredded)."""
    REPLACE = "replace"
    """Replaced by an anonymous value (``erased-…`` email and username, an unmatchable hash)."""
    CLEAR = "clear"
    """Emptied (``NULL``, or the empty value of the type)."""
    STRIP = "strip"
    """The personal parts removed, the rest kept (body values of a fit summary; device keys)."""
    DELETE = "delete"
    """The whole row is deleted."""
    KEEP = "keep"
    """Kept: not a shopper's data (a brand's contact, a brand user's email)."""


@attrs.frozen
class Personal:
    """The declaration of one personal or secret column: how it is stored, whether the DSR
    export holds it, what erasure does to it and which retention setting bounds it.

    Every personal column is redacted in audit diffs (``"<redacted>"`` for its value, so a diff
    says only *which* personal fields changed)."""

    protection: Protection
    erasure: Erasure
    export: bool = True
    """Whether :meth:`~fittwin_core.services.privacy.Privacy.export_user` includes it (sealed
    values opened)."""
    indexes: str | None = None
    """For a :attr:`Protection.BLIND_INDEX`: the column it indexes."""
    retention: str | None = None
    """The :class:`~fittwin_core.services.base.RetentionPolicy` field after which it is
    cleared even without an erasure request (``None``: kept while the row is)."""

    @property
    def sealed(self) -> bool:
        """Whether the column holds ciphertext."""
        return self.protection is Protection.SEALED


def _sealed(**kwargs: Any) -> Personal:
    return Personal(Protection.SEALED, Erasure.SHRED, **kwargs)


def _plain(erasure: Erasure = Erasure.CLEAR, **kwargs: Any) -> Personal:
    return Personal(Protection.PLAIN, erasure, **kwargs)


def _secret(erasure: Erasure, **kwargs: Any) -> Personal:
    return Personal(Protection.SECRET, erasure, export=False, **kwargs)


@attrs.frozen
class Table:
    """One table: its entity, key, constraints and how it is audited."""

    name: str
    entity: type[Any]
    key: tuple[str, ...] = ("id",)
    uniques: tuple[UniqueKey, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    audited: bool = False
    """Every insert/update/delete is mirrored into ``event_logs`` (privileged tables, and
    every table holding personal data or keys but the high-volume ones: see docs/security.md)."""
    personal: Mapping[str, Personal] = attrs.field(factory=dict, hash=False)
    """The personal and secret columns, declared once (see :class:`Personal`)."""
    not_personal: frozenset[str] = frozenset()
    """Text and JSON columns declared *not* personal (every other text/JSON column must be in
    :attr:`personal`; a test holds every entity to it)."""
    retention: str | None = None
    """The :class:`~fittwin_core.services.base.RetentionPolicy` field after which rows that
    are soft-deleted (or, for profiles, erased) are purged."""
    append_only: bool = False
    """Rows are never updated or deleted (``event_logs``)."""
    partitioned: bool = False
    """Range-partitioned by month of the UUIDv7 ``id`` on PostgreSQL."""
    citext_columns: frozenset[str] = frozenset()
    """Case-insensitive text (``citext``): equality filters ignore case."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in the entity's field order."""
        return tuple(field.name for field in attrs.fields(self.entity))

    @property
    def secret_columns(self) -> frozenset[str]:
        """Personal data and secrets: redacted in audit diffs."""
        return frozenset(self.personal)

    @property
    def sealed_columns(self) -> tuple[str, ...]:
        """The columns holding ciphertext, in field order."""
        return tuple(c for c in self.columns if c in self.personal and self.personal[c].sealed)

    @property
    def blind_indexes(self) -> Mapping[str, str]:
        """``{indexed column: blind index column}``."""
        return {p.indexes: c for c, p in self.personal.items() if p.indexes is not None}

    def unexported(self) -> frozenset[str]:
        """Columns the DSR export leaves out."""
        return frozenset(c for c, p in self.personal.items() if not p.export)

    @property
    def has_updated_at(self) -> bool:
        """Whether rows carry ``updated_at`` (mutable tables)."""
        return "updated_at" in self.columns


_USER = ForeignKey("user_id", "user_profiles")

TABLES: Mapping[str, Table] = {
    table.name: table
    for table in (
        Table(
            "user_profiles",
            UserProfile,
            uniques=(
                UniqueKey("idx_user_profiles_email_lower", ("email",), frozenset({"email"})),
                UniqueKey("idx_user_profiles_username", ("username",), frozenset({"username"})),
            ),
            foreign_keys=(
                ForeignKey("default_payment_method_id", "payment_methods"),
                ForeignKey("billing_address_id", "addresses"),
            ),
            audited=True,
            personal={
                "email": _plain(Erasure.REPLACE),
                "password_hash": Personal(Protection.HASHED, Erasure.REPLACE, export=False),
                "username": _plain(Erasure.REPLACE),
                "body_metrics": _plain(),
                "consents": _plain(Erasure.REPLACE),
                "name": _sealed(),
                "phone": _sealed(),
                "location": _plain(),
                "appearance": _plain(),
                "style_preferences": _plain(),
            },
            not_personal=frozenset({"region"}),
            retention="erased_profile_days",
            citext_columns=frozenset({"email"}),
        ),
        Table(
            "avatars",
            Avatar,
            uniques=(UniqueKey("idx_avatars_user_version_unique", ("user_id", "version")),),
            foreign_keys=(_USER,),
            audited=True,
            personal={"sources": _plain(), "mesh_ref": _plain()},
            not_personal=frozenset({"failure_reason"}),
            retention="deleted_row_days",
        ),
        Table(
            "brands",
            Brand,
            uniques=(UniqueKey("brands_name_key", ("name",)),),
            audited=True,
            personal={
                "primary_contact": _plain(Erasure.KEEP),
                "webhooks": _secret(Erasure.KEEP),
            },
            not_personal=frozenset({"name"}),
        ),
        Table(
            "brand_users",
            BrandUser,
            uniques=(
                UniqueKey(
                    "idx_brand_users_email_unique",
                    ("brand_id", "email"),
                    frozenset({"email"}),
                    only_when=(("status", ("active",)),),
                ),
            ),
            foreign_keys=(ForeignKey("brand_id", "brands"),),
            audited=True,
            personal={"email": _plain(Erasure.KEEP), "invite_token": _secret(Erasure.KEEP)},
            citext_columns=frozenset({"email"}),
        ),
        Table(
            "size_charts",
            SizeChart,
            foreign_keys=(ForeignKey("brand_id", "brands"),),
            audited=True,
            not_personal=frozenset({"garment_type", "measurement_rules", "grading_rules"}),
        ),
        Table(
            "fit_maps",
            FitMap,
            foreign_keys=(ForeignKey("brand_id", "brands"),),
            audited=True,
            not_personal=frozenset({"garment_type", "rule_set", "confidence_model"}),
        ),
        Table(
            "products",
            Product,
            foreign_keys=(
                ForeignKey("brand_id", "brands"),
                ForeignKey("size_chart_id", "size_charts"),
                ForeignKey("fit_map_id", "fit_maps"),
            ),
            audited=True,
            not_personal=frozenset({"title", "description", "category", "assets"}),
        ),
        Table(
            "product_variants",
            ProductVariant,
            uniques=(UniqueKey("product_variants_sku_key", ("sku",)),),
            foreign_keys=(ForeignKey("product_id", "products"),),
            audited=True,
            not_personal=frozenset({"sku", "size_label", "color", "currency", "fit_metadata"}),
        ),
        Table(
            "addresses",
            Address,
            foreign_keys=(_USER,),
            audited=True,
            personal={
                "line1": _sealed(),
                "line2": _sealed(),
                "city": _sealed(),
                "state": _sealed(),
                "postal_code": _sealed(),
                "country": _sealed(),
                "postal_code_bidx": Personal(
                    Protection.BLIND_INDEX, Erasure.CLEAR, export=False, indexes="postal_code"
                ),
                "country_bidx": Personal(
                    Protection.BLIND_INDEX, Erasure.CLEAR, export=False, indexes="country"
                ),
                "metadata": _plain(),
            },
            retention="deleted_row_days",
        ),
        Table(
            "payment_methods",
            PaymentMethod,
            uniques=(UniqueKey("idx_payment_methods_psp_token", ("psp_token_id",)),),
            foreign_keys=(_USER, ForeignKey("billing_address_id", "addresses")),
            audited=True,
            personal={
                "psp_token_id": _secret(Erasure.DELETE),
                "brand": _plain(Erasure.DELETE),
                "last4": _plain(Erasure.DELETE),
                "expires_at": _plain(Erasure.DELETE),
            },
        ),
        Table(
            "referrals",
            Referral,
            key=("rid",),
            foreign_keys=(
                ForeignKey("referrer_user_id", "user_profiles"),
                ForeignKey("target_product_id", "products"),
            ),
            not_personal=frozenset({"rid", "share_url", "policy_snapshot"}),
        ),
        Table(
            "orders",
            Order,
            uniques=(UniqueKey("idx_orders_payment_intent", ("payment_intent_ref",), by_trigger=True),),
            foreign_keys=(
                _USER,
                ForeignKey("shipping_address_id", "addresses"),
                ForeignKey("billing_address_id", "addresses"),
                ForeignKey("rid", "referrals", "rid"),
            ),
            audited=True,
            personal={"psp_token_id": _secret(Erasure.CLEAR)},
            not_personal=frozenset({"totals", "payment_intent_ref", "rid", "notifications"}),
            partitioned=True,
        ),
        Table(
            "order_items",
            OrderItem,
            foreign_keys=(
                ForeignKey("order_id", "orders"),
                ForeignKey("product_id", "products"),
                ForeignKey("brand_id", "brands"),
                ForeignKey("variant_id", "product_variants"),
            ),
            personal={"fit_summary": _plain(Erasure.STRIP)},
            not_personal=frozenset({"sku", "size_label", "currency", "return_reason"}),
        ),
        Table(
            "referral_events",
            ReferralEvent,
            foreign_keys=(ForeignKey("rid", "referrals", "rid"), ForeignKey("order_id", "orders")),
            personal={
                "device_fingerprint": Personal(
                    Protection.KEYED_HASH, Erasure.CLEAR, export=False, retention="click_hash_days"
                ),
                "ip_hash": Personal(
                    Protection.KEYED_HASH, Erasure.CLEAR, export=False, retention="click_hash_days"
                ),
                "metadata": _plain(Erasure.STRIP),
            },
            not_personal=frozenset({"rid"}),
        ),
        Table(
            "reward_ledger_entries",
            RewardLedgerEntry,
            foreign_keys=(ForeignKey("rid", "referrals", "rid"), ForeignKey("order_id", "orders")),
            audited=True,
            not_personal=frozenset({"rid", "currency"}),
        ),
        Table(
            "event_logs",
            EventLog,
            append_only=True,
            partitioned=True,
            # Written redacted: triggers and services record ids, statuses and field names.
            not_personal=frozenset({"action", "entity_type", "metadata"}),
        ),
        Table(
            "fit_map_proposals",
            FitMapProposal,
            foreign_keys=(ForeignKey("fit_map_id", "fit_maps"), ForeignKey("brand_id", "brands")),
            audited=True,
            not_personal=frozenset({"garment_type", "rule_set", "evidence"}),
        ),
        Table(
            "data_keys",
            DataKey,
            key=("owner_id",),
            audited=True,
            personal={"wrapped_key": _secret(Erasure.DELETE)},
            not_personal=frozenset({"key_id", "kek_id"}),
        ),
        Table(
            "idempotency_keys",
            IdempotencyRecord,
            key=("scope", "key"),
            # The key is the client's own string (it may carry anything); erased with the orders.
            personal={"key": _plain(Erasure.DELETE), "request_hash": _secret(Erasure.DELETE)},
            not_personal=frozenset({"scope"}),
        ),
        Table(
            "outbox",
            OutboxEffect,
            uniques=(UniqueKey("idx_outbox_idempotency_unique", ("idempotency_key",)),),
            # Effects carry ids, amounts, statuses and template names, never a shopper's
            # personal data: the notifier looks the recipient up when it sends.
            not_personal=frozenset({"payload", "idempotency_key", "history", "outcome"}),
        ),
    )
}
"""Every table FitTwin persists, by name, parents before children where the graph allows."""


@attrs.frozen
class NestedSecret:
    """A secret sealed inside an item of a JSON column (a webhook subscription's secret in
    ``brands.webhooks``): bound to the table, the column, the row *and* the item, so an item
    copied into another row (another brand) fails to open."""

    table: str
    column: str
    item_field: str

    def __attrs_post_init__(self) -> None:
        declared = TABLES[self.table].personal.get(self.column)
        if declared is None or declared.protection is not Protection.SECRET:
            raise ValueError(f"{self.table}.{self.column} must be declared a secret column")

    def place(self, row_id: object, item_id: object) -> str:
        """The row part of the AAD: ``<row id>/<item id>``."""
        return f"{row_id}/{item_id}"


WEBHOOK_SECRET = NestedSecret("brands", "webhooks", "secret")
"""Where a brand's webhook subscription secrets are sealed (under the platform's data key)."""


def table_for(entity: type[Any]) -> Table:
    """The table that stores ``entity``."""
    for table in TABLES.values():
        if table.entity is entity:
            return table
    raise KeyError(entity)


__all__ = [
    "TABLES",
    "WEBHOOK_SECRET",
    "Erasure",
    "ForeignKey",
    "NestedSecret",
    "Personal",
    "Protection",
    "Table",
    "UniqueKey",
    "table_for",
]
