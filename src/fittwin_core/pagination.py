"""Pages of list results: ``limit``, an opaque ``after`` cursor, and :class:`Page`.

Every list method whose result can grow without bound (a shopper's orders, a brand's products,
a link's clicks, the event log …) takes ``limit`` (default :data:`DEFAULT_LIMIT`, at most
:data:`MAX_LIMIT`) and ``after`` (the ``next`` of the page before, ``None`` for the first page)
and returns a :class:`Page`. Rows come in creation order — by their UUIDv7 ``id`` — so pages are
stable while rows are added: a row never shows up twice and none is skipped, and rows added
later appear on the last page.

A cursor is a position, not a permission: it holds the last row's id (base64url, versioned) and
nothing else. The call's filters and permission check run again for every page, so a cursor
made up by a client only moves through the list its actor may read anyway. A cursor that is not
one FitTwin made is a :class:`ValidationError` on ``after``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

import attrs

from fittwin_core.domain import ValidationError
from fittwin_core.ports import Compare, ReadRepository

T = TypeVar("T")
E = TypeVar("E")

DEFAULT_LIMIT = 50
"""Rows per page when ``limit`` is not given."""
MAX_LIMIT = 500
"""The largest ``limit`` a list method accepts (more is a :class:`ValidationError`)."""

_ID_CURSOR = 1  # version byte: the last row's UUID (16 bytes)
_TIME_CURSOR = 2  # version byte: the last row's creation time (8 bytes, µs) and text key
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{2,200}")
_NOT_A_CURSOR = "is not a cursor returned by this list (pass the `next` of the page before)"


@attrs.frozen
class Page(Generic[T]):
    """One page of a list: its ``items`` and the cursor of the ``next`` page (``None`` on the
    last page). Pass ``next`` as ``after`` to get the following page.

    A page is deliberately not iterable: code that looped over a whole list must say whether it
    wants this page (``page.items``) or every page (:func:`every`).
    """

    items: tuple[T, ...]
    next: str | None = None


def every(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a list, page after page: ``fetch(after)`` returns the page after ``after``.

    ``for order in every(lambda after: ft.orders.for_user(uid, actor=a, after=after)): ...``
    """
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next is None:
            return
        cursor = page.next


def _encode(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def _decode(cursor: object) -> bytes:
    if not isinstance(cursor, str) or not _CURSOR_TEXT.fullmatch(cursor):
        raise ValidationError("after", _NOT_A_CURSOR)
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError("after", _NOT_A_CURSOR) from None


def id_cursor(row_id: UUID) -> str:
    """The cursor of the position just after the row with id ``row_id``."""
    return _encode(bytes([_ID_CURSOR]) + row_id.bytes)


def time_cursor(created_at: datetime, key: str) -> str:
    """The cursor just after a row ordered by ``(created_at, key)`` (tables keyed by text)."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return _encode(bytes([_TIME_CURSOR]) + micros.to_bytes(8, "big", signed=True) + key.encode("ascii"))


def _check_limit(limit: object) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return limit


@attrs.frozen
class PageRequest:
    """A checked ``limit`` and ``after`` of a list call, and how to read that page from a store.

    Build it first thing in a list method (bad input fails before anything is read); the
    page is read with ``limit + 1`` rows, so the store reads one page and the extra row only
    says whether there is a next one.
    """

    limit: int
    after_id: UUID | None = None
    after_time: tuple[datetime, str] | None = None

    @classmethod
    def of(cls, limit: object, after: object) -> PageRequest:
        """``limit``/``after`` of a list ordered by ``id``."""
        checked = _check_limit(limit)
        if after is None:
            return cls(checked)
        raw = _decode(after)
        if len(raw) != 17 or raw[0] != _ID_CURSOR:
            raise ValidationError("after", _NOT_A_CURSOR)
        return cls(checked, after_id=UUID(bytes=raw[1:]))

    @classmethod
    def by_time(cls, limit: object, after: object) -> PageRequest:
        """``limit``/``after`` of a list ordered by ``(created_at, key)`` (rows without an id)."""
        checked = _check_limit(limit)
        if after is None:
            return cls(checked)
        raw = _decode(after)
        if len(raw) < 10 or raw[0] != _TIME_CURSOR:
            raise ValidationError("after", _NOT_A_CURSOR)
        try:
            moment = _EPOCH + timedelta(microseconds=int.from_bytes(raw[1:9], "big", signed=True))
            key = raw[9:].decode("ascii")
        except (OverflowError, UnicodeDecodeError):
            raise ValidationError("after", _NOT_A_CURSOR) from None
        return cls(checked, after_time=(moment, key))

    def read(self, repo: ReadRepository[E], **filters: Any) -> Page[E]:
        """The page of ``repo``'s rows matching ``filters``, in ``id`` order."""
        if self.after_id is not None:
            filters["id"] = Compare(">", self.after_id)
        return self.page(repo.where(order_by="id", limit=self.limit + 1, **filters))

    def read_by_time(self, repo: ReadRepository[E], key: str, **filters: Any) -> Page[E]:
        """The page of ``repo``'s rows matching ``filters``, in ``(created_at, key)`` order: the
        rest of the cursor's instant, then what comes later (at most two reads of a page)."""
        fetch = self.limit + 1
        rows: list[E] = []
        if self.after_time is not None:
            moment, last = self.after_time
            ties = {"created_at": moment, key: Compare(">", last)}
            rows = repo.where(order_by=key, limit=fetch, **ties, **filters)
            filters["created_at"] = Compare(">", moment)
        if len(rows) < fetch:
            rows += repo.where(order_by=("created_at", key), limit=fetch - len(rows), **filters)
        return self.page(rows, lambda row: time_cursor(row.created_at, getattr(row, key)))  # type: ignore[attr-defined]

    def page(self, rows: Sequence[E], cursor: Callable[[E], str] | None = None) -> Page[E]:
        """The page of ``rows`` read with ``limit + 1``: the first ``limit`` and, when there were
        more, the cursor after the last of them (``cursor(row)``; by default the row's id)."""
        kept = tuple(rows[: self.limit])
        if len(rows) <= self.limit or not kept:
            return Page(kept)
        last = kept[-1]
        return Page(kept, cursor(last) if cursor is not None else id_cursor(last.id))  # type: ignore[attr-defined]


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "PageRequest",
    "every",
    "id_cursor",
    "time_cursor",
]
