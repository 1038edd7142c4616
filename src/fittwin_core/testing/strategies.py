"""Hypothesis strategies for every FitTwin entity and value object.

Each strategy produces *valid* instances (they pass every validator), so they can be stored
as they are; pass keyword overrides to pin fields, e.g. foreign keys::

    from hypothesis import given
    from fittwin_core.testing import strategies as fst

    @given(fst.orders(user_id=st.just(my_user_id)))
    def test_something(order): ...

Importing this module also registers every strategy with :func:`hypothesis.strategies.from_type`,
so ``st.from_type(UserProfile)`` works too. Strategies for scalar formats (``emails()``,
``rids()``, ``uuid7s()``, ``sealed()``, ``json_objects()``, ``money()``...) are public as well.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from hypothesis import strategies as st

from fittwin_core.domain import (
    Actor,
    ActorType,
    Address,
    AddressType,
    Appearance,
    Avatar,
    AvatarSources,
    AvatarStatus,
    BodyMetrics,
    Brand,
    BrandRole,
    BrandStatus,
    BrandUser,
    BrandUserStatus,
    BrandWebhooks,
    CloseReason,
    Consents,
    DataKey,
    EffectKind,
    EventLog,
    FitMap,
    FitMapProposal,
    FitPreference,
    FitSummary,
    FitVerdict,
    IdempotencyRecord,
    JsonMap,
    Location,
    Money,
    Notification,
    NotificationChannel,
    Order,
    OrderItem,
    OrderStatus,
    OutboxEffect,
    PaymentMethod,
    PhotoRef,
    PrimaryContact,
    Product,
    ProductAssets,
    ProductStatus,
    ProductVariant,
    ProposalStatus,
    Referral,
    ReferralEvent,
    ReferralEventType,
    ReferralPolicy,
    ReturnReason,
    ReturnReasonCode,
    RewardLedgerEntry,
    RewardStatus,
    Rounding,
    Sex,
    SizeChart,
    StylePreferences,
    TorsoLength,
    Totals,
    UnitSystem,
    UserProfile,
    VariantStatus,
    WebhookSubscription,
    ZoneFit,
)
from fittwin_core.domain.brands import WEBHOOK_EVENTS
from fittwin_core.domain.catalog import CATEGORIES
from fittwin_core.domain.ids import encode_rid, uuid7
from fittwin_core.domain.money import CURRENCIES
from fittwin_core.domain.users import HEIGHT_RANGE_CM, MEASUREMENT_RANGES, WEIGHT_RANGE_KG

T = TypeVar("T")
S = st.SearchStrategy

_B64URL = string.ascii_letters + string.digits + "-_"
_MAX_INT = 2**31 - 1
_MAX_CENTS = 10**12

# ---------------------------------------------------------------------------- scalars


def plain_text(*, min_size: int = 0, max_size: int = 40) -> S[str]:
    """Unicode text a database column can hold (no NUL, no lone surrogates)."""
    return st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), min_size=min_size, max_size=max_size
    )


def names(max_size: int = 40) -> S[str]:
    """Non-empty human-ish text."""
    return plain_text(min_size=1, max_size=max_size)


def aware_datetimes(
    min_value: datetime = datetime(2020, 1, 1), max_value: datetime = datetime(2035, 12, 31)
) -> S[datetime]:
    """Time-zone-aware datetimes (UTC or a fixed offset)."""
    zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
    return st.datetimes(min_value=min_value, max_value=max_value, timezones=zones)


def dates(min_value: date = date(2020, 1, 1), max_value: date = date(2035, 12, 31)) -> S[date]:
    """Calendar dates."""
    return st.dates(min_value=min_value, max_value=max_value)


def uuid7s() -> S[UUID]:
    """UUIDv7 ids with timestamps between 2020 and 2035."""
    return st.builds(
        uuid7,
        st.integers(min_value=1_577_836_800_000, max_value=2_082_758_400_000),
        st.integers(0, 2**74 - 1),
    )


def rids() -> S[str]:
    """Referral ids: 128 random bits in base64url."""
    return st.binary(min_size=16, max_size=16).map(encode_rid)


def sealed() -> S[str]:
    """Envelope ciphertext in the stored format (random bytes, not real encryption)."""
    return st.builds(
        lambda key_id, payload: f"fte1.{key_id}.{payload}",
        st.text(_B64URL, min_size=4, max_size=22),
        st.text(_B64URL, min_size=40, max_size=120),
    )


def hex_digests(length: int = 32) -> S[str]:
    """Lower-case hex strings (keyed hashes, blind indexes)."""
    return st.text("0123456789abcdef", min_size=length, max_size=length)


def emails() -> S[str]:
    """Normalised email addresses."""
    local = st.text(string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=20).filter(
        lambda s: not s.startswith(".")
    )
    domain = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=20)
    tld = st.text(string.ascii_lowercase, min_size=2, max_size=6)
    return st.builds(lambda a, b, c: f"{a}@{b}.{c}", local, domain, tld)


def usernames() -> S[str]:
    """Valid usernames (1–32 characters)."""
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True)


def currencies() -> S[str]:
    """ISO-4217 codes FitTwin can charge in."""
    return st.sampled_from(sorted(CURRENCIES))


def cents(max_value: int = _MAX_CENTS) -> S[int]:
    """Non-negative amounts in minor units."""
    return st.integers(min_value=0, max_value=max_value)


def money(currency: S[str] | None = None) -> S[Money]:
    """Amounts with a currency (may be negative)."""
    return st.builds(Money, st.integers(-_MAX_CENTS, _MAX_CENTS), currency or currencies())


def percents() -> S[Decimal]:
    """Percentages between 0 and 100 with up to 4 decimal places."""
    return st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)


def json_values(max_leaves: int = 10) -> S[Any]:
    """Any JSON value (finite numbers, storable strings)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda f: f + 0.0)
        | plain_text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(plain_text(max_size=10), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_objects(max_leaves: int = 10) -> S[JsonMap]:
    """Frozen JSON objects, as JSON columns hold them."""
    return st.dictionaries(plain_text(max_size=10), json_values(max_leaves), max_size=5).map(JsonMap)


def _optional(strategy: S[T]) -> S[T | None]:
    return st.none() | strategy


def _entity(cls: type[T], fields: dict[str, S[Any]], overrides: dict[str, S[Any]]) -> S[T]:
    unknown = set(overrides) - set(fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    return st.builds(cls, **{**fields, **overrides})


def _stamped(fields: dict[str, S[Any]], *, updated: bool = True) -> dict[str, S[Any]]:
    fields["created_at"] = aware_datetimes()
    if updated:
        fields["updated_at"] = aware_datetimes()
    return fields


# ---------------------------------------------------------------------------- users


@st.composite
def body_metrics(draw: st.DrawFn) -> BodyMetrics:
    """Bodies within human ranges; some optional measurements set, some of those estimated."""
    measured: dict[str, float] = {}
    for name, (low, high) in MEASUREMENT_RANGES.items():
        if draw(st.booleans()):
            measured[name] = draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    estimated = draw(st.frozensets(st.sampled_from(sorted(measured)))) if measured else frozenset()
    return BodyMetrics(
        height_cm=draw(st.floats(*HEIGHT_RANGE_CM)),
        weight_kg=draw(st.floats(*WEIGHT_RANGE_KG)),
        sex=draw(_optional(st.sampled_from(Sex))),
        estimated=estimated,
        **measured,
    )


def appearances() -> S[Appearance]:
    """Appearance value objects."""
    text = _optional(names(40))
    return st.builds(Appearance, hair_color=text, eye_color=text, skin_tone=text)


def style_preferences() -> S[StylePreferences]:
    """Style preferences."""
    return st.builds(
        StylePreferences,
        keywords=st.lists(names(40), max_size=4).map(tuple),
        fit_prefs=st.sampled_from(FitPreference),
        torso_length_pref=st.sampled_from(TorsoLength),
    )


def consents(terms: S[bool] | None = None) -> S[Consents]:
    """Consents (terms accepted unless told otherwise)."""
    return st.builds(Consents, terms=terms or st.just(True), marketing=st.booleans(), comms=st.booleans())


def locations() -> S[Location]:
    """Locations."""
    return st.builds(
        Location, country=st.from_regex(r"[A-Z]{2}", fullmatch=True), region=_optional(names(100))
    )


def regions() -> S[str]:
    """Region names."""
    return st.sampled_from(["default", "eu", "us", "apac"])


def user_profiles(**overrides: S[Any]) -> S[UserProfile]:
    """Shopper profiles (PII fields hold sealed ciphertext)."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "email": emails(),
            "password_hash": st.just("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
            "username": usernames(),
            "body_metrics": _optional(body_metrics()),
            "consents": consents(),
            "region": regions(),
            "email_verified_at": _optional(aware_datetimes()),
            "name": _optional(sealed()),
            "phone": _optional(sealed()),
            "phone_verified_at": _optional(aware_datetimes()),
            "location": _optional(locations()),
            "appearance": _optional(appearances()),
            "style_preferences": _optional(style_preferences()),
            "default_payment_method_id": st.none(),
            "billing_address_id": st.none(),
            "erased_at": _optional(aware_datetimes()),
        }
    )
    return _entity(UserProfile, fields, overrides)


def addresses(**overrides: S[Any]) -> S[Address]:
    """Addresses with sealed lines and blind indexes."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "user_id": uuid7s(),
            "type": st.sampled_from(AddressType),
            "line1": sealed(),
            "line2": _optional(sealed()),
            "city": sealed(),
            "state": _optional(sealed()),
            "postal_code": sealed(),
            "country": sealed(),
            "postal_code_bidx": _optional(hex_digests()),
            "country_bidx": _optional(hex_digests()),
            "metadata": _optional(json_objects()),
            "deleted_at": _optional(aware_datetimes()),
        }
    )
    return _entity(Address, fields, overrides)


def payment_methods(**overrides: S[Any]) -> S[PaymentMethod]:
    """Tokenised payment methods."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "user_id": uuid7s(),
            "psp_token_id": st.text(_B64URL, min_size=8, max_size=30).map(lambda s: f"pm_{s}"),
            "brand": _optional(st.sampled_from(["visa", "mastercard", "amex"])),
            "last4": _optional(st.from_regex(r"[0-9]{4}", fullmatch=True)),
            "expires_at": _optional(dates()),
            "billing_address_id": st.none(),
        }
    )
    return _entity(PaymentMethod, fields, overrides)


# ---------------------------------------------------------------------------- avatars


def photo_refs() -> S[PhotoRef]:
    """Photo metadata."""
    size = _optional(st.integers(1, 20000))
    return st.builds(
        PhotoRef,
        object_key=st.text(_B64URL + "/", min_size=1, max_size=60),
        content_type=st.sampled_from(["image/jpeg", "image/png", "image/heic"]),
        width=size,
        height=size,
        view=_optional(st.sampled_from(["front", "side", "back"])),
    )


def avatar_sources() -> S[AvatarSources]:
    """Avatar sources."""
    measurements = st.dictionaries(st.sampled_from(sorted(MEASUREMENT_RANGES)), st.just(0.0), max_size=4).map(
        lambda d: {k: MEASUREMENT_RANGES[k][0] + 1.0 for k in d}
    )
    return st.builds(
        AvatarSources,
        measurements=measurements,
        photos=st.lists(photo_refs(), max_size=3).map(tuple),
        quick_estimate=st.booleans(),
    )


def avatars(**overrides: S[Any]) -> S[Avatar]:
    """Avatars."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "user_id": uuid7s(),
            "version": st.integers(1, 1000),
            "sources": avatar_sources(),
            "status": st.sampled_from(AvatarStatus),
            "mesh_ref": _optional(st.text(_B64URL + "/.", min_size=1, max_size=80)),
            "generated_at": _optional(aware_datetimes()),
            "confidence": _optional(st.integers(0, 100)),
            "failure_reason": _optional(names(100)),
            "deleted_at": _optional(aware_datetimes()),
        }
    )
    return _entity(Avatar, fields, overrides)


# ---------------------------------------------------------------------------- brands


def primary_contacts() -> S[PrimaryContact]:
    """Brand contacts."""
    return st.builds(
        PrimaryContact,
        email=emails(),
        name=_optional(names(100)),
        phone=_optional(st.from_regex(r"\+[0-9]{8,14}", fullmatch=True)),
        address=_optional(names(200)),
    )


def webhook_subscriptions() -> S[WebhookSubscription]:
    """Webhook subscriptions with sealed secrets."""
    return st.builds(
        WebhookSubscription,
        id=uuid7s(),
        url=st.from_regex(r"https://[a-z]{3,12}\.example/[a-z]{0,10}", fullmatch=True),
        events=st.lists(st.sampled_from(sorted(WEBHOOK_EVENTS)), min_size=1, max_size=3, unique=True).map(
            tuple
        ),
        secret=sealed(),
        active=st.booleans(),
    )


def brand_webhooks() -> S[BrandWebhooks]:
    """A brand's webhook configuration."""
    return st.builds(BrandWebhooks, subscriptions=st.lists(webhook_subscriptions(), max_size=2).map(tuple))


def brands(**overrides: S[Any]) -> S[Brand]:
    """Brands."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "name": names(200),
            "onboarding_status": st.sampled_from(BrandStatus),
            "primary_contact": primary_contacts(),
            "webhooks": _optional(brand_webhooks()),
        }
    )
    return _entity(Brand, fields, overrides)


def brand_users(**overrides: S[Any]) -> S[BrandUser]:
    """Brand users."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "brand_id": uuid7s(),
            "email": emails(),
            "role": st.sampled_from(BrandRole),
            "status": st.sampled_from(BrandUserStatus),
            "invite_token": _optional(st.uuids(version=4)),
        }
    )
    return _entity(BrandUser, fields, overrides)


# ---------------------------------------------------------------------------- catalog


def categories() -> S[str]:
    """Category / garment-type slugs of the controlled taxonomy."""
    slug = st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True)
    return st.builds(
        lambda top, subs: "/".join([top, *subs]),
        st.sampled_from(sorted(CATEGORIES)),
        st.lists(slug, max_size=2),
    )


def product_assets() -> S[ProductAssets]:
    """Product asset URLs."""
    urls = st.lists(
        st.from_regex(r"https://cdn\.example/[a-z0-9]{1,12}\.(jpg|glb|mp4)", fullmatch=True), max_size=3
    )
    return st.builds(
        ProductAssets, images=urls.map(tuple), models=urls.map(tuple), video_urls=urls.map(tuple)
    )


def products(**overrides: S[Any]) -> S[Product]:
    """Products."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "brand_id": uuid7s(),
            "title": names(300),
            "description": plain_text(max_size=200),
            "category": categories(),
            "assets": product_assets(),
            "size_chart_id": uuid7s(),
            "fit_map_id": st.none(),
            "status": st.sampled_from(ProductStatus),
        }
    )
    return _entity(Product, fields, overrides)


def skus() -> S[str]:
    """Valid SKUs."""
    return st.from_regex(r"[A-Z0-9][A-Z0-9._-]{2,20}", fullmatch=True)


def product_variants(**overrides: S[Any]) -> S[ProductVariant]:
    """Product variants."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "product_id": uuid7s(),
            "sku": skus(),
            "size_label": st.sampled_from(["XS", "S", "M", "L", "XL", "38", "40", "42"]),
            "color": _optional(names(60)),
            "price_cents": cents(10**9),
            "currency": currencies(),
            "inventory": st.integers(0, _MAX_INT),
            "fit_metadata": _optional(json_objects()),
            "status": st.sampled_from(VariantStatus),
        }
    )
    return _entity(ProductVariant, fields, overrides)


def size_charts(**overrides: S[Any]) -> S[SizeChart]:
    """Size chart rows (the rules are opaque JSON here; the fit engine validates their schema)."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "brand_id": uuid7s(),
            "garment_type": categories(),
            "measurement_rules": json_objects().filter(bool),
            "grading_rules": _optional(json_objects()),
            "unit_system": st.sampled_from(UnitSystem),
        }
    )
    return _entity(SizeChart, fields, overrides)


def fit_maps(**overrides: S[Any]) -> S[FitMap]:
    """Fit map rows."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "brand_id": uuid7s(),
            "garment_type": categories(),
            "rule_set": json_objects(),
            "confidence_model": _optional(json_objects()),
        }
    )
    return _entity(FitMap, fields, overrides)


def fit_map_proposals(**overrides: S[Any]) -> S[FitMapProposal]:
    """Fit map proposal rows."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "fit_map_id": uuid7s(),
            "brand_id": uuid7s(),
            "garment_type": categories(),
            "status": st.sampled_from(ProposalStatus),
            "rule_set": json_objects(),
            "evidence": json_objects(),
            "decided_by": _optional(uuid7s()),
            "decided_at": _optional(aware_datetimes()),
        }
    )
    return _entity(FitMapProposal, fields, overrides)


# ---------------------------------------------------------------------------- orders


@st.composite
def totals(draw: st.DrawFn, currency: S[str] | None = None) -> Totals:
    """Consistent order totals."""
    subtotal = draw(cents(10**9))
    shipping = draw(cents(10**6))
    return Totals.compute(
        subtotal=subtotal,
        tax=draw(cents(10**8)),
        shipping=shipping,
        discounts=draw(st.integers(0, subtotal + shipping)),
        currency=draw(currency or currencies()),
    )


def notifications() -> S[Notification]:
    """Order notification log entries."""
    return st.builds(
        Notification,
        channel=st.sampled_from(NotificationChannel),
        kind=st.sampled_from(["order_confirmed", "order_shipped", "return_received"]),
        sent_at=aware_datetimes(),
        status=st.sampled_from(["queued", "sent", "failed"]),
    )


@st.composite
def orders(draw: st.DrawFn, /, **overrides: S[Any]) -> Order:
    """Orders (closed ones carry a close reason; refunds never exceed the total)."""
    order_totals = draw(overrides.pop("totals", totals()))
    status = draw(overrides.pop("status", st.sampled_from(OrderStatus)))
    fields = _stamped(
        {
            "id": uuid7s(),
            "user_id": uuid7s(),
            "totals": st.just(order_totals),
            "status": st.just(status),
            "shipping_address_id": uuid7s(),
            "billing_address_id": uuid7s(),
            "payment_intent_ref": _optional(
                st.text(_B64URL, min_size=8, max_size=24).map(lambda s: f"pi_{s}")
            ),
            "psp_token_id": _optional(st.text(_B64URL, min_size=8, max_size=24).map(lambda s: f"pm_{s}")),
            "rid": _optional(rids()),
            "notifications": _optional(st.lists(notifications(), max_size=3).map(tuple)),
            "refunded_cents": st.integers(0, order_totals.total),
            "paid_at": _optional(aware_datetimes()),
            "delivered_at": _optional(aware_datetimes()),
            "closed_at": _optional(aware_datetimes()),
            "close_reason": st.sampled_from(CloseReason) if status == OrderStatus.CLOSED else st.none(),
        }
    )
    return draw(_entity(Order, fields, overrides))


def zone_fits() -> S[ZoneFit]:
    """Per-zone fit explanations."""
    cm = st.floats(0, 300, allow_nan=False)
    return st.builds(
        ZoneFit,
        zone=st.sampled_from(["chest", "waist", "hip", "inseam"]),
        body_cm=cm,
        size_min_cm=cm,
        size_max_cm=cm,
        delta_cm=st.floats(-50, 50, allow_nan=False),
        verdict=st.sampled_from(FitVerdict),
        estimated=st.booleans(),
    )


def fit_summaries() -> S[FitSummary]:
    """Fit summary snapshots."""
    return st.builds(
        FitSummary,
        size_label=_optional(st.sampled_from(["S", "M", "L"])),
        confidence=st.integers(0, 100),
        zones=st.lists(zone_fits(), max_size=4).map(tuple),
        between_sizes=st.booleans(),
        size_chart_id=uuid7s(),
        fit_map_id=_optional(uuid7s()),
        engine_version=st.just("1.0"),
        score=_optional(st.floats(0, 1)),
        unassessed_zones=st.lists(st.sampled_from(["neck", "inseam", "waist"]), max_size=2, unique=True).map(
            tuple
        ),
    )


def return_reasons() -> S[ReturnReason]:
    """Return reasons of order lines, with or without a zone."""
    return st.builds(
        ReturnReason,
        reason=st.sampled_from(ReturnReasonCode),
        zone=_optional(st.sampled_from(["chest", "waist", "hip", "thigh", "foot_length"])),
    )


@st.composite
def order_items(draw: st.DrawFn, /, **overrides: S[Any]) -> OrderItem:
    """Order lines (``reserved_qty`` never above ``qty``)."""
    qty = draw(overrides.pop("qty", st.integers(1, 50)))
    fields = {
        "id": uuid7s(),
        "order_id": uuid7s(),
        "product_id": uuid7s(),
        "brand_id": uuid7s(),
        "variant_id": uuid7s(),
        "sku": skus(),
        "size_label": st.sampled_from(["S", "M", "L"]),
        "qty": st.just(qty),
        "reserved_qty": st.integers(0, qty),
        "unit_price_cents": cents(10**7),
        "currency": currencies(),
        "fit_summary": _optional(fit_summaries()),
        "created_at": aware_datetimes(),
        "return_reason": _optional(return_reasons()),
    }
    return draw(_entity(OrderItem, fields, overrides))


# ---------------------------------------------------------------------------- referrals and rewards


def referral_policies() -> S[ReferralPolicy]:
    """Referral policy snapshots."""
    return st.builds(
        ReferralPolicy,
        reward_percent=percents(),
        hold_days=st.integers(0, 365),
        attribution_window_days=st.integers(1, 365),
        rounding=st.sampled_from(Rounding),
        click_dedup_seconds=st.integers(0, 86400),
        velocity_limit=st.integers(1, 100),
        velocity_window_hours=st.integers(1, 720),
    )


def referrals(**overrides: S[Any]) -> S[Referral]:
    """Referral links."""
    fields = {
        "rid": rids(),
        "referrer_user_id": uuid7s(),
        "target_product_id": st.none(),
        "share_url": rids().map(lambda rid: f"https://fittwin.example/r/{rid}"),
        "policy_snapshot": referral_policies(),
        "expires_at": _optional(aware_datetimes()),
        "created_at": aware_datetimes(),
    }
    return _entity(Referral, fields, overrides)


def referral_events(**overrides: S[Any]) -> S[ReferralEvent]:
    """Referral events."""
    fields = {
        "id": uuid7s(),
        "rid": rids(),
        "event_type": st.sampled_from(ReferralEventType),
        "order_id": st.none(),
        "device_fingerprint": _optional(hex_digests()),
        "ip_hash": _optional(hex_digests()),
        "metadata": json_objects(),
        "created_at": aware_datetimes(),
    }
    return _entity(ReferralEvent, fields, overrides)


def reward_ledger_entries(**overrides: S[Any]) -> S[RewardLedgerEntry]:
    """Reward ledger entries (clawbacks are negative)."""
    fields = _stamped(
        {
            "id": uuid7s(),
            "rid": rids(),
            "order_id": uuid7s(),
            "amount_cents": st.integers(-(10**7), 10**7),
            "currency": currencies(),
            "status": st.sampled_from(RewardStatus),
            "hold_until": _optional(dates()),
        }
    )
    return _entity(RewardLedgerEntry, fields, overrides)


# ---------------------------------------------------------------------------- audit and support records


def actors() -> S[Actor]:
    """Actors of every kind."""
    return st.one_of(
        st.builds(Actor.shopper, uuid7s()),
        st.builds(Actor.brand_user, uuid7s()),
        st.builds(Actor.platform, uuid7s()),
        st.just(Actor.system()),
    )


def event_logs(**overrides: S[Any]) -> S[EventLog]:
    """Event log records as the library adds them (row-change records, ``insert``/``update``/
    ``delete``, come from the stores' audit only: pass ``action=`` to build those)."""
    fields = {
        "id": uuid7s(),
        "actor_type": st.sampled_from(ActorType),
        "actor_id": _optional(uuid7s()),
        "action": st.sampled_from(["user.erase", "user.export", "keys.rotate", "retention.purge"]),
        "entity_type": st.sampled_from(["orders", "brands", "user_profiles"]),
        "entity_id": uuid7s(),
        "metadata": json_objects(),
        "created_at": aware_datetimes(),
    }
    return _entity(EventLog, fields, overrides)


def data_keys(**overrides: S[Any]) -> S[DataKey]:
    """Wrapped data keys."""
    fields = _stamped(
        {
            "owner_id": uuid7s(),
            "key_id": st.text(_B64URL, min_size=8, max_size=22),
            "kek_id": st.text(_B64URL, min_size=1, max_size=20),
            "wrapped_key": st.binary(min_size=16, max_size=80),
        }
    )
    return _entity(DataKey, fields, overrides)


def idempotency_records(**overrides: S[Any]) -> S[IdempotencyRecord]:
    """Idempotency records."""
    fields = {
        "scope": st.sampled_from(["orders.place", "stripe.event"]),
        "key": names(100),
        "request_hash": hex_digests(64),
        "result_id": uuid7s(),
        "created_at": aware_datetimes(),
    }
    return _entity(IdempotencyRecord, fields, overrides)


def outbox_effects(**overrides: S[Any]) -> S[OutboxEffect]:
    """Outbox rows (pending, not yet attempted)."""
    fields = {
        "id": uuid7s(),
        "kind": st.sampled_from(list(EffectKind)),
        "order_id": _optional(uuid7s()),
        "payload": json_objects(),
        "idempotency_key": names(100),
        "available_at": aware_datetimes(),
        "created_at": aware_datetimes(),
        "updated_at": aware_datetimes(),
    }
    return _entity(OutboxEffect, fields, overrides)


STRATEGIES: dict[type[Any], Callable[..., S[Any]]] = {
    UserProfile: user_profiles,
    Avatar: avatars,
    Brand: brands,
    BrandUser: brand_users,
    Product: products,
    ProductVariant: product_variants,
    SizeChart: size_charts,
    FitMap: fit_maps,
    Order: orders,
    OrderItem: order_items,
    Address: addresses,
    PaymentMethod: payment_methods,
    Referral: referrals,
    ReferralEvent: referral_events,
    EventLog: event_logs,
    RewardLedgerEntry: reward_ledger_entries,
    BodyMetrics: body_metrics,
    Appearance: appearances,
    StylePreferences: style_preferences,
    Consents: consents,
    Location: locations,
    AvatarSources: avatar_sources,
    PhotoRef: photo_refs,
    PrimaryContact: primary_contacts,
    WebhookSubscription: webhook_subscriptions,
    BrandWebhooks: brand_webhooks,
    ProductAssets: product_assets,
    Totals: totals,
    Notification: notifications,
    FitSummary: fit_summaries,
    ZoneFit: zone_fits,
    ReferralPolicy: referral_policies,
    Money: money,
    Actor: actors,
    DataKey: data_keys,
    IdempotencyRecord: idempotency_records,
    OutboxEffect: outbox_effects,
    FitMapProposal: fit_map_proposals,
    ReturnReason: return_reasons,
}
"""Entity or value-object class → the function building its strategy."""


def for_type(cls: type[T], **overrides: S[Any]) -> S[T]:
    """The strategy for ``cls`` (an entity or value object), with field overrides for entities."""
    build = STRATEGIES[cls]
    return build(**overrides) if overrides else build()


for _cls, _build in STRATEGIES.items():
    st.register_type_strategy(_cls, _build())

__all__ = [
    "STRATEGIES",
    "actors",
    "addresses",
    "appearances",
    "avatar_sources",
    "avatars",
    "aware_datetimes",
    "body_metrics",
    "brand_users",
    "brand_webhooks",
    "brands",
    "categories",
    "cents",
    "consents",
    "currencies",
    "data_keys",
    "dates",
    "emails",
    "event_logs",
    "fit_map_proposals",
    "fit_maps",
    "fit_summaries",
    "for_type",
    "hex_digests",
    "idempotency_records",
    "json_objects",
    "json_values",
    "locations",
    "money",
    "names",
    "notifications",
    "order_items",
    "orders",
    "outbox_effects",
    "payment_methods",
    "percents",
    "photo_refs",
    "plain_text",
    "primary_contacts",
    "product_assets",
    "product_variants",
    "products",
    "referral_events",
    "referral_policies",
    "referrals",
    "regions",
    "return_reasons",
    "rids",
    "sealed",
    "size_charts",
    "skus",
    "style_preferences",
    "totals",
    "user_profiles",
    "usernames",
    "uuid7s",
    "webhook_subscriptions",
    "zone_fits",
]
