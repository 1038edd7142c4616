"""The SQLAlchemy Core metadata of FitTwin's PostgreSQL schema, derived from the table catalog.

Columns are the entities' attrs fields, same names, same order; their SQL types follow the
data model (``uuid``, ``citext``, ``jsonb``, ``CHAR(22)`` rids, ``CHAR(3)`` currencies,
``BIGINT`` cents, ``SMALLINT`` quantities, native enum types, ``timestamptz``). Keys, unique
indexes and foreign keys come from :data:`fittwin_core.schema.TABLES`; the data model's
other named indexes are listed here.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from fittwin_core.domain.rules import JsonMap
from fittwin_core.schema import TABLES
from fittwin_core.schema import Table as CatalogTable

metadata = sa.MetaData()
"""Every FitTwin table, as SQLAlchemy Core :class:`~sqlalchemy.Table` objects."""

PARTITION_KEY = "id"
"""``orders`` and ``event_logs`` are partitioned by RANGE on their UUIDv7 ``id``."""

# Column types the data model fixes where the Python type alone does not say.
_CITEXT = pg.CITEXT()
_RID = sa.CHAR(22)
_CURRENCY = sa.CHAR(3)
TYPE_OVERRIDES: Mapping[tuple[str, str], sa.types.TypeEngine[Any]] = {
    ("user_profiles", "email"): _CITEXT,
    ("brand_users", "email"): _CITEXT,
    ("user_profiles", "username"): sa.VARCHAR(32),
    ("referrals", "rid"): _RID,
    ("referral_events", "rid"): _RID,
    ("reward_ledger_entries", "rid"): _RID,
    ("orders", "rid"): sa.Text(),  # the data model's TEXT, referencing the CHAR(22) key
    ("product_variants", "currency"): _CURRENCY,
    ("order_items", "currency"): _CURRENCY,
    ("reward_ledger_entries", "currency"): _CURRENCY,
    ("product_variants", "price_cents"): sa.BigInteger(),
    ("order_items", "unit_price_cents"): sa.BigInteger(),
    ("reward_ledger_entries", "amount_cents"): sa.BigInteger(),
    ("orders", "refunded_cents"): sa.BigInteger(),
    ("order_items", "qty"): sa.SmallInteger(),
    ("order_items", "reserved_qty"): sa.SmallInteger(),
    ("avatars", "confidence"): sa.SmallInteger(),
    ("payment_methods", "last4"): sa.CHAR(4),
}

NAMED_INDEXES: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "user_profiles": (("idx_user_profiles_default_pm", ("default_payment_method_id",)),),
    "avatars": (("idx_avatars_user_id_status", ("user_id", "status")),),
    "brand_users": (("idx_brand_users_brand_role", ("brand_id", "role")),),
    "product_variants": (
        ("idx_product_variants_product_status", ("product_id", "status")),
        ("idx_product_variants_inventory", ("inventory",)),
    ),
    "orders": (
        ("idx_orders_user_status", ("user_id", "status")),
        ("idx_orders_rid", ("rid",)),
        # idx_orders_payment_intent is unique: see the catalog (enforced by a trigger).
    ),
    "order_items": (
        ("idx_order_items_order", ("order_id",)),
        ("idx_order_items_variant", ("variant_id",)),
        ("idx_order_items_brand_order", ("brand_id", "order_id")),  # an addition: orders.for_brand
    ),
    "addresses": (
        ("idx_addresses_user_type", ("user_id", "type")),
        # The address lines are sealed; the index covers their keyed blind indexes.
        ("idx_addresses_country_postal", ("country_bidx", "postal_code_bidx")),
    ),
    "payment_methods": (("idx_payment_methods_user", ("user_id",)),),
    "referrals": (
        ("idx_referrals_referrer", ("referrer_user_id",)),
        ("idx_referrals_target", ("target_product_id",)),
    ),
    "referral_events": (
        ("idx_referral_events_rid_type", ("rid", "event_type")),
        ("idx_referral_events_order", ("order_id",)),
    ),
    "event_logs": (
        ("idx_event_logs_entity", ("entity_type", "entity_id")),
        ("idx_event_logs_actor", ("actor_type", "actor_id")),
        ("idx_event_logs_created_at", ("created_at",)),
    ),
    "reward_ledger_entries": (
        ("idx_reward_ledger_rid_status", ("rid", "status")),
        ("idx_reward_ledger_order", ("order_id",)),
    ),
    "fit_map_proposals": (("idx_fit_map_proposals_fit_map_status", ("fit_map_id", "status")),),
    "outbox": (("idx_outbox_due", ("status", "available_at")),),  # an addition: what to dispatch next
}
"""The data model's non-unique indexes (its unique ones are in the catalog)."""

CHECKS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "product_variants": (
        ("ck_product_variants_inventory_nonnegative", "inventory >= 0"),
        ("ck_product_variants_price_nonnegative", "price_cents >= 0"),
    ),
    "order_items": (
        ("ck_order_items_qty_positive", "qty > 0"),
        ("ck_order_items_reserved_qty", "reserved_qty >= 0 AND reserved_qty <= qty"),
    ),
    "avatars": (
        ("ck_avatars_confidence", "confidence BETWEEN 0 AND 100"),
        ("ck_avatars_version_positive", "version >= 1"),
    ),
}
"""Last-line checks in the database for rules the entities already enforce."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


ENUM_TYPES: dict[type[Enum], pg.ENUM] = {}
"""Native enum types by Python enum: ``OrderStatus`` → ``order_status`` with the same labels."""


def _enum_type(enum: type[Enum]) -> pg.ENUM:
    if enum not in ENUM_TYPES:
        labels = [str(member.value) for member in enum]
        ENUM_TYPES[enum] = pg.ENUM(*labels, name=_snake(enum.__name__), create_type=False)
    return ENUM_TYPES[enum]


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def column_kind(tp: Any) -> str:
    """How a Python field type is stored: ``json``, ``enum`` or ``scalar``."""
    base, _ = _unwrap_optional(tp)
    if isinstance(base, type) and issubclass(base, Enum):
        return "enum"
    if (
        attrs.has(base)
        or base is JsonMap
        or typing.get_origin(base) in (tuple, list, dict)
        or (isinstance(base, type) and issubclass(base, dict | list | tuple))
    ):
        return "json"
    return "scalar"


def _sql_type(table: str, column: str, tp: Any) -> sa.types.TypeEngine[Any]:
    if (table, column) in TYPE_OVERRIDES:
        return TYPE_OVERRIDES[(table, column)]
    base, _ = _unwrap_optional(tp)
    kind = column_kind(base)
    if kind == "enum":
        return _enum_type(base)
    if kind == "json":
        return pg.JSONB(none_as_null=True)
    scalar: dict[Any, sa.types.TypeEngine[Any]] = {
        UUID: pg.UUID(as_uuid=True),
        str: sa.Text(),
        int: sa.Integer(),
        float: sa.Float(),
        bool: sa.Boolean(),
        datetime: sa.TIMESTAMP(timezone=True),
        date: sa.Date(),
        bytes: pg.BYTEA(),
    }
    if base not in scalar:
        raise TypeError(f"{table}.{column}: no SQL type for {base!r}")
    return scalar[base]


def fk_name(table: str, column: str) -> str:
    """The name of the foreign key on ``table.column``."""
    return f"fk_{table}_{column}"


def partition_clause(table: CatalogTable) -> dict[str, Any]:
    """The ``postgresql_partition_by`` option of a partitioned table."""
    return {"postgresql_partition_by": f"RANGE ({PARTITION_KEY})"} if table.partitioned else {}


def _build(spec: CatalogTable) -> sa.Table:
    attrs.resolve_types(spec.entity)
    columns: list[sa.Column[Any]] = []
    fks = {fk.column: fk for fk in spec.foreign_keys}
    for field in attrs.fields(spec.entity):
        _, nullable = _unwrap_optional(field.type)
        args: list[Any] = [field.name, _sql_type(spec.name, field.name, field.type)]
        if field.name in fks:
            fk = fks[field.name]
            args.append(
                sa.ForeignKey(
                    f"{fk.table}.{fk.ref_column}",
                    name=fk_name(spec.name, fk.column),
                    onupdate="CASCADE",
                    ondelete="RESTRICT",
                    use_alter=True,
                )
            )
        server_default = sa.text("now()") if field.name in ("created_at", "updated_at") else None
        columns.append(
            sa.Column(
                *args,
                primary_key=field.name in spec.key,
                nullable=nullable and field.name not in spec.key,
                server_default=server_default,
            )
        )
    extras: list[Any] = []
    for unique in spec.uniques:
        where = None
        if unique.only_when:
            where = sa.text(
                " AND ".join(
                    f"{col} IN ({', '.join(repr(v) for v in values)})"
                    if len(values) > 1
                    else f"{col} = {values[0]!r}"
                    for col, values in unique.only_when
                )
            )
        if unique.by_trigger:
            extras.append(sa.Index(unique.name, *unique.columns))  # uniqueness: a trigger (the migration)
            continue
        if unique.name.endswith("_key") and where is None:
            extras.append(sa.UniqueConstraint(*unique.columns, name=unique.name))
            continue
        parts: list[Any] = [
            sa.func.lower(sa.column(col)) if _needs_lower(spec.name, col, unique.case_insensitive) else col
            for col in unique.columns
        ]
        extras.append(sa.Index(unique.name, *parts, unique=True, postgresql_where=where))
    for name, cols in NAMED_INDEXES.get(spec.name, ()):
        extras.append(sa.Index(name, *cols))
    for name, condition in CHECKS.get(spec.name, ()):
        extras.append(sa.CheckConstraint(condition, name=name))
    return sa.Table(spec.name, metadata, *columns, *extras, **partition_clause(spec))


def _needs_lower(table: str, column: str, case_insensitive: frozenset[str]) -> bool:
    # citext columns compare case-insensitively by themselves; others need lower().
    return column in case_insensitive and not isinstance(TYPE_OVERRIDES.get((table, column)), pg.CITEXT)


tables: dict[str, sa.Table] = {name: _build(spec) for name, spec in TABLES.items()}
"""FitTwin's tables by name."""

ENUMS: tuple[pg.ENUM, ...] = tuple(ENUM_TYPES.values())
"""The native enum types the schema uses."""


def audited_tables() -> list[CatalogTable]:
    """The catalog's privileged tables, mirrored into ``event_logs`` by triggers."""
    return [spec for spec in TABLES.values() if spec.audited]


__all__ = [
    "CHECKS",
    "ENUMS",
    "ENUM_TYPES",
    "NAMED_INDEXES",
    "PARTITION_KEY",
    "TYPE_OVERRIDES",
    "audited_tables",
    "column_kind",
    "fk_name",
    "metadata",
    "partition_clause",
    "tables",
]
