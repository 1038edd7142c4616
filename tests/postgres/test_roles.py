"""The application as a role that does not own FitTwin's tables: the audit trail holds.

Roles are cluster-wide, so every test names its roles after its own throw-away database and
drops them afterwards (parallel runs never share one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.postgres import PostgresStore, grant
from fittwin_core.domain import Actor, ConfigurationError
from tests.support.postgres import TestDatabases, sql_engine
from tests.support.shop import open_shop

pytestmark = pytest.mark.postgres


@pytest.fixture
def roles(postgres_url: URL, postgres_databases: TestDatabases) -> Iterator[tuple[URL, URL]]:
    """``(app URL, analytics URL)``: roles of this test's database, granted by :func:`grant`."""
    db = postgres_url.database
    assert db is not None
    app, analytics = f"{db}_app", f"{db}_ro"
    grant(postgres_url, app_role=app, analytics_role=analytics, create=True)
    try:
        yield postgres_url.set(username=app), postgres_url.set(username=analytics)
    finally:
        postgres_databases.drop(postgres_url)  # privileges go with the database, then the roles
        admin = sa.create_engine(
            postgres_databases.server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{app}", "{analytics}"'))
        admin.dispose()


def _refused(engine: sa.Engine, sql: str, **params: Any) -> str:
    """Run ``sql``; the SQLSTATE it failed with (the test fails if it succeeded)."""
    with engine.connect() as conn:
        try:
            conn.execute(sa.text(sql), params)
        except sa.exc.DBAPIError as exc:
            return str(getattr(exc.orig, "sqlstate", ""))
        conn.rollback()
    pytest.fail(f"the role could run: {sql}")


def test_the_app_role_runs_fittwin_and_cannot_touch_the_audit_trail(
    roles: tuple[URL, URL], clock: Any, ids: Any
) -> None:
    app_url, _ = roles
    ft = connect(
        PostgresStore(app_url, clock=clock, ids=ids),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    raw = sql_engine(app_url)
    try:
        shop = open_shop(ft)
        order = shop.place()
        shop.pay(order)
        ada = shop.shopper
        ft.accounts.change_email(ada.id, "ada.moved@example.com", actor=Actor.shopper(ada.id))
        ft.privacy.export_user(ada.id, actor=Actor.platform(ids.new_id()))
        with raw.connect() as conn:
            audit = conn.execute(
                sa.text("SELECT action, metadata FROM event_logs WHERE entity_id = :id ORDER BY id"),
                {"id": ada.id},
            ).all()
            total = conn.execute(sa.text("SELECT count(*) FROM event_logs")).scalar_one()
        # Changing the login email wrote an audit row (the trigger runs as the owner), redacted.
        assert (
            "update",
            {"op": "update", "old": {"email": "<redacted>"}, "new": {"email": "<redacted>"}},
        ) in [(a, m) for a, m in audit]
        assert any(a == "user.export" for a, _ in audit)  # the library's own records still go in

        for sql in (
            "ALTER TABLE event_logs DISABLE TRIGGER fittwin_append_only",
            "ALTER TABLE event_logs DISABLE TRIGGER ALL",
            "ALTER TABLE user_profiles DISABLE TRIGGER fittwin_audit",
            "UPDATE event_logs SET metadata = '{}'::jsonb",
            "DELETE FROM event_logs",
            "TRUNCATE event_logs",
            "UPDATE event_logs_default SET action = 'forged'",
            "DELETE FROM event_logs_default",
            "INSERT INTO event_logs (id, actor_type, action, entity_type, entity_id, metadata, created_at) "
            "VALUES (gen_random_uuid(), 'system', 'update', 'orders', gen_random_uuid(), '{}', now())",
            "INSERT INTO event_logs_default (id, actor_type, action, entity_type, entity_id, metadata, "
            "created_at) VALUES (gen_random_uuid(), 'system', 'user.export', 'orders', gen_random_uuid(), "
            "'{}', now())",
            "DROP TRIGGER fittwin_audit ON user_profiles",
            "CREATE OR REPLACE FUNCTION fittwin_audit() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$",
            "DELETE FROM fittwin_alembic_version",
        ):
            assert _refused(raw, sql) == "42501", sql
        # Through the one door the library uses: a record posing as a row change is refused.
        forged = (
            '[{"id": "019bc186-de00-7000-8000-000000000001", "actor_type": "platform_admin",'
            ' "action": "update",'
            ' "entity_type": "orders", "entity_id": "019bc186-de00-7000-8000-000000000002", "metadata": {},'
            ' "created_at": "2026-01-01T00:00:00+00:00"}]'
        )
        assert _refused(raw, "SELECT fittwin_record_events(CAST(:rows AS jsonb))", rows=forged) == "42501"
        with raw.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM event_logs")).scalar_one() == total
    finally:
        raw.dispose()
        ft.close()


def test_the_analytics_role_reads_only_what_is_not_personal(roles: tuple[URL, URL]) -> None:
    _, analytics_url = roles
    engine = sql_engine(analytics_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT id, region, created_at FROM user_profiles")).all()
            conn.execute(sa.text("SELECT id, status, totals FROM orders")).all()
        for sql in (
            "SELECT email FROM user_profiles",
            "SELECT body_metrics FROM user_profiles",
            "SELECT line1 FROM addresses",
            "SELECT last4 FROM payment_methods",
            "SELECT wrapped_key FROM data_keys",
            "SELECT fit_summary FROM order_items",
            "UPDATE orders SET refunded_cents = 0",
            "DELETE FROM brands",
        ):
            assert _refused(engine, sql) == "42501", sql
    finally:
        engine.dispose()


def test_grant_refuses_missing_roles_and_the_owner(postgres_url: URL) -> None:
    db = postgres_url.database
    with pytest.raises(ConfigurationError, match="no role"):
        grant(postgres_url, app_role=f"{db}_nobody")
    with pytest.raises(ConfigurationError, match="owns"):
        grant(postgres_url, app_role=str(postgres_url.username))
    with pytest.raises(ConfigurationError, match="app_role"):
        grant(postgres_url, app_role="Robert'); DROP TABLE brands;--")
