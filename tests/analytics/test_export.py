"""Parquet exports: layout, contents read back with pyarrow, no personal data, ``since``,
failures that leave published files alone; on memory://, file:// and moto's S3."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from fittwin_adapters.export import ParquetExport
from fittwin_core import FitTwin
from fittwin_core.domain import Actor, ConfigurationError, ValidationError
from fittwin_core.domain.analytics import EXPORT_TABLES
from fittwin_core.testing.clock import FrozenClock
from fittwin_core.testing.contract.analytics import MAR, Story
from tests.support.s3 import MotoS3

# Columns holding personal data or secrets anywhere in the schema: none may be exported
# (``brands.name`` is a brand's public name, not a person's, and is exported).
FORBIDDEN = {
    "email",
    "username",
    "phone",
    "password_hash",
    "body_metrics",
    "ip_hash",
    "device_fingerprint",
    "psp_token_id",
    "payment_intent_ref",
    "shipping_address_id",
    "billing_address_id",
    "metadata",
    "fit_summary",
    "primary_contact",
    "webhooks",
    "share_url",
    "notifications",
}


def _read(fs: Any, path: str) -> pa.Table:
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle)


def _memory_url() -> str:
    return f"memory://exports-{uuid.uuid4().hex}"


def test_every_allowed_table_lands_in_month_partitions(ft: FitTwin, story: Story) -> None:
    url = _memory_url()
    files = ft.analytics.export_parquet(url, actor=Actor.system())
    fs = fsspec.filesystem("memory")
    months = {(f.table, f.month) for f in files}
    assert ("orders", "2026-01") in months and ("orders", "2026-03") in months
    assert {f.table for f in files} == set(EXPORT_TABLES)
    for f in files:
        assert f.path == f"{url}/{f.table}/month={f.month}/part-0.parquet".replace("memory://", "memory:///")
        table = _read(fs, f.path)
        assert table.num_rows == f.rows > 0
        assert table.schema.names == list(EXPORT_TABLES[f.table].column_names)
        created = table.column("created_at").to_pylist()
        assert {c.strftime("%Y-%m") for c in created} == {f.month}
    orders = sum(f.rows for f in files if f.table == "orders")
    assert orders == 6
    assert not fs.glob(f"{url}/*/_staging-*")


def test_rows_read_back_as_projected(ft: FitTwin, story: Story) -> None:
    url = _memory_url()
    ft.analytics.export_parquet(url, tables=["orders", "order_items"], actor=Actor.system())
    fs = fsspec.filesystem("memory")
    march = _read(fs, f"{url}/orders/month=2026-03/part-0.parquet").to_pylist()
    (returned,) = march
    order = story.orders["wrong_size"]
    assert returned["id"] == str(order.id)
    assert returned["status"] == "closed" and returned["close_reason"] == "returned"
    assert returned["total_cents"] == order.totals.total == returned["refunded_cents"]
    assert returned["created_at"] == MAR
    items = _read(fs, f"{url}/order_items/month=2026-03/part-0.parquet").to_pylist()
    assert [(i["recommended_size"], i["size_label"]) for i in items] == [("L", "S")]
    assert isinstance(items[0]["recommendation_confidence"], int)
    schema = _read(fs, f"{url}/order_items/month=2026-03/part-0.parquet").schema
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("qty").type == pa.int64()


def test_no_personal_data_leaves(ft: FitTwin, story: Story) -> None:
    url = _memory_url()
    files = ft.analytics.export_parquet(url, actor=Actor.system())
    fs = fsspec.filesystem("memory")
    everything = ""
    for f in files:
        table = _read(fs, f.path)
        assert not FORBIDDEN & set(table.schema.names), f.table
        everything += json.dumps(table.to_pylist(), default=str)
    for who in ("ada", "bob", "cy", "dee"):
        assert f"{who}@example.com" not in everything
        assert f"{who} road" not in everything
    with ft.context.store.unit_of_work() as uow:
        hashes = {e.ip_hash for e in uow.referral_events.where() if e.ip_hash}
        fingerprints = {e.device_fingerprint for e in uow.referral_events.where() if e.device_fingerprint}
        tokens = {o.psp_token_id for o in uow.orders.where() if o.psp_token_id}
    assert hashes and fingerprints and tokens
    for secret in hashes | fingerprints | tokens:
        assert secret not in everything


def test_file_urls_read_as_a_hive_dataset(ft: FitTwin, story: Story, tmp_path: Path) -> None:
    ft.analytics.export_parquet(
        tmp_path.as_uri(), tables=["orders", "reward_ledger_entries"], actor=Actor.system()
    )
    dataset = pads.dataset(tmp_path / "orders", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == 6
    per_month = {
        m: table.column("month").to_pylist().count(m) for m in set(table.column("month").to_pylist())
    }
    assert per_month == {"2026-01": 2, "2026-02": 3, "2026-03": 1}
    ledger = pads.dataset(
        tmp_path / "reward_ledger_entries", format="parquet", partitioning="hive"
    ).to_table()
    assert sorted(ledger.column("amount_cents").to_pylist()) == [250, 500]
    assert sorted(p.name for p in (tmp_path / "orders").iterdir()) == [
        "month=2026-01",
        "month=2026-02",
        "month=2026-03",
    ]


def test_since_rewrites_whole_months_from_its_month_on(
    ft: FitTwin, story: Story, clock: FrozenClock, tmp_path: Path
) -> None:
    url = tmp_path.as_uri()
    ft.analytics.export_parquet(url, tables=["orders"], actor=Actor.system())
    january = tmp_path / "orders" / "month=2026-01" / "part-0.parquet"
    before = january.read_bytes()
    stale = tmp_path / "orders" / "month=2026-05"  # a month the store no longer has
    stale.mkdir()
    (stale / "part-0.parquet").write_bytes(b"old")
    # since falls mid-February: all of February is rewritten, January is left alone.
    files = ft.analytics.export_parquet(
        url, tables=["orders"], since=datetime(2026, 2, 20, tzinfo=UTC), actor=Actor.system()
    )
    assert [(f.month, f.rows) for f in files] == [("2026-02", 3), ("2026-03", 1)]
    assert january.read_bytes() == before
    assert not stale.exists()
    assert pq.read_table(tmp_path / "orders" / "month=2026-02" / "part-0.parquet").num_rows == 3


def test_unknown_tables_are_refused_before_anything_is_written(ft: FitTwin, story: Story) -> None:
    url = _memory_url()
    with pytest.raises(ValidationError) as caught:
        ft.analytics.export_parquet(url, tables=["orders", "user_profiles"], actor=Actor.system())
    assert caught.value.field == "tables[1]"
    assert not fsspec.filesystem("memory").exists(url.removeprefix("memory://"))
    for bad in ("", "no-protocol", "memory://a::file://b"):
        with pytest.raises((ValidationError, ConfigurationError)):
            ft.analytics.export_parquet(bad, actor=Actor.system())


def test_an_aborted_table_leaves_the_published_files(tmp_path: Path) -> None:
    spec = EXPORT_TABLES["brands"]
    sink = ParquetExport()
    row = {
        "id": "b1",
        "name": "North",
        "onboarding_status": "active",
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    first = sink.open_table(tmp_path.as_uri(), "brands", spec.columns)
    first.write("2026-01", [row])
    (published,) = first.commit()
    second = sink.open_table(tmp_path.as_uri(), "brands", spec.columns)
    second.write("2026-01", [row, {**row, "id": "b2"}])
    with pytest.raises(ValidationError):
        second.write("2026-01", [{**row, "created_at": "not a time"}])
    second.abort()
    assert pq.read_table(tmp_path / "brands" / "month=2026-01" / "part-0.parquet").num_rows == 1
    assert [p.name for p in (tmp_path / "brands").iterdir()] == ["month=2026-01"]
    assert published.rows == 1
    with pytest.raises(ValidationError):
        sink.open_table(tmp_path.as_uri(), "brands", spec.columns).write("2026-13", [row])


@pytest.mark.s3
def test_s3_exports_read_back(ft: FitTwin, story: Story, moto_s3: MotoS3) -> None:
    bucket = moto_s3.create_bucket("fittwin-exports")
    url = f"s3://{bucket}/analytics"
    files = ft.analytics.export_parquet(
        url,
        tables=["orders", "referral_events"],
        storage_options=moto_s3.storage_options,
        actor=Actor.system(),
    )
    assert {f.path.split(bucket, 1)[1] for f in files if f.table == "orders"} == {
        f"/analytics/orders/month=2026-0{m}/part-0.parquet" for m in (1, 2, 3)
    }
    s3 = moto_s3.admin
    keys = s3.find(f"{bucket}/analytics")
    assert all("_staging-" not in k for k in keys)
    events = _read(s3, f"{bucket}/analytics/referral_events/month=2026-01/part-0.parquet")
    assert sorted(events.column("event_type").to_pylist()) == ["click"] * 3 + ["conversion"] * 2
    # again, from March: January and February stay, March is replaced.
    again = ft.analytics.export_parquet(
        url,
        tables=["orders"],
        since=datetime(2026, 3, 1, tzinfo=UTC),
        storage_options=moto_s3.storage_options,
        actor=Actor.system(),
    )
    assert [f.month for f in again] == ["2026-03"]
    assert len(s3.find(f"{bucket}/analytics/orders")) == 3
    with pytest.raises(ConfigurationError, match="bucket"):
        ft.analytics.export_parquet("s3://", storage_options=moto_s3.storage_options, actor=Actor.system())
