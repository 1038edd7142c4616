"""A shopper with distinctive values goes through every flow and is erased: afterwards no
table, audit row, fit summary, repr, exception chain or log line (SQLAlchemy's included, at
INFO) holds any of them."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import BodyMetrics, Conflict, FitTwinError
from fittwin_core.ports import RawRows, Store
from fittwin_core.schema import TABLES
from fittwin_core.testing.clock import FrozenClock, SequentialIds
from tests.support.shop import PASSWORD, open_shop

STAFF = Actor.platform(uuid.UUID("0190a8f2-7c1e-7d4b-9a55-3f1b2c4d5e6f"))

CANARIES = {
    "email": "zyxwcanary.first@example.com",
    "email2": "zyxwcanary.second@example.com",
    "username": "zyxw_canary_user",
    "name": "Zyxw Canarysdottir",
    "phone": "+447700900913",
    "line1": "77 Zyxwcanary Crescent",
    "line2": "Zyxwflat 9",
    "city": "Zyxwton",
    "postal_code": "ZX9 9ZZ",
    "region": "Zyxwshire",
    "hair": "zyxwvermilion",
    "style": "zyxwstyle",
    "chest": "97.31",
    "waist": "83.17",
    "last4": '"4913"',
    "card_brand": "zyxwcard",
    "user_agent": "ZyxwBrowser/13.7",
    "psp_token": "pm_zyxwcanary",
    "idempotency": "zyxw-checkout-key",
    "photo": "photos/zyxwcanary/front.jpg",
}


@pytest.fixture
def ft(store: Store, clock: FrozenClock, ids: SequentialIds) -> Iterator[FitTwin]:
    app = connect(
        store,
        payments=FakePayments(clock=clock),
        keyring=LocalKeyRing.generate(),
        hasher=Argon2PasswordHasher.owasp_minimum(),
        clock=clock,
        ids=ids,
    )
    yield app
    app.close()


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _leaks(text: str) -> list[str]:
    return [name for name, value in CANARIES.items() if value in text]


def test_no_canary_survives_erasure(ft: FitTwin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    errors: list[BaseException] = []
    returned: list[Any] = []
    try:
        _every_flow(ft, errors, returned)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert errors, "the flows should have met a refusal (a taken username, a login)"

    store = ft.context.store
    assert isinstance(store, RawRows)
    dump = {table: store.raw_rows(table) for table in TABLES}
    for table, rows in dump.items():
        assert _leaks(json.dumps(rows, default=str)) == [], table
    reprs = []
    with store.unit_of_work() as uow:
        for table in TABLES:
            reprs.extend(repr(row) for row in getattr(uow, table).where())
    assert _leaks("\n".join(reprs)) == []
    # What the calls returned, while the shopper still existed: reprs never show the values.
    assert len(returned) > 10 and _leaks("\n".join(map(repr, returned))) == []
    chains = [f"{type(e).__name__}: {e!s} {e!r}" for error in errors for e in _chain(error)]
    assert _leaks("\n".join(chains)) == []
    assert all(e.__cause__ is None and e.__context__ is None for e in errors if isinstance(e, Conflict))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    if type(store).__name__ == "PostgresStore":
        # SQL was logged, values not (writes by key go straight through psycopg, unlogged)
        assert "FROM fittwin." in logged and "parameters hidden" in logged
    assert _leaks(logged) == []


def _every_flow(ft: FitTwin, errors: list[BaseException], returned: list[Any]) -> None:
    c = CANARIES

    def keep(value: Any) -> Any:
        returned.append(value)
        return value

    shop = open_shop(ft)
    me = Actor.anonymous()
    user = keep(
        ft.accounts.register(
            c["email"],
            PASSWORD,
            c["username"],
            BodyMetrics(height_cm=171, weight_kg=64, chest_cm=float(c["chest"]), waist_cm=float(c["waist"])),
            consents={"terms": True},
            name=c["name"],
            phone=c["phone"],
            actor=me,
        )
    )
    shopper = Actor.shopper(user.id)
    keep(
        ft.accounts.update_profile(
            user.id,
            location={"country": "GB", "region": c["region"]},
            appearance={"hairColor": c["hair"]},
            style_preferences={"keywords": [c["style"]]},
            actor=shopper,
        )
    )
    keep(ft.accounts.change_email(user.id, c["email2"], actor=shopper))
    try:  # the username is taken: PostgreSQL's own message would quote it
        ft.accounts.register(
            "other@example.com", PASSWORD, c["username"], None, consents={"terms": True}, actor=me
        )
    except FitTwinError as exc:
        errors.append(exc)
    address = keep(
        ft.accounts.add_address(
            user.id,
            type="shipping",
            line1=c["line1"],
            line2=c["line2"],
            city=c["city"],
            postal_code=c["postal_code"],
            country="GB",
            make_default_billing=True,
            actor=shopper,
        )
    )
    card = keep(
        ft.accounts.add_payment_method(
            user.id, c["psp_token"], brand=c["card_brand"], last4=c["last4"].strip('"'), actor=shopper
        )
    )
    keep(
        ft.avatars.request(
            user.id,
            {
                "photos": [{"object_key": c["photo"], "content_type": "image/jpeg"}],
                "measurements": {"chest_cm": 97.31},
            },
            actor=shopper,
        )
    )
    link = keep(ft.referrals.create(user.id, actor=shopper))
    keep(
        ft.referrals.record_click(
            link.rid, ip="192.0.2.13", user_agent=c["user_agent"], device_fingerprint="zyxw-dev", actor=me
        )
    )
    order = keep(
        shop.place(
            [(shop.variants["M"].id, 1)],
            user_id=user.id,
            shipping_address_id=address.id,
            billing_address_id=address.id,
            payment_method_id=card.id,
            idempotency_key=c["idempotency"],
        )
    )
    keep(shop.pay(order))
    keep(ft.accounts.details(user.id, actor=shopper))
    keep(ft.accounts.address_details(address.id, actor=shopper))
    keep(ft.orders.get(order.id, actor=shopper))
    ft.privacy.export_user(user.id, actor=STAFF)  # the export itself holds them: it is for the shopper
    try:
        ft.accounts.authenticate(c["email2"], "not the password")
    except FitTwinError as exc:
        errors.append(exc)
    report = keep(ft.privacy.erase_user(user.id, actor=STAFF))
    assert attrs.asdict(report)["data_key_shredded"]
