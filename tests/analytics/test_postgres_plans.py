"""The filtered analytics queries can be answered from the data model's indexes on PostgreSQL.

The test database is tiny, so the planner would rightly scan whole tables; with sequential
scans disabled it must still find an index path for the per-referrer and per-product forms
(a predicate no index can serve would leave a ``Seq Scan`` in the plan)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import pytest

from fittwin_adapters.postgres import analytics as sql
from fittwin_core import Actor, FitTwin
from fittwin_core.testing.contract.analytics import Story

pytestmark = pytest.mark.postgres


def _scans(ft: FitTwin, query: str, **filters: Any) -> list[str]:
    store: Any = ft.context.store
    found: list[str] = []
    with store.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")

        def explain(stmt: Any) -> list[tuple[Any, ...]]:
            compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            for (line,) in conn.exec_driver_sql(f"EXPLAIN {compiled}"):
                match = re.search(r"((?:Seq|Index|Index Only|Bitmap Index) Scan[^(]*)", line)
                if match:
                    found.append(match[1].strip())
            return []

        getattr(sql, query)(explain, **filters)
    return found


@pytest.fixture
def backend() -> str:
    """Plans are a PostgreSQL matter: ``ft`` runs on PostgreSQL only here."""
    return "postgres"


def test_per_referrer_queries_go_through_the_referrer_and_rid_indexes(ft: FitTwin, story: Story) -> None:
    who = {"since": None, "until": None, "referrer_user_id": story.ada.id}
    funnel = _scans(ft, "referral_funnel", period="month", **who)
    liability = _scans(ft, "reward_liability", **who)
    for scans in (funnel, liability):
        assert not [s for s in scans if s.startswith("Seq Scan")], scans
        assert any("idx_referrals_referrer" in s for s in scans)
    assert any("idx_referral_events_rid_type" in s for s in funnel)
    assert any("idx_reward_ledger_rid_status" in s for s in funnel + liability)


def test_per_product_queries_reach_order_lines_through_the_variant_index(ft: FitTwin, story: Story) -> None:
    product: UUID = story.tee.id
    for query in ("size_recommendations", "returns_by_size"):
        scans = _scans(ft, query, since=None, until=None, product_id=product, brand_id=None)
        assert not [s for s in scans if s.startswith("Seq Scan")], (query, scans)
        assert any("idx_order_items_variant" in s for s in scans), scans
        assert any("idx_product_variants_product_status" in s for s in scans), scans


def test_period_buckets_are_utc_whatever_the_session_time_zone(ft: FitTwin, story: Story) -> None:
    store: Any = ft.context.store
    with store.engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'Pacific/Kiritimati'")  # UTC+14
        rows = sql.orders_by_status(
            lambda stmt: [tuple(r) for r in conn.execute(stmt)], since=None, until=None, period="day"
        )
    assert rows == ft.analytics.queries(actor=Actor.system()).orders_by_status(period="day")
    assert "2026-02-01" in {r["period"] for r in rows}  # the order at 1 Feb 00:00 UTC
