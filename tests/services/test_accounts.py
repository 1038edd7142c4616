"""Accounts: registration, authentication, sealed personal data, addresses, payment methods."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import attrs
import pytest

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import LocalKeyRing
from fittwin_adapters.disabled import NoKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_core import Actor, FitTwin
from fittwin_core.domain import (
    AuthenticationFailed,
    BodyMetrics,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from fittwin_core.ports import RawRows
from fittwin_core.testing.clock import FrozenClock
from tests.support.shop import PASSWORD

METRICS = BodyMetrics(height_cm=168, weight_kg=61, chest_cm=97)


def register(ft: FitTwin, tag: str = "ada", **kwargs: Any) -> Any:
    defaults: dict[str, Any] = {
        "consents": {"terms": True},
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0000",
        "actor": Actor.anonymous(),
    }
    return ft.accounts.register(f"{tag}@example.com", PASSWORD, tag, METRICS, **{**defaults, **kwargs})


def raw_text(ft: FitTwin) -> str:
    store = ft.context.store
    assert isinstance(store, RawRows)
    return json.dumps(
        {t: store.raw_rows(t) for t in ("user_profiles", "addresses", "payment_methods", "event_logs")}
    )


def test_register_normalises_the_email_and_seals_personal_data(ft: FitTwin) -> None:
    user = ft.accounts.register(
        "  Ada.Lovelace@Example.COM ",
        PASSWORD,
        "ada",
        METRICS,
        consents={"terms": True},
        name="Ada Lovelace",
        phone="+44 (20) 7946-0000",
        actor=Actor.anonymous(),
    )
    assert user.email == "ada.lovelace@example.com"
    assert user.name is not None and user.name.startswith("fte1.")
    details = ft.accounts.details(user.id, actor=Actor.shopper(user.id))
    assert (details.name, details.phone) == ("Ada Lovelace", "+442079460000")
    assert "Ada Lovelace" not in repr(details) and PASSWORD not in repr(user)


def test_stored_rows_hold_no_plaintext_personal_data(ft: FitTwin) -> None:
    user = register(ft)
    ft.accounts.add_address(
        user.id,
        type="shipping",
        line1="12 Analytical Row",
        line2="Flat 3",
        city="London",
        state="Greater London",
        postal_code="SW1A 1AA",
        country="GB",
        actor=Actor.shopper(user.id),
    )
    stored = raw_text(ft)
    # Long, specific values: short ones (a 4-digit run) turn up in random hex now and then.
    secrets = ("Ada Lovelace", "+442079460000", "2079460000", "Analytical Row", "Flat 3", "London")
    for plaintext in (*secrets, "Greater London", "SW1A 1AA", "SW1A1AA", PASSWORD):
        assert plaintext not in stored


def test_a_ciphertext_moved_to_another_row_or_column_does_not_open(ft: FitTwin) -> None:
    ada, bob = register(ft, "ada"), register(ft, "bob", name="Bob Babbage")
    store = ft.context.store
    with store.unit_of_work() as uow:
        uow.user_profiles.update(attrs.evolve(uow.user_profiles.get(bob.id), name=ada.name))
        uow.user_profiles.update(attrs.evolve(uow.user_profiles.get(ada.id), phone=ada.name))
        uow.commit()
    with pytest.raises(AuthenticationFailed):
        ft.accounts.details(bob.id, actor=Actor.shopper(bob.id))
    with pytest.raises(AuthenticationFailed):
        ft.accounts.details(ada.id, actor=Actor.shopper(ada.id))


def test_key_rotation_keeps_data_readable(store: Any, clock: FrozenClock, ids: Any) -> None:
    first = LocalKeyRing.generate()
    payments = FakePayments(clock=clock)
    ft = connect(store, keyring=first, payments=payments, clock=clock, ids=ids)
    user = register(ft)
    rotated = first.rotated()
    after = connect(store, keyring=rotated, payments=payments, clock=clock, ids=ids)
    assert after.privacy.rotate_data_keys(actor=Actor.system()) == 1
    document = json.loads(rotated.to_json())
    document["keys"] = {rotated.current_kek_id: document["keys"][rotated.current_kek_id]}
    only_new = connect(
        store, keyring=LocalKeyRing.from_json(json.dumps(document)), payments=payments, clock=clock, ids=ids
    )
    assert only_new.accounts.details(user.id, actor=Actor.shopper(user.id)).name == "Ada Lovelace"
    # re-wrapping is always possible and harmless
    assert after.privacy.rotate_data_keys(actor=Actor.system()) == 1


def test_registration_rules(ft: FitTwin) -> None:
    register(ft)
    with pytest.raises(Conflict, match="email"):
        register(ft, "ada", name=None)
    with pytest.raises(Conflict):
        ft.accounts.register(
            "other@example.com", PASSWORD, "ADA", METRICS, consents={"terms": True}, actor=Actor.anonymous()
        )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"password": "short"}, "password"),
        ({"password": "x" * 300}, "password"),
        ({"username": "x" * 33}, "username"),
        ({"email": "nope"}, "email"),
        ({"consents": {"terms": False}}, "consents.terms"),
        ({"consents": {"marketing": True}}, "consents.terms"),
        ({"body_metrics": {"height_cm": 20, "weight_kg": 60}}, "body_metrics.height_cm"),
        ({"phone": "call me"}, "phone"),
        ({"region": "Europe West"}, "region"),
    ]
    for override, field in cases:
        args: dict[str, Any] = {
            "email": "new@example.com",
            "password": PASSWORD,
            "username": "newbie",
            "body_metrics": METRICS,
            "consents": {"terms": True},
            "actor": Actor.anonymous(),
        }
        args.update(override)
        with pytest.raises(ValidationError) as raised:
            ft.accounts.register(**args)
        assert raised.value.field == field
        assert PASSWORD not in str(raised.value)


def test_authentication(ft: FitTwin) -> None:
    user = register(ft)
    assert ft.accounts.authenticate(" ADA@example.com", PASSWORD).id == user.id
    for email, password in (
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("nope", PASSWORD),
    ):
        with pytest.raises(AuthenticationFailed, match="invalid email or password"):
            ft.accounts.authenticate(email, password)


def test_login_rehashes_weak_hashes(ft: FitTwin) -> None:
    from fittwin_adapters.crypto import Argon2PasswordHasher

    user = register(ft)
    stronger = Argon2PasswordHasher(time_cost=3, memory_cost=19456, parallelism=1)
    upgraded = connect(  # logging in reads no sealed field: no key ring needed
        ft.context.store,
        keyring=NoKeyRing(),
        payments=ft.context.payments,
        hasher=stronger,
        clock=ft.context.clock,
    )
    staff = Actor.system()
    before = ft.accounts.get(user.id, actor=staff).password_hash
    upgraded.accounts.authenticate("ada@example.com", PASSWORD)
    after = ft.accounts.get(user.id, actor=staff).password_hash
    assert after != before
    assert not stronger.needs_rehash(after)


def test_email_verification(ft: FitTwin, clock: FrozenClock) -> None:
    user = register(ft)
    token = ft.accounts.email_verification_token(user.id, actor=Actor.shopper(user.id))
    assert ft.accounts.verify_email(token).email_verified_at == clock.now()
    stale = ft.accounts.email_verification_token(user.id, actor=Actor.shopper(user.id))
    clock.advance(days=3)
    with pytest.raises(AuthenticationFailed, match="expired"):
        ft.accounts.verify_email(stale)
    with pytest.raises(AuthenticationFailed):
        ft.accounts.verify_email(token[:-1] + ("0" if token[-1] != "0" else "1"))
    changed = ft.accounts.change_email(user.id, "lovelace@example.com", actor=Actor.shopper(user.id))
    assert changed.email_verified_at is None
    with pytest.raises(AuthenticationFailed):
        ft.accounts.verify_email(
            ft.accounts.email_verification_token(user.id, actor=Actor.shopper(user.id)).replace(
                str(user.id), str(user.id)
            )
            + "x"
        )


def test_profile_updates(ft: FitTwin, clock: FrozenClock) -> None:
    user = register(ft)
    clock.advance(timedelta(minutes=5))
    updated = ft.accounts.update_profile(
        user.id,
        name="Augusta Ada King",
        phone=None,
        style_preferences={"fit_prefs": "slim"},
        username="countess",
        actor=Actor.shopper(user.id),
    )
    assert updated.phone is None and updated.username == "countess" and updated.updated_at == clock.now()
    assert ft.accounts.details(user.id, actor=Actor.shopper(user.id)).name == "Augusta Ada King"
    assert updated.style_preferences is not None and updated.style_preferences.fit_prefs.value == "slim"
    other = register(ft, "bob")
    with pytest.raises(Conflict):
        ft.accounts.update_profile(other.id, username="COUNTESS", actor=Actor.shopper(other.id))
    with pytest.raises(PermissionDenied):
        ft.accounts.update_profile(user.id, name="Mallory", actor=Actor.shopper(other.id))
    with pytest.raises(ValidationError):
        ft.accounts.update_profile(user.id, consents={"terms": False}, actor=Actor.shopper(user.id))
    assert ft.accounts.details(user.id, actor=Actor.shopper(user.id)).name == "Augusta Ada King"


def test_password_change(ft: FitTwin) -> None:
    user = register(ft)
    with pytest.raises(AuthenticationFailed):
        ft.accounts.change_password(
            user.id, "not it at all", "a brand new passphrase", actor=Actor.shopper(user.id)
        )
    ft.accounts.change_password(user.id, PASSWORD, "a brand new passphrase", actor=Actor.shopper(user.id))
    assert ft.accounts.authenticate("ada@example.com", "a brand new passphrase").id == user.id


def test_addresses_and_blind_index_search(ft: FitTwin) -> None:
    ada, bob = register(ft, "ada"), register(ft, "bob")
    home = ft.accounts.add_address(
        ada.id,
        type="shipping",
        line1="1 Row",
        city="London",
        postal_code="sw1a 1aa",
        country="gb",
        make_default_billing=True,
        actor=Actor.shopper(ada.id),
    )
    ft.accounts.add_address(
        bob.id,
        type="billing",
        line1="2 Row",
        city="London",
        postal_code="SW1A1AA",
        country="GB",
        actor=Actor.shopper(bob.id),
    )
    ft.accounts.add_address(
        bob.id,
        type="billing",
        line1="3 Rue",
        city="Paris",
        postal_code="75001",
        country="FR",
        actor=Actor.shopper(bob.id),
    )
    assert ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).billing_address_id == home.id
    staff = Actor.platform(ada.id)
    found = ft.accounts.find_addresses(country="GB", postal_code="SW1A 1AA", actor=staff).items
    assert {a.user_id for a in found} == {ada.id, bob.id}
    opened = ft.accounts.address_details(home.id, actor=Actor.shopper(ada.id))
    assert (opened.postal_code, opened.country, opened.city) == ("SW1A1AA", "GB", "London")
    with pytest.raises(PermissionDenied):
        ft.accounts.address_details(home.id, actor=Actor.shopper(bob.id))
    with pytest.raises(PermissionDenied):
        ft.accounts.find_addresses(country="GB", postal_code="SW1A1AA", actor=Actor.shopper(ada.id)).items
    ft.accounts.remove_address(home.id, actor=Actor.shopper(ada.id))
    assert ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).billing_address_id is None
    assert ft.accounts.addresses(ada.id, actor=Actor.shopper(ada.id)).items == ()
    assert len(ft.accounts.addresses(ada.id, include_deleted=True, actor=Actor.shopper(ada.id)).items) == 1
    assert len(ft.accounts.find_addresses(country="GB", postal_code="SW1A1AA", actor=staff).items) == 1
    with pytest.raises(ValidationError) as raised:
        ft.accounts.add_address(
            ada.id,
            type="home",
            line1="x",
            city="y",
            postal_code="1",
            country="GB",
            actor=Actor.shopper(ada.id),
        )
    assert raised.value.field == "type"
    with pytest.raises(ValidationError) as raised:
        ft.accounts.add_address(
            ada.id,
            type="billing",
            line1="x",
            city="y",
            postal_code="1",
            country="Britain",
            actor=Actor.shopper(ada.id),
        )
    assert raised.value.field == "country"


def test_payment_methods_and_defaults(ft: FitTwin) -> None:
    ada, bob = register(ft, "ada"), register(ft, "bob")
    first = ft.accounts.add_payment_method(
        ada.id, "pm_1", brand="visa", last4="4242", actor=Actor.shopper(ada.id)
    )
    assert ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).default_payment_method_id == first.id
    second = ft.accounts.add_payment_method(ada.id, "pm_2", make_default=True, actor=Actor.shopper(ada.id))
    assert ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).default_payment_method_id == second.id
    with pytest.raises(Conflict):
        ft.accounts.add_payment_method(bob.id, "pm_1", actor=Actor.shopper(bob.id))
    with pytest.raises(NotFound):
        ft.accounts.set_default_payment_method(bob.id, first.id, actor=Actor.shopper(bob.id))
    with pytest.raises(PermissionDenied):
        ft.accounts.remove_payment_method(second.id, actor=Actor.shopper(bob.id))
    ft.accounts.remove_payment_method(second.id, actor=Actor.shopper(ada.id))
    assert ft.accounts.get(ada.id, actor=Actor.shopper(ada.id)).default_payment_method_id is None
    assert [m.id for m in ft.accounts.payment_methods(ada.id, actor=Actor.shopper(ada.id)).items] == [
        first.id
    ]
    with pytest.raises(ValidationError) as raised:
        ft.accounts.add_payment_method(ada.id, "pm_3", last4="12", actor=Actor.shopper(ada.id))
    assert raised.value.field == "last4"


def test_phone_verification_is_recorded_by_staff_and_reset_by_a_new_number(
    ft: FitTwin, clock: FrozenClock
) -> None:
    user = register(ft)
    with pytest.raises(PermissionDenied):
        ft.accounts.mark_phone_verified(user.id, actor=Actor.shopper(user.id))
    verified = ft.accounts.mark_phone_verified(user.id, actor=Actor.system())
    assert verified.phone_verified_at == clock.now()
    assert (
        ft.accounts.update_profile(
            user.id, phone="+33 1 23 45 67 89", actor=Actor.shopper(user.id)
        ).phone_verified_at
        is None
    )
    ft.accounts.update_profile(user.id, phone=None, actor=Actor.shopper(user.id))
    with pytest.raises(ValidationError) as raised:
        ft.accounts.mark_phone_verified(user.id, actor=Actor.system())
    assert raised.value.field == "phone"
