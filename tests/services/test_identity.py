"""Identity hygiene: look-alike emails and usernames cannot open a second account beside an
existing one, and a login costs the same whatever the age of the account's password hash."""

from __future__ import annotations

import statistics
import time
from typing import Any

import argon2
import attrs
import pytest

from fittwin_core import Actor, AuthenticationFailed, Conflict, FitTwin, ValidationError
from fittwin_core.domain import BodyMetrics
from fittwin_core.ports import RawRows
from tests.support.shop import PASSWORD, open_shop

BODY = BodyMetrics(height_cm=168, weight_kg=61)

# Look-alikes of ada@example.com, and what each must do: be refused, or be the same address.
REFUSED, SAME = "refused", "same"
EMAILS = [
    ("аda@example.com", REFUSED),  # Cyrillic а
    ("ada@exаmple.com", REFUSED),  # Cyrillic а in the domain, mixed with Latin
    ("ada\u200b@example.com", REFUSED),  # zero-width space
    ("ada@example.com\u202e", REFUSED),  # right-to-left override
    ("\u202eada@example.com", REFUSED),
    ("ada@exam\u00adple.com", REFUSED),  # soft hyphen (invisible)
    ("ad\u0430@example.com", REFUSED),
    ("ａda@example.com", SAME),  # fullwidth a (NFKC folds it)
    ("ada@ｅｘａｍｐｌｅ.com", SAME),
    ("ADA@Example.COM", SAME),
    ("  ada@example.com ", SAME),
]
USERNAMES = [
    ("аda", REFUSED),  # Cyrillic а
    ("ada\u200b", REFUSED),
    ("\u202eada", REFUSED),
    ("ａda", SAME),  # fullwidth
    ("ADA", SAME),
]


def user_rows(ft: FitTwin) -> int:
    store = ft.context.store
    assert isinstance(store, RawRows)
    return len(store.raw_rows("user_profiles"))


def register(ft: FitTwin, email: str, username: str) -> Any:
    return ft.accounts.register(
        email, PASSWORD, username, BODY, consents={"terms": True}, actor=Actor.anonymous()
    )


@pytest.mark.parametrize(("email", "expected"), EMAILS, ids=repr)
def test_look_alike_emails_are_refused_or_are_the_existing_account(
    ft: FitTwin, email: str, expected: str
) -> None:
    ada = register(ft, "ada@example.com", "ada")
    error = ValidationError if expected == REFUSED else Conflict
    with pytest.raises(error):
        register(ft, email, "someone")
    assert user_rows(ft) == 1
    if expected == SAME:
        assert ft.accounts.authenticate(email, PASSWORD).id == ada.id
        with pytest.raises(Conflict):
            ft.accounts.change_email(
                register(ft, "grace@example.com", "grace").id, email, actor=Actor.system()
            )
    else:
        with pytest.raises(AuthenticationFailed):
            ft.accounts.authenticate(email, PASSWORD)


@pytest.mark.parametrize(("username", "expected"), USERNAMES, ids=repr)
def test_look_alike_usernames_are_refused_or_taken(ft: FitTwin, username: str, expected: str) -> None:
    register(ft, "ada@example.com", "ada")
    error = ValidationError if expected == REFUSED else Conflict
    with pytest.raises(error):
        register(ft, "grace@example.com", username)
    grace = register(ft, "grace@example.com", "grace")
    with pytest.raises(error):
        ft.accounts.update_profile(grace.id, username=username, actor=Actor.shopper(grace.id))
    assert user_rows(ft) == 2


def test_stored_emails_are_ascii_even_for_international_domains(ft: FitTwin) -> None:
    assert register(ft, "Jorg@Example.COM", "jorg").email == "jorg@example.com"
    assert register(ft, "max@münchen.de", "max").email == "max@xn--mnchen-3ya.de"
    assert ft.accounts.authenticate("MAX@MÜNCHEN.DE", PASSWORD).username == "max"


def test_brand_user_emails_follow_the_same_rules(ft: FitTwin) -> None:
    shop = open_shop(ft)  # its owner is owner@shop.example
    for look_alike, error in [("оwner@shop.example", ValidationError), ("ｏwner@shop.example", Conflict)]:
        with pytest.raises(error):
            ft.brands.invite_user(shop.brand.id, look_alike, "owner", actor=shop.platform)
    with pytest.raises(ValidationError) as raised:
        ft.brands.create("Look-alike brand", {"email": "ada\u202e@brand.example"}, actor=shop.platform)
    assert raised.value.field == "primary_contact.email"


# ------------------------------------------------------------------ login cost


CURRENT = argon2.Parameters(
    type=argon2.Type.ID, version=19, salt_len=16, hash_len=32, time_cost=2, memory_cost=19_456, parallelism=1
)


class CountingHasher:
    """A hasher at fixed current parameters that records the parameters of every hash it
    computes or verifies (``(m, t, p)`` parsed from the encoded hash)."""

    def __init__(self) -> None:
        self._inner = argon2.PasswordHasher.from_parameters(CURRENT)
        self.work: list[tuple[int, int, int]] = []

    @staticmethod
    def cost(encoded: str) -> tuple[int, int, int]:
        params = argon2.extract_parameters(encoded)
        return params.memory_cost, params.time_cost, params.parallelism

    def hash(self, password: str) -> str:
        encoded = self._inner.hash(password)
        self.work.append(self.cost(encoded))
        return encoded

    def verify(self, password_hash: str, password: str) -> bool:
        self.work.append(self.cost(password_hash))
        try:
            return self._inner.verify(password_hash, password)
        except argon2.exceptions.VerificationError:
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._inner.check_needs_rehash(password_hash)


def cheap_hash(password: str) -> str:
    """A hash made years ago with much cheaper parameters (argon2id, 1 pass over 1 MiB)."""
    return argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def plant_outdated_hash(ft: FitTwin, user_id: Any) -> None:
    with ft.context.store.unit_of_work(Actor.system()) as uow:
        profile = uow.user_profiles.lock(user_id)
        uow.user_profiles.update(attrs.evolve(profile, password_hash=cheap_hash(PASSWORD)))
        uow.commit()


@pytest.fixture
def counted(ft: FitTwin) -> tuple[FitTwin, CountingHasher]:
    hasher = CountingHasher()
    counted_ft = FitTwin(attrs.evolve(ft.context, hasher=hasher))
    return counted_ft, hasher


CURRENT_COST = (CURRENT.memory_cost, CURRENT.time_cost, CURRENT.parallelism)


def test_every_failed_login_pays_for_one_hash_at_current_parameters(
    counted: tuple[FitTwin, CountingHasher],
) -> None:
    ft, hasher = counted
    register(ft, "current@example.com", "current")
    plant_outdated_hash(ft, register(ft, "old@example.com", "old").id)
    for email in ("nobody@example.com", "not an email", "current@example.com", "old@example.com"):
        for attempt in range(2):  # the first unknown-email login makes the dummy hash
            hasher.work.clear()
            with pytest.raises(AuthenticationFailed):
                ft.accounts.authenticate(email, "wrong password")
            assert hasher.work.count(CURRENT_COST) == 1, (email, attempt, hasher.work)


def test_a_login_with_an_outdated_hash_verifies_a_dummy_first_and_upgrades_it(
    counted: tuple[FitTwin, CountingHasher],
) -> None:
    ft, hasher = counted
    old = register(ft, "old@example.com", "old")
    plant_outdated_hash(ft, old.id)
    with pytest.raises(AuthenticationFailed):
        ft.accounts.authenticate("nobody@example.com", "x" * 8)  # makes the dummy hash
    hasher.work.clear()
    assert ft.accounts.authenticate("old@example.com", PASSWORD).id == old.id
    cheap = CountingHasher.cost(cheap_hash("x"))
    assert hasher.work == [CURRENT_COST, cheap, CURRENT_COST]  # dummy, the real check, the rehash
    assert CountingHasher.cost(ft.accounts.get(old.id, actor=Actor.system()).password_hash) == CURRENT_COST


def test_a_login_with_an_outdated_hash_is_not_faster(counted: tuple[FitTwin, CountingHasher]) -> None:
    ft, _ = counted
    register(ft, "current@example.com", "current")
    plant_outdated_hash(ft, register(ft, "old@example.com", "old").id)

    def seconds(email: str) -> float:
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            with pytest.raises(AuthenticationFailed):
                ft.accounts.authenticate(email, "wrong password")
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    seconds("nobody@example.com")  # warm up (and make the dummy hash)
    ratio = seconds("old@example.com") / seconds("current@example.com")
    assert ratio > 0.5, f"an outdated-hash login takes {ratio:.2f}× a current one"  # 0.05 unequalised
