"""The persisted tables as data: keys, unique indexes, foreign keys and audit rules.

One description both stores follow: the memory store enforces it directly, the PostgreSQL
schema declares the same constraints (a test checks they agree), and the contract suite reads
it to know what to test. Table, column and index names are the data model's.
"""

from __future__ import annotations

from collections.abc import Mapping
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


@attrs.frozen
class Table:
    """One table: its entity, key, constraints and how it is audited."""

    name: str
    entity: type[Any]
    key: tuple[str, ...] = ("id",)
    uniques: tuple[UniqueKey, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    audited: bool = False
    """Privileged table: every insert/update/delete is mirrored into ``event_logs``."""
    secret_columns: frozenset[str] = frozenset()
    """Personal data and secrets: redacted in audit diffs."""
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
            secret_columns=frozenset(
                {"email", "password_hash", "name", "phone", "body_metrics", "appearance"}
            ),
            citext_columns=frozenset({"email"}),
        ),
        Table(
            "avatars",
            Avatar,
            uniques=(UniqueKey("idx_avatars_user_version_unique", ("user_id", "version")),),
            foreign_keys=(_USER,),
        ),
        Table(
            "brands",
            Brand,
            uniques=(UniqueKey("brands_name_key", ("name",)),),
            audited=True,
            secret_columns=frozenset({"primary_contact", "webhooks"}),
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
            secret_columns=frozenset({"email", "invite_token"}),
            citext_columns=frozenset({"email"}),
        ),
        Table(
            "size_charts",
            SizeChart,
            foreign_keys=(ForeignKey("brand_id", "brands"),),
            audited=True,
        ),
        Table(
            "fit_maps",
            FitMap,
            foreign_keys=(ForeignKey("brand_id", "brands"),),
            audited=True,
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
        ),
        Table(
            "product_variants",
            ProductVariant,
            uniques=(UniqueKey("product_variants_sku_key", ("sku",)),),
            foreign_keys=(ForeignKey("product_id", "products"),),
            audited=True,
        ),
        Table(
            "addresses",
            Address,
            foreign_keys=(_USER,),
            secret_columns=frozenset(
                {
                    "line1",
                    "line2",
                    "city",
                    "state",
                    "postal_code",
                    "country",
                    "postal_code_bidx",
                    "country_bidx",
                }
            ),
        ),
        Table(
            "payment_methods",
            PaymentMethod,
            uniques=(UniqueKey("idx_payment_methods_psp_token", ("psp_token_id",)),),
            foreign_keys=(_USER, ForeignKey("billing_address_id", "addresses")),
            audited=True,
            secret_columns=frozenset({"psp_token_id"}),
        ),
        Table(
            "referrals",
            Referral,
            key=("rid",),
            foreign_keys=(
                ForeignKey("referrer_user_id", "user_profiles"),
                ForeignKey("target_product_id", "products"),
            ),
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
            secret_columns=frozenset({"psp_token_id"}),
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
        ),
        Table(
            "referral_events",
            ReferralEvent,
            foreign_keys=(ForeignKey("rid", "referrals", "rid"), ForeignKey("order_id", "orders")),
            secret_columns=frozenset({"device_fingerprint", "ip_hash"}),
        ),
        Table(
            "reward_ledger_entries",
            RewardLedgerEntry,
            foreign_keys=(ForeignKey("rid", "referrals", "rid"), ForeignKey("order_id", "orders")),
            audited=True,
        ),
        Table("event_logs", EventLog, append_only=True, partitioned=True),
        Table(
            "fit_map_proposals",
            FitMapProposal,
            foreign_keys=(ForeignKey("fit_map_id", "fit_maps"), ForeignKey("brand_id", "brands")),
            audited=True,
        ),
        Table("data_keys", DataKey, key=("owner_id",), secret_columns=frozenset({"wrapped_key"})),
        Table("idempotency_keys", IdempotencyRecord, key=("scope", "key")),
        Table(
            "outbox",
            OutboxEffect,
            uniques=(UniqueKey("idx_outbox_idempotency_unique", ("idempotency_key",)),),
        ),
    )
}
"""Every table FitTwin persists, by name, parents before children where the graph allows."""


def table_for(entity: type[Any]) -> Table:
    """The table that stores ``entity``."""
    for table in TABLES.values():
        if table.entity is entity:
            return table
    raise KeyError(entity)


__all__ = ["TABLES", "ForeignKey", "Table", "UniqueKey", "table_for"]
