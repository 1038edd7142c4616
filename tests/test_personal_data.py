"""Personal data is declared once (``fittwin_core.schema``) and everything reads it."""

from __future__ import annotations

import datetime as dt
import enum
import typing
import uuid

import attrs
import pytest

from fittwin_adapters.postgres.migrations.versions import r0005_privacy
from fittwin_core.schema import TABLES, WEBHOOK_SECRET, Protection

# The columns whose type can carry text: str, bytes, JSON objects, nested attrs classes.
_SCALAR = (uuid.UUID, dt.datetime, dt.date, int, float, bool, enum.Enum)

UNAUDITED_WITH_PERSONAL_DATA = {
    # Written in bulk (every referral click); the hashes are keyed and cleared after click_hash_days.
    "referral_events",
    # Written with their order (which is audited) and stripped of body values on erasure.
    "order_items",
    # Request records of the library itself; erased with the shopper's orders.
    "idempotency_keys",
}


def _can_hold_text(annotation: object) -> bool:
    args = typing.get_args(annotation)
    if args:
        return any(_can_hold_text(a) for a in args if a is not type(None))
    return not (isinstance(annotation, type) and issubclass(annotation, _SCALAR))


@pytest.mark.parametrize("name", list(TABLES))
def test_every_text_or_json_column_is_declared_personal_or_not(name: str) -> None:
    table = TABLES[name]
    hints = typing.get_type_hints(table.entity)
    texty = {c for c in table.columns if _can_hold_text(hints[c])}
    declared = set(table.personal) | table.not_personal
    assert not set(table.personal) & table.not_personal, "declared both personal and not personal"
    assert declared <= set(table.columns), (
        f"declared columns the entity lacks: {declared - set(table.columns)}"
    )
    assert texty <= declared, f"{name}: undeclared text/JSON columns {sorted(texty - declared)}"


def test_blind_indexes_index_sealed_columns_of_their_row() -> None:
    for table in TABLES.values():
        for indexed, column in table.blind_indexes.items():
            assert table.personal[indexed].protection is Protection.SEALED, (table.name, column)


def test_tables_with_personal_data_or_keys_are_audited() -> None:
    unaudited = {t.name for t in TABLES.values() if t.personal and not t.audited}
    assert unaudited == UNAUDITED_WITH_PERSONAL_DATA


def test_the_latest_audit_revision_redacts_what_the_declaration_says() -> None:
    expected = {t.name: (t.key[0], *sorted(t.secret_columns)) for t in TABLES.values() if t.audited}
    assert r0005_privacy.AUDITED == expected


@pytest.mark.parametrize("name", list(TABLES))
def test_reprs_show_no_personal_value(name: str) -> None:
    table = TABLES[name]
    fields = attrs.fields_dict(table.entity)
    for column in table.personal:
        hook = fields[column].repr
        assert hook is False or callable(hook), f"{name}.{column} is shown in reprs"


def test_a_webhook_subscription_copied_to_another_brand_fails_to_open() -> None:
    from fittwin_adapters.connect import connect
    from fittwin_core.domain import AuthenticationFailed
    from fittwin_core.domain.keys import PLATFORM_KEY_OWNER

    ft = connect()
    vault = ft.brands.vault
    a, b, sub = (ft.context.ids.new_id() for _ in range(3))
    with ft.context.store.unit_of_work() as uow:
        sealed = vault.seal_nested(uow, PLATFORM_KEY_OWNER, WEBHOOK_SECRET, a, sub, "whsec_canary")
        assert vault.open_nested(uow, PLATFORM_KEY_OWNER, WEBHOOK_SECRET, a, sub, sealed) == "whsec_canary"
        with pytest.raises(AuthenticationFailed):
            vault.open_nested(uow, PLATFORM_KEY_OWNER, WEBHOOK_SECRET, b, sub, sealed)


def test_a_subscription_copied_into_another_brand_signs_and_sends_nothing() -> None:
    from fittwin_adapters.connect import connect
    from fittwin_core.domain import Actor, EffectKind, OutboxStatus
    from fittwin_core.services.base import LoggingWebhookSender, Settings
    from fittwin_core.services.brands import BrandEvent

    sender = LoggingWebhookSender()
    ft = connect(webhooks=sender, settings=Settings(dispatch_inline=False))
    platform = Actor.platform(ft.context.ids.new_id())
    a = ft.brands.create("Brand A", {"email": "a@brand.example"}, actor=platform)
    b = ft.brands.create("Brand B", {"email": "b@brand.example"}, actor=platform)
    ft.brands.add_webhook(a.id, "https://a.example/hooks", ["order.sent_to_brand"], actor=platform)
    with ft.context.store.unit_of_work() as uow:  # someone with write access to the table
        webhooks = uow.brands.get(a.id).webhooks
        uow.brands.update(attrs.evolve(uow.brands.get(b.id), webhooks=webhooks))
        uow.commit()
    data = {"order_id": "0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f"}
    recorded: list[object] = []
    with ft.context.store.unit_of_work(Actor.system()) as uow:
        for brand in (b, a):
            event = BrandEvent(brand.id, "order.sent_to_brand", data, key=f"copy-test-{brand.id}")
            ft.brands._record_events(uow, [event], recorded)  # type: ignore[arg-type]
        uow.commit()
    report = ft.effects.dispatch(actor=Actor.system())
    assert [w.url for w in sender.sent] == ["https://a.example/hooks"]  # B's event never reaches A
    assert len(report.delivered) == 1 and len(report.dead) == 1
    dead = ft.effects.get(report.dead[0], actor=Actor.system())
    assert dead.kind == EffectKind.BRAND_WEBHOOK and dead.status == OutboxStatus.DEAD
    assert dead.payload["brand_id"] == str(b.id)


def test_the_analytics_export_allow_list_leaves_every_declared_personal_column_out() -> None:
    from fittwin_core.domain.analytics import EXPORT_TABLES
    from fittwin_core.schema import table_for

    for export in EXPORT_TABLES.values():
        table = table_for(export.entity)
        leaked = set(export.column_names) & set(table.personal)
        assert not leaked, f"{export.name} exports personal columns {sorted(leaked)}"
        assert not any(name.endswith(("_hash", "_bidx", "fingerprint")) for name in export.column_names)


def test_entities_kept_by_the_postgres_store_hold_no_personal_data() -> None:
    # The PostgreSQL store keeps entities of a few catalogue tables built once per row value
    # (a process-wide cache): an erased person's data must never linger there.
    from fittwin_adapters.postgres.store import CACHED_ENTITIES

    assert CACHED_ENTITIES
    assert {name for name in CACHED_ENTITIES if TABLES[name].personal} == set()


def test_sealing_a_row_reads_the_owners_data_key_once_and_creates_it_on_first_use() -> None:
    from fittwin_adapters.connect import connect
    from fittwin_core.domain import Address, AddressType

    ft = connect()
    vault = ft.accounts.vault
    owner, row_id = uuid.uuid4(), uuid.uuid4()
    lines = {"line1": "1 Quai", "line2": None, "city": "Lyon", "postal_code": "69000", "country": "FR"}
    with ft.context.store.unit_of_work() as uow:
        assert vault.seal_fields(uow, owner, Address, row_id, line2=None) == {"line2": None}
        assert uow.data_keys.find(owner) is None  # nothing to seal: no key made
        reads: list[object] = []
        find = uow.data_keys.find
        uow.data_keys.find = lambda key: reads.append(key) or find(key)  # type: ignore[method-assign]
        sealed = vault.seal_fields(uow, owner, Address, row_id, **lines)
        assert reads == [owner]  # one read for the five columns, which created the key
        assert uow.data_keys.find(owner) is not None and sealed["line2"] is None
        assert all(sealed[c] != lines[c] for c in lines if lines[c] is not None)
        address = Address(
            id=row_id,
            user_id=owner,
            type=AddressType.SHIPPING,
            line1=sealed["line1"],
            city=sealed["city"],
            postal_code=sealed["postal_code"],
            country=sealed["country"],
            created_at=dt.datetime.now(dt.UTC),
            updated_at=dt.datetime.now(dt.UTC),
        )
        opened = vault.open_fields(uow, owner, address)
    assert {c: opened[c] for c in lines} == lines
