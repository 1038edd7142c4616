"""Every invalid or hostile input to every service raises a FitTwinError, writes nothing, and
gets the same answer from the memory and the PostgreSQL store.

Each example takes one service call with valid arguments and replaces one argument (or a value
nested inside a mapping argument) with an arbitrary or a hostile value: lone surrogates, NUL,
JSON nested too deep or too large, integers beyond every bound, values of the wrong type,
overlong strings, invisible and look-alike characters. The call must either succeed or raise a
``FitTwinError`` — never a ``TypeError``/``UnicodeEncodeError``/``RecursionError`` — and a
failed call must leave every table as it was (raw rows compared before and after).

The comparison runs the same call on two FitTwins built alike, one on each store: both must
succeed, or both fail with the same error class (and, for a ``ValidationError``, the same field).
"""

from __future__ import annotations

import reprlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.demo import TEE_CHART
from fittwin_adapters.memory import FakePayments, MemoryStore
from fittwin_adapters.objectstore import FsspecObjectStore
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import BodyMetrics, FitTwinError
from fittwin_core.ports import Store
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import PASSWORD, Shop, open_shop
from tests.support.snapshots import snapshot

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.text(min_size=300, max_size=320),
    st.binary(max_size=16),
    st.uuids(),
    st.datetimes(),
    st.dates(),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
    st.dictionaries(
        st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3
    ),
    st.builds(object),
    st.builds(Actor.shopper, st.uuids()),
)


def _nested(depth: int, *, array: bool = False) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if array else {"a": value}
    return value


def _around(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``core`` inside ordinary text (so a check must look at every character)."""
    return st.tuples(st.sampled_from(["", "ada", "a@b.example", "pm_x"]), core, st.text(max_size=4)).map(
        "".join
    )


SURROGATES = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=2)
ODD_UNICODE = st.sampled_from(
    [
        "\u202e",  # right-to-left override
        "\u200b",  # zero-width space
        "\ufeff",  # byte-order mark
        "\u2028",  # line separator
        "e\u0301",  # combining accent
        "ａ",  # fullwidth a
        "а",  # Cyrillic a
        "\U0001f600",
        "İ",
        "ß",
        "\x1b[31m",
    ]
)
HOSTILE_TEXT = st.one_of(
    _around(SURROGATES),
    _around(st.just("\x00")),
    _around(ODD_UNICODE),
    st.sampled_from(
        ["аda@example.com", "ａda@example.com", "ada\u200b@example.com", "ada@example.com\u202e"]
    ),
    st.sampled_from(["x" * 5_000, "ü" * 70_000]),
)
HOSTILE_JSON = st.sampled_from(
    [
        _nested(1_000),
        _nested(1_000, array=True),
        _nested(40),
        {"n": 10**5_000},
        {"n": 2**64},
        {"n": -(2**63) - 1},
        {"n": 2**53 + 1},
        {"n": float("inf")},
        {"big": "x" * 300_000},
        {str(i): i for i in range(20_000)},
        {1: "not a string key"},
        {"k": {1, 2}},
        {"k": b"bytes"},
        {"k": object()},
        {"\udc80": 1},
        {"k\x00": 1},
        {"k": "\ud800"},
    ]
)
HOSTILE_SCALARS = st.sampled_from(
    [10**5_000, 2**63, -(2**63) - 1, 2**31, 1.5, float("nan"), True, b"bytes", bytearray(b"x"), "not-a-uuid"]
)
HOSTILE = st.one_of(JUNK, HOSTILE_TEXT, HOSTILE_JSON, HOSTILE_SCALARS)


@attrs.frozen
class Call:
    """A service call with valid keyword arguments."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]


def calls(shop: Shop) -> list[Call]:
    ft, owner, user = shop.ft, shop.owner_actor, shop.shopper
    staff = Actor.platform(shop.platform.id)
    me = Actor.shopper(user.id)
    link = ft.referrals.create(user.id, actor=me)
    order = shop.place()
    body = BodyMetrics(height_cm=170, weight_kg=65)
    a = ft.accounts
    pending = ft.avatars.request(user.id, {"quick_estimate": True}, actor=me)
    doomed = ft.avatars.request(user.id, {"quick_estimate": True}, actor=me)
    ready = ft.avatars.complete(
        ft.avatars.request(user.id, {}, actor=me).id, b"glTF mesh", confidence=50, actor=Actor.system()
    )
    return [
        Call(
            "register",
            a.register,
            {
                "email": "new@example.com",
                "password": PASSWORD,
                "username": "newbie",
                "body_metrics": body,
                "consents": {"terms": True},
                "name": "N",
                "phone": None,
                "location": None,
                "appearance": None,
                "style_preferences": None,
                "region": None,
                "actor": Actor.anonymous(),
            },
        ),
        Call("authenticate", a.authenticate, {"email": user.email, "password": PASSWORD}),
        Call(
            "update_profile",
            a.update_profile,
            {"user_id": user.id, "name": "A", "username": "ada2", "body_metrics": body, "actor": me},
        ),
        Call(
            "add_address",
            a.add_address,
            {
                "user_id": user.id,
                "type": "shipping",
                "line1": "1 Row",
                "city": "X",
                "postal_code": "1",
                "country": "GB",
                "line2": None,
                "state": None,
                "metadata": {"door": "blue"},
                "actor": me,
            },
        ),
        Call(
            "add_payment_method",
            a.add_payment_method,
            {
                "user_id": user.id,
                "psp_token_id": "pm_new",
                "brand": "visa",
                "last4": "1234",
                "expires_at": None,
                "billing_address_id": None,
                "actor": me,
            },
        ),
        Call(
            "set_billing_address",
            a.set_billing_address,
            {"user_id": user.id, "address_id": shop.address.id, "actor": me},
        ),
        Call(
            "change_email",
            a.change_email,
            {"user_id": user.id, "new_email": "ada.new@example.com", "actor": me},
        ),
        Call("verify_email", a.verify_email, {"token": a.email_verification_token(user.id, actor=me)}),
        Call(
            "brands.create",
            ft.brands.create,
            {
                "name": "New brand",
                "primary_contact": {"email": "x@y.example"},
                "webhooks": None,
                "actor": staff,
            },
        ),
        Call(
            "invite_user",
            ft.brands.invite_user,
            {"brand_id": shop.brand.id, "email": "new@shop.example", "role": "analyst", "actor": owner},
        ),
        Call("accept_invite", ft.brands.accept_invite, {"token": uuid.uuid4()}),
        Call(
            "add_webhook",
            ft.brands.add_webhook,
            {
                "brand_id": shop.brand.id,
                "url": "https://h.example/x",
                "events": ["variant.low_stock"],
                "actor": owner,
            },
        ),
        Call(
            "create_size_chart",
            ft.catalog.create_size_chart,
            {
                "brand_id": shop.brand.id,
                "garment_type": "tops",
                "measurement_rules": TEE_CHART,
                "grading_rules": None,
                "unit_system": "metric",
                "actor": owner,
            },
        ),
        Call(
            "create_fit_map",
            ft.catalog.create_fit_map,
            {
                "brand_id": shop.brand.id,
                "garment_type": "tops",
                "rule_set": {"offset": {"chest": 1}},
                "confidence_model": None,
                "actor": owner,
            },
        ),
        Call(
            "create_product",
            ft.catalog.create_product,
            {
                "brand_id": shop.brand.id,
                "title": "T",
                "category": "tops",
                "size_chart_id": shop.chart.id,
                "description": "",
                "fit_map_id": None,
                "assets": None,
                "actor": owner,
            },
        ),
        Call(
            "add_variant",
            ft.catalog.add_variant,
            {
                "product_id": shop.product.id,
                "sku": "NEW-1",
                "size_label": "M",
                "price_cents": 100,
                "currency": "EUR",
                "inventory": 1,
                "color": None,
                "fit_metadata": {"stretch": "high"},
                "actor": owner,
            },
        ),
        Call(
            "set_inventory",
            ft.catalog.set_inventory,
            {"variant_id": shop.variants["L"].id, "inventory": 3, "actor": owner},
        ),
        Call(
            "place",
            ft.orders.place,
            {
                "user_id": user.id,
                "items": [(shop.variants["S"].id, 1)],
                "shipping_address_id": shop.address.id,
                "billing_address_id": shop.address.id,
                "payment_method_id": shop.card.id,
                "rid": None,
                "idempotency_key": "checkout-1",
                "actor": me,
            },
        ),
        Call("mark_paid", ft.orders.mark_paid, {"order_id": order.id, "actor": Actor.system()}),
        Call(
            "webhook", ft.orders.handle_payment_webhook, {"payload": b"{}", "signature_header": "t=1,v1=00"}
        ),
        Call(
            "referrals.create",
            ft.referrals.create,
            {"referrer_user_id": user.id, "target_product_id": None, "expires_at": None, "actor": me},
        ),
        Call(
            "record_click",
            ft.referrals.record_click,
            {
                "rid": link.rid,
                "ip": "192.0.2.1",
                "user_agent": "ua",
                "device_fingerprint": None,
                "actor": Actor.anonymous(),
            },
        ),
        Call(
            "record_clicks",
            ft.referrals.record_clicks,
            {"clicks": [{"rid": link.rid, "ip": "192.0.2.9"}], "actor": staff},
        ),
        Call("release_due", ft.rewards.release_due, {"today": None, "actor": Actor.system()}),
        Call("rewards.mark_paid", ft.rewards.mark_paid, {"entry_ids": [], "actor": Actor.system()}),
        Call(
            "entries",
            ft.rewards.entries,
            {"order_id": None, "rid": None, "referrer_user_id": None, "status": None, "actor": staff},
        ),
        Call("recommend", ft.fit.recommend, {"user_id": user.id, "product_id": shop.product.id, "actor": me}),
        Call(
            "avatars.request",
            ft.avatars.request,
            {"user_id": user.id, "sources": {"measurements": {"chest_cm": 90.0}}, "actor": me},
        ),
        Call(
            "avatars.complete",
            ft.avatars.complete,
            {"avatar_id": pending.id, "mesh": b"glTF", "confidence": 60, "actor": Actor.system()},
        ),
        Call(
            "avatars.fail",
            ft.avatars.fail,
            {"avatar_id": doomed.id, "reason": "no photos", "actor": Actor.system()},
        ),
        Call("mesh", ft.avatars.mesh, {"avatar_id": ready.id, "actor": me}),
        Call("mesh_url", ft.avatars.mesh_url, {"avatar_id": ready.id, "expires_in": 60, "actor": me}),
        Call("export_user", ft.privacy.export_user, {"user_id": user.id, "actor": me}),
        Call("erase_user", ft.privacy.erase_user, {"user_id": uuid.uuid4(), "actor": staff}),
        Call(
            "purge_expired",
            ft.privacy.purge_expired,
            {"now": None, "dry_run": True, "policy": None, "actor": staff},
        ),
        Call("audit", ft.audit.events, {"entity_id": None, "since": None, "limit": 10, "actor": staff}),
    ]


class _Short(reprlib.Repr):
    """Short reprs of hostile values (deep, huge, or ints too long for ``repr``)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 3, 40, 40

    def repr_int(self, x: int, level: int) -> str:
        return f"<int of {x.bit_length()} bits>" if x.bit_length() > 128 else repr(x)


_SHORT = _Short()


@attrs.frozen
class Mutation:
    """One argument of a call, or one value inside a mapping or list argument, replaced."""

    field: str
    value: Any
    key: str | None = None
    first_item: bool = False

    def apply(self, call: Call) -> dict[str, Any]:
        """``call``'s keyword arguments with the replacement made."""
        value = self.value
        valid = call.kwargs[self.field]
        if self.key is not None:
            value = {**valid, self.key: value}
        elif self.first_item:
            value = [value, *valid[1:]]
        return {**call.kwargs, self.field: value}

    def __repr__(self) -> str:
        shown = _SHORT.repr(self.value)
        where = f"[{self.key!r}]" if self.key is not None else "[0]" if self.first_item else ""
        return f"{self.field}{where}={shown}"


@st.composite
def mutations(draw: st.DrawFn, call: Call) -> Mutation:
    """A hostile value for one of ``call``'s arguments (or for a value nested in one)."""
    field = draw(st.sampled_from(sorted(call.kwargs)))
    value = draw(HOSTILE)
    valid = call.kwargs[field]
    if isinstance(valid, dict) and valid and draw(st.booleans()):
        return Mutation(field, value, key=draw(st.sampled_from(sorted(valid))))
    if isinstance(valid, list) and valid and draw(st.booleans()):
        return Mutation(field, value, first_item=True)
    return Mutation(field, value)


Outcome = tuple[str, str | None]


def outcome(ft: FitTwin, call: Call, mutation: Mutation) -> Outcome:
    """``("ok", None)`` or the error class and (for validation errors) the field; a failed
    call must have written nothing, and only ``FitTwinError``s may escape."""
    before = snapshot(ft.context.store)
    try:
        call.fn(**mutation.apply(call))
    except FitTwinError as exc:
        assert snapshot(ft.context.store) == before, f"{call.name}({mutation}) failed with {exc!r} but wrote"
        return type(exc).__name__, getattr(exc, "field", None)
    except Exception as exc:
        raise AssertionError(f"{call.name}({mutation}) raised {type(exc).__name__}: {exc}") from exc
    return "ok", None


HASHER = Argon2PasswordHasher.owasp_minimum()


def twin(store: Store, clock: FrozenClock, ids: SequentialIds) -> FitTwin:
    """A FitTwin on ``store`` with its own clock and ids (built alike for each store)."""
    return connect(
        store,
        objects=FsspecObjectStore(f"memory://fittwin-tests/{uuid.uuid4().hex}"),
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=HASHER,
        clock=clock,
        ids=ids,
    )


@pytest.fixture
def twins(postgres_store_factory: Callable[..., Store]) -> Iterator[tuple[FitTwin, FitTwin]]:
    """The same FitTwin twice: on the memory store and on a fresh PostgreSQL database."""
    memory_clock, postgres_clock = FrozenClock(), FrozenClock()
    memory_ids, postgres_ids = SequentialIds(memory_clock), SequentialIds(postgres_clock)
    memory = twin(MemoryStore(clock=memory_clock, ids=memory_ids), memory_clock, memory_ids)
    postgres = twin(
        postgres_store_factory(clock=postgres_clock, ids=postgres_ids), postgres_clock, postgres_ids
    )
    yield memory, postgres
    memory.close()
    postgres.close()


SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.slow
def test_invalid_input_raises_fittwin_errors_and_writes_nothing(ft: FitTwin, backend: str) -> None:
    if backend != "memory":
        pytest.skip("PostgreSQL runs in the comparison below")
    table = calls(open_shop(ft))

    @settings(SETTINGS, max_examples=300)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        call = data.draw(st.sampled_from(table), label="call")
        outcome(ft, call, data.draw(mutations(call), label="mutation"))

    check()


@pytest.mark.slow
@pytest.mark.postgres
def test_both_stores_give_the_same_answer_to_hostile_input(twins: tuple[FitTwin, FitTwin]) -> None:
    memory, postgres = twins
    tables = list(zip(calls(open_shop(memory)), calls(open_shop(postgres)), strict=True))

    @settings(SETTINGS, max_examples=120)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        on_memory, on_postgres = data.draw(st.sampled_from(tables), label="call")
        mutation = data.draw(mutations(on_memory), label="mutation")
        answers = outcome(memory, on_memory, mutation), outcome(postgres, on_postgres, mutation)
        assert answers[0] == answers[1], f"{on_memory.name}({mutation}): {answers[0]} vs {answers[1]}"

    check()
