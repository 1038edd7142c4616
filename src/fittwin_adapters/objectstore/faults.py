"""Upload failures on demand, for tests of what callers do when a put breaks part-way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fittwin_adapters.objectstore.store import FsspecObjectStore


class InjectedUploadFailure(ConnectionError):
    """The connection 'dropped' in the middle of an upload (raised by :class:`InterruptedObjectStore`)."""


class InterruptedObjectStore(FsspecObjectStore):
    """Use in tests: an :class:`FsspecObjectStore` whose uploads break after ``fail_after`` bytes.

    The first ``fail_after`` bytes of a larger upload really reach the backend, leaving a partial
    object as a dropped connection can; then :class:`InjectedUploadFailure` is raised, which
    :meth:`put` reports as :class:`~fittwin_core.domain.errors.StoreUnavailable` after removing
    what was written. With ``silent=True`` the backend instead accepts the truncated upload
    without complaint, which only the store's check of what it holds can catch. Uploads of at
    most ``fail_after`` bytes go through; set ``fail_after = None`` to let every upload through.
    ``interrupted`` counts the uploads broken so far.
    """

    def __init__(
        self,
        url: str | Mapping[str, str],
        *,
        fail_after: int | None = 0,
        silent: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        default_region: str | None = None,
        region_storage_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(
            url,
            storage_options=storage_options,
            default_region=default_region,
            region_storage_options=region_storage_options,
        )
        self.fail_after = fail_after
        self.silent = silent
        self.interrupted = 0

    def _upload(self, fs: Any, path: str, data: bytes, options: Mapping[str, Any]) -> None:
        limit = self.fail_after
        if limit is None or len(data) <= limit:
            super()._upload(fs, path, data, options)
            return
        super()._upload(fs, path, data[:limit], options)
        self.interrupted += 1
        if not self.silent:
            raise InjectedUploadFailure(f"upload interrupted after {limit} bytes")
