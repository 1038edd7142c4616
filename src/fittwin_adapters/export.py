"""Parquet exports of the analytics tables on any fsspec URL (``file://``, ``memory://``,
``s3://``): the :class:`~fittwin_core.ports.ExportSink` behind ``ft.analytics.export_parquet``.

Layout, Hive-style, readable by DuckDB (``read_parquet('…/orders/*/*.parquet',
hive_partitioning=true)``), Spark, Trino or ``pyarrow.dataset``::

    <url>/<table>/month=YYYY-MM/part-0.parquet

Files are first written under ``<url>/<table>/_staging-<token>/`` (a folder every Hive reader
skips, its name starting with ``_``) and moved into place on commit, so a failed export leaves
the previous files as they were. pyarrow is needed (``pip install 'fittwin[notebook]'``),
s3fs for ``s3://`` (``fittwin[s3]``); both are imported only when an export runs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import fsspec

from fittwin_core.domain import ConfigurationError, StoreUnavailable, ValidationError
from fittwin_core.domain.analytics import ExportColumn
from fittwin_core.ports import ExportedFile

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_PARTITION = re.compile(r"month=(\d{4}-\d{2})$")
_S3 = ("s3", "s3a")
PART = "part-0.parquet"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError("Parquet exports need pyarrow: pip install 'fittwin[notebook]'") from None
    return pa, pq


def arrow_schema(columns: Sequence[ExportColumn]) -> Any:
    """The pyarrow schema of an export table: strings, int64, bool, UTC microsecond
    timestamps and dates."""
    pa, _ = _pyarrow()
    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }
    return pa.schema([pa.field(c.name, types[c.type]) for c in columns])


@contextmanager
def _translated(action: str, where: str) -> Any:
    try:
        yield
    except (ConfigurationError, ValidationError, StoreUnavailable):
        raise
    except ImportError as exc:
        raise ConfigurationError(
            f"{action} at {where} needs a package that is missing ({exc.name})"
        ) from None
    except (OSError, ValueError, RuntimeError) as exc:  # fsspec, s3fs and pyarrow errors
        raise StoreUnavailable(f"could not {action} at {where} ({type(exc).__name__})") from None


class ParquetExport:
    """Writes export tables as month-partitioned Parquet files with pyarrow and fsspec."""

    def __repr__(self) -> str:
        return "ParquetExport()"

    def open_table(
        self,
        url: str,
        table: str,
        columns: Sequence[ExportColumn],
        *,
        replace_from: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> ParquetTableWriter:
        """A writer for ``table`` under ``url`` (see :class:`~fittwin_core.ports.ExportSink`)."""
        if not isinstance(url, str) or "://" not in url:
            raise ConfigurationError("the export URL must name a protocol, such as s3://bucket/analytics")
        if "::" in url:
            raise ConfigurationError("the export URL chains filesystems (::), which is not supported")
        if replace_from is not None and not _MONTH.fullmatch(replace_from):
            raise ValidationError("replace_from", "must be a month YYYY-MM")
        protocol = url.split("://", 1)[0]
        options = {"skip_instance_cache": True, "use_listings_cache": False, **(storage_options or {})}
        if protocol == "file":
            options.setdefault("auto_mkdir", True)
        where = f"{protocol}://"
        try:
            fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError:
            extra = " (install fittwin[s3])" if protocol in _S3 else ""
            raise ConfigurationError(f"{protocol}:// exports need a package that is missing{extra}") from None
        except Exception as exc:
            raise ConfigurationError(
                f"cannot open the {protocol}:// export URL with these storage options ({type(exc).__name__})"
            ) from None
        root = str(root).rstrip("/")
        if protocol in _S3 and not root:
            raise ConfigurationError("the s3:// export URL must name a bucket")
        return ParquetTableWriter(fs, f"{root}/{table}", table, columns, replace_from, where)


class ParquetTableWriter:
    """One table's export in progress: a Parquet writer per month, staged until :meth:`commit`."""

    def __init__(
        self,
        fs: Any,
        base: str,
        table: str,
        columns: Sequence[ExportColumn],
        replace_from: str | None,
        where: str,
    ) -> None:
        self._fs = fs
        self._base = base
        self._table = table
        self._schema = arrow_schema(columns)
        self._names = [c.name for c in columns]
        self._replace_from = replace_from
        self._where = where
        self._staging = f"{base}/_staging-{uuid.uuid4().hex}"
        self._open: dict[str, tuple[Any, Any]] = {}
        self._rows: dict[str, int] = {}
        self._done = False

    def write(self, month: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append ``rows`` to month ``"YYYY-MM"``."""
        if self._done:
            raise ValidationError("export", "this table's export is already finished")
        if not _MONTH.fullmatch(month):
            raise ValidationError("month", "must be a month YYYY-MM")
        pa, pq = _pyarrow()
        with _translated("write Parquet", self._where):
            records = [{n: r.get(n) for n in self._names} for r in rows]
            try:
                batch = pa.Table.from_pylist(records, schema=self._schema)
            except (pa.ArrowException, TypeError) as exc:
                raise ValidationError("rows", f"do not match the columns of {self._table}") from exc
            if month not in self._open:
                handle = self._fs.open(f"{self._staging}/month={month}/{PART}", "wb")
                self._open[month] = (handle, pq.ParquetWriter(handle, self._schema, compression="zstd"))
                self._rows[month] = 0
            self._open[month][1].write_table(batch)
            self._rows[month] += len(rows)

    def commit(self) -> list[ExportedFile]:
        """Move the written months into place and remove stale months of the replaced range."""
        self._finish()
        written: list[ExportedFile] = []
        with _translated("publish the Parquet export", self._where):
            for month in sorted(self._rows):
                final_dir = f"{self._base}/month={month}"
                final = f"{final_dir}/{PART}"
                if self._fs.exists(final_dir):
                    self._fs.rm(final_dir, recursive=True)
                self._fs.makedirs(final_dir, exist_ok=True)
                self._fs.mv(f"{self._staging}/month={month}/{PART}", final)
                written.append(
                    ExportedFile(self._table, month, self._fs.unstrip_protocol(final), self._rows[month])
                )
            for month, folder in self._existing_months().items():
                stale = month not in self._rows and (
                    self._replace_from is None or month >= self._replace_from
                )
                if stale:
                    self._fs.rm(folder, recursive=True)
            self._remove_staging()
        return written

    def abort(self) -> None:
        """Drop the staged files; what was already published stays."""
        if self._done and not self._open:
            self._remove_staging()
            return
        try:
            self._finish()
        finally:
            self._remove_staging()

    def _finish(self) -> None:
        self._done = True
        opened, self._open = self._open, {}
        with _translated("write Parquet", self._where):
            for handle, writer in opened.values():
                try:
                    writer.close()
                finally:
                    handle.close()

    def _existing_months(self) -> dict[str, str]:
        if not self._fs.exists(self._base):
            return {}
        found = {}
        for path in self._fs.ls(self._base, detail=False):
            match = _PARTITION.search(str(path).rstrip("/"))
            if match:
                found[match[1]] = str(path).rstrip("/")
        return found

    def _remove_staging(self) -> None:
        try:
            if self._fs.exists(self._staging):
                self._fs.rm(self._staging, recursive=True)
        except OSError:  # best effort: a leftover "_staging-" folder is skipped by readers
            pass


__all__ = ["PART", "ParquetExport", "ParquetTableWriter", "arrow_schema"]
