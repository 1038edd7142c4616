"""Pagination of the list methods: ``limit``, the opaque ``after`` cursor and ``Page``, on both
stores. Expectations come from what each test made (ids in creation order), never from the
implementation."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from fittwin_core import Actor, FitTwin, Page
from fittwin_core.domain import OrderStatus, PermissionDenied, ValidationError
from fittwin_core.pagination import DEFAULT_LIMIT, MAX_LIMIT, every
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import Shop, open_shop

STAFF = Actor.system()


@pytest.fixture
def shop(ft: FitTwin) -> Shop:
    return open_shop(ft, stock=1000)


def walk(fetch: Callable[[str | None], Page[Any]]) -> list[list[Any]]:
    """Every page of a list, as lists of ids (at most 50 pages)."""
    pages, cursor = [], None
    for _ in range(50):
        page = fetch(cursor)
        pages.append([row.id for row in page.items])
        if page.next is None:
            return pages
        cursor = page.next
    raise AssertionError("the list never ended")


def test_pages_cover_the_list_once_in_creation_order(shop: Shop) -> None:
    me = Actor.shopper(shop.shopper.id)
    placed = [shop.place().id for _ in range(7)]
    pages = walk(lambda after: shop.ft.orders.for_user(shop.shopper.id, actor=me, limit=3, after=after))
    assert pages == [placed[0:3], placed[3:6], placed[6:7]]
    exact = shop.ft.orders.for_user(shop.shopper.id, actor=me, limit=7)
    assert [o.id for o in exact.items] == placed and exact.next is None  # no empty page after a full one
    assert [
        o.id for o in every(lambda a: shop.ft.orders.for_user(shop.shopper.id, actor=me, after=a))
    ] == placed


def test_rows_added_while_paging_come_last_and_nothing_repeats(shop: Shop) -> None:
    me = Actor.shopper(shop.shopper.id)
    placed = [shop.place().id for _ in range(4)]
    first = shop.ft.orders.for_user(shop.shopper.id, actor=me, limit=2)
    placed.append(shop.place().id)  # a new order between two page reads
    rest = walk(
        lambda after: shop.ft.orders.for_user(shop.shopper.id, actor=me, limit=2, after=after or first.next)
    )
    assert [o.id for o in first.items] + [i for page in rest for i in page] == placed


def test_filters_apply_on_every_page(shop: Shop) -> None:
    me = Actor.shopper(shop.shopper.id)
    orders = [shop.place() for _ in range(5)]
    paid = [shop.pay(o).id for o in orders[::2]]
    pages = walk(
        lambda after: shop.ft.orders.for_user(shop.shopper.id, status="paid", actor=me, limit=2, after=after)
    )
    assert pages == [paid[:2], paid[2:]]


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, 2.5, "10"])
def test_a_limit_outside_one_to_the_maximum_is_refused(shop: Shop, limit: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        shop.ft.catalog.products(shop.brand.id, actor=Actor.anonymous(), limit=limit)
    assert caught.value.field == "limit"


def test_the_default_and_the_largest_page(shop: Shop) -> None:
    link = shop.ft.referrals.create(shop.shopper.id, actor=Actor.shopper(shop.shopper.id))
    shop.ft.referrals.record_clicks(
        [{"rid": link.rid, "ip": f"198.51.100.{n}"} for n in range(DEFAULT_LIMIT + 1)], actor=STAFF
    )
    page = shop.ft.referrals.events(link.rid, actor=STAFF)
    assert len(page.items) == DEFAULT_LIMIT and page.next is not None
    assert len(shop.ft.referrals.events(link.rid, actor=STAFF, after=page.next).items) == 1
    everything = shop.ft.referrals.events(link.rid, actor=STAFF, limit=MAX_LIMIT)
    assert len(everything.items) == DEFAULT_LIMIT + 1 and everything.next is None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "AAAA",
        _b64(b"\x01" + b"\x00" * 15),  # one byte short
        _b64(b"\x09" + b"\x00" * 16),  # unknown version
        _b64(b"\x02" + b"\x00" * 8 + b"rid"),  # a cursor of a list ordered by time
        "x" * 5000,
    ],
)
def test_a_cursor_fittwin_did_not_make_is_refused(shop: Shop, cursor: str) -> None:
    with pytest.raises(ValidationError) as caught:
        shop.ft.orders.for_user(shop.shopper.id, actor=Actor.shopper(shop.shopper.id), after=cursor)
    assert caught.value.field == "after"


def test_a_page_is_not_a_list() -> None:
    page = Page((1, 2), next=None)
    with pytest.raises(TypeError):
        iter(page)  # type: ignore[call-overload]
    assert page.items == (1, 2)


def test_a_cursor_is_a_position_not_a_permission(shop: Shop) -> None:
    ft = shop.ft
    ada = Actor.shopper(shop.shopper.id)
    bob, bob_address, bob_card = shop.new_shopper("bob")
    as_bob = Actor.shopper(bob.id)
    ada_orders = [shop.place().id for _ in range(3)]
    bob_order = shop.place(
        user_id=bob.id,
        shipping_address_id=bob_address.id,
        billing_address_id=bob_address.id,
        payment_method_id=bob_card.id,
    ).id
    ada_cursor = ft.orders.for_user(shop.shopper.id, actor=ada, limit=1).next
    assert ada_cursor is not None
    with pytest.raises(PermissionDenied):  # the check runs on every page, with any cursor
        ft.orders.for_user(shop.shopper.id, actor=as_bob, after=ada_cursor)
    # Ada's cursor on Bob's own list is only a position in Bob's orders.
    assert [o.id for o in ft.orders.for_user(bob.id, actor=as_bob, after=ada_cursor).items] == [bob_order]
    assert all(o.user_id == shop.shopper.id for o in ft.orders.for_user(shop.shopper.id, actor=ada).items)
    assert len(ada_orders) == 3


def test_orders_for_a_brand(shop: Shop) -> None:
    ft = shop.ft
    rival = open_shop(ft, "rival", stock=1000)
    tee, rival_tee = shop.variants["M"].id, rival.variants["M"].id
    mine = [shop.place().id]
    both = shop.place([(tee, 1), (rival_tee, 2)]).id
    mine.append(both)
    theirs = [both, shop.place([(rival_tee, 1)]).id]
    mine.append(shop.place([(shop.variants["S"].id, 1), (tee, 1)]).id)
    owner, rival_owner = shop.owner_actor, rival.owner_actor

    pages = walk(lambda after: ft.orders.for_brand(shop.brand.id, actor=owner, limit=2, after=after))
    assert pages == [mine[:2], mine[2:]]  # the order with two lines of this brand comes once
    assert [o.id for o in ft.orders.for_brand(rival.brand.id, actor=rival_owner).items] == theirs
    assert [o.id for o in ft.orders.for_brand(shop.brand.id, actor=STAFF).items] == mine

    paid = shop.pay(ft.orders.get(mine[1], actor=STAFF))
    assert paid.status == OrderStatus.PAID
    assert [o.id for o in ft.orders.for_brand(shop.brand.id, status="paid", actor=owner).items] == [mine[1]]
    assert [o.id for o in ft.orders.for_brand(rival.brand.id, status="paid", actor=rival_owner).items] == [
        both
    ]
    assert ft.orders.for_brand(shop.brand.id, status="closed", actor=owner).items == ()
    with pytest.raises(PermissionDenied):
        ft.orders.for_brand(shop.brand.id, actor=rival_owner)
    with pytest.raises(PermissionDenied):
        ft.orders.for_brand(shop.brand.id, actor=Actor.shopper(shop.shopper.id))
    with pytest.raises(ValidationError) as caught:
        ft.orders.for_brand(shop.brand.id, status="lost", actor=owner)
    assert caught.value.field == "status"


def test_share_links_page_by_creation_time_with_ties(shop: Shop, clock: FrozenClock) -> None:
    ft, me = shop.ft, Actor.shopper(shop.shopper.id)
    same_instant = [ft.referrals.create(shop.shopper.id, actor=me) for _ in range(5)]  # frozen clock: ties
    clock.advance(seconds=1)
    later = [ft.referrals.create(shop.shopper.id, actor=me) for _ in range(2)]
    expected = sorted(link.rid for link in same_instant) + sorted(link.rid for link in later)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = ft.referrals.for_referrer(shop.shopper.id, actor=me, limit=2, after=cursor)
        seen += [link.rid for link in page.items]
        cursor = page.next
        if cursor is None:
            break
    assert seen == expected
    with pytest.raises(ValidationError):  # an id cursor of another list
        ft.referrals.for_referrer(
            shop.shopper.id,
            actor=me,
            after=ft.orders.for_user(shop.shopper.id, actor=me, limit=1).next or "x",
        )


def test_audit_events_page_within_a_time_range(shop: Shop, clock: FrozenClock) -> None:
    ft, variant = shop.ft, shop.variants["S"].id
    for n in range(5):
        clock.advance(seconds=1)
        ft.catalog.set_inventory(variant, n, actor=STAFF)
    trail = list(every(lambda after: ft.audit.events(entity_id=variant, actor=STAFF, after=after)))
    moments = sorted({e.created_at for e in trail})
    assert len(moments) >= 3  # (on PostgreSQL the triggers stamp the database's time)
    since, until = moments[1], moments[-1]
    expected = [e.id for e in trail if since <= e.created_at < until]
    pages = walk(
        lambda after: ft.audit.events(
            entity_id=variant, since=since, until=until, actor=STAFF, limit=1, after=after
        )
    )
    assert [i for page in pages for i in page] == expected
    assert all(len(page) <= 1 for page in pages)
