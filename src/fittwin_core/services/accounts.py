"""Shopper accounts: registration, authentication, profiles, addresses and payment methods.

Passwords are hashed (argon2id) before anything is stored and never logged. Names, phone
numbers and address lines are sealed under the shopper's own data key; postal codes and
countries are also indexed through keyed blind indexes so they can be searched for equality.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs

from fittwin_core.domain import (
    Actor,
    Address,
    AddressType,
    Appearance,
    AuthenticationFailed,
    BodyMetrics,
    Conflict,
    Consents,
    Location,
    PaymentMethod,
    StylePreferences,
    UserProfile,
    ValidationError,
)
from fittwin_core.domain.audit import REDACTED
from fittwin_core.domain.rules import json_object_from, parse_enum, redacted
from fittwin_core.domain.users import normalize_email, normalize_username, region_name
from fittwin_core.pagination import DEFAULT_LIMIT, Page, PageRequest
from fittwin_core.ports import UnitOfWork
from fittwin_core.services.base import (
    UNSET,
    Context,
    Service,
    UnitOfWorkRunner,
    Unset,
    as_uuid,
    coerce,
    require,
)
from fittwin_core.services.permissions import allowed, authorize, own_live_address, own_payment_method
from fittwin_core.services.vault import Vault

_PHONE = re.compile(r"\+?[0-9]{6,15}")
_PHONE_NOISE = re.compile(r"[\s().-]")
_COUNTRY = re.compile(r"[A-Z]{2}")
EMAIL_TOKEN_TTL = timedelta(days=2)


@attrs.frozen
class AccountDetails:
    """A profile with its sealed fields opened (reprs keep them hidden)."""

    profile: UserProfile
    name: str | None = attrs.field(repr=redacted)
    phone: str | None = attrs.field(repr=redacted)


@attrs.frozen
class AddressDetails:
    """An address with its sealed lines opened (reprs keep them hidden)."""

    address: Address
    line1: str = attrs.field(repr=redacted)
    line2: str | None = attrs.field(repr=redacted)
    city: str = attrs.field(repr=redacted)
    state: str | None = attrs.field(repr=redacted)
    postal_code: str = attrs.field(repr=redacted)
    country: str = attrs.field(repr=redacted)


def normalize_postal_code(value: str) -> str:
    """Postal codes compare without spaces and case: ``"sw1a 1aa"`` → ``"SW1A1AA"``."""
    return re.sub(r"\s+", "", value).upper()


def _text(value: object, field: str, max_len: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string")
    value = value.strip()
    require(len(value) <= max_len, field, f"must be at most {max_len} characters")
    require(value.isprintable(), field, "must not contain control characters")
    return value


def _phone(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("phone", "must be a string")
    compact = _PHONE_NOISE.sub("", value)
    require(
        bool(_PHONE.fullmatch(compact)),
        "phone",
        "must be a phone number of 6 to 15 digits, optionally with +",
    )
    return compact


def _country(value: object, field: str = "country") -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value.strip().upper()):
        raise ValidationError(field, "must be an ISO 3166-1 alpha-2 country code")
    return value.strip().upper()


class Accounts(Service):
    """``ft.accounts``: register, authenticate, and manage a shopper's own data."""

    def __init__(self, ctx: Context, runner: UnitOfWorkRunner | None = None) -> None:
        super().__init__(ctx, runner)
        self.vault = Vault(ctx.cipher, ctx.clock)
        self._dummy_hash: str | None = None

    # ------------------------------------------------------------------ registration and login

    def register(
        self,
        email: str,
        password: str,
        username: str,
        body_metrics: BodyMetrics | Mapping[str, Any],
        *,
        consents: Consents | Mapping[str, Any],
        name: str | None = None,
        phone: str | None = None,
        location: Location | Mapping[str, Any] | None = None,
        appearance: Appearance | Mapping[str, Any] | None = None,
        style_preferences: StylePreferences | Mapping[str, Any] | None = None,
        region: str | None = None,
        actor: Actor,
    ) -> UserProfile:
        """Create a shopper account; the returned profile holds sealed ``name``/``phone``.

        ``actor`` is :meth:`Actor.anonymous` for a visitor signing up, or staff creating the
        account (signed-in shoppers and brand users may not). Raises :class:`ValidationError`
        for bad input (the terms must be accepted) and :class:`Conflict` when the email or
        username is taken.
        """
        authorize(actor, "accounts.register")
        normalized = normalize_email(email)
        username = normalize_username(username)
        self._check_password(password)
        metrics = coerce(body_metrics, BodyMetrics, "body_metrics")
        agreed = Consents.from_mapping(consents)
        require(agreed.terms, "consents.terms", "must be accepted to register")
        clean_name = _text(name, "name", 200, optional=True)
        clean_phone = _phone(phone)
        place = None if location is None else coerce(location, Location, "location")
        looks = None if appearance is None else coerce(appearance, Appearance, "appearance")
        style = (
            None
            if style_preferences is None
            else coerce(style_preferences, StylePreferences, "style_preferences")
        )
        settings = self._ctx.settings
        home = region if region is not None else (settings.region or settings.default_region)
        region_name.check("region", home)
        self.check_region(home)
        password_hash = self._ctx.hasher.hash(password)  # slow on purpose: outside the transaction

        def work(uow: UnitOfWork) -> UserProfile:
            if uow.user_profiles.where(email=normalized, limit=1):
                raise Conflict("an account with this email already exists")
            if any(
                u.username.lower() == username.lower() for u in uow.user_profiles.where(username=username)
            ):
                raise Conflict("this username is taken")
            user_id = self._ctx.ids.new_id()
            now = self.now()
            profile = UserProfile(
                id=user_id,
                email=normalized,
                password_hash=password_hash,
                username=username,
                body_metrics=metrics,
                consents=agreed,
                region=home,
                **self.vault.seal_fields(
                    uow, user_id, UserProfile, user_id, name=clean_name, phone=clean_phone
                ),
                location=place,
                appearance=looks,
                style_preferences=style,
                created_at=now,
                updated_at=now,
            )
            uow.user_profiles.add(profile)
            return profile

        return self._shown(self.transaction(work, actor=actor), actor)

    def authenticate(self, email: str, password: str) -> UserProfile:
        """The profile for these credentials; :class:`AuthenticationFailed` otherwise.

        An unknown email, a wrong password and a malformed email fail alike and take at least
        as long as one verification at the current parameters: an unknown email verifies a
        dummy hash, and so does an account whose hash was made with older (cheaper)
        parameters before its own hash is checked — else its faster answer would tell that
        the account exists. Such a hash is replaced on success.
        """
        try:
            normalized = normalize_email(email)
        except ValidationError:
            normalized = None
        visitor = Actor.anonymous()  # who it is, the password is about to prove
        found = (
            None
            if normalized is None
            else self.read(lambda uow: uow.user_profiles.where(email=normalized), actor=visitor)
        )
        if not found or not isinstance(password, str):
            self._verify_dummy(password if isinstance(password, str) else "")
            raise AuthenticationFailed("invalid email or password")
        profile = found[0]
        outdated = self._ctx.hasher.needs_rehash(profile.password_hash)
        if outdated:
            self._verify_dummy(password)
        if not self._ctx.hasher.verify(profile.password_hash, password):
            raise AuthenticationFailed("invalid email or password")
        if outdated:
            rehashed = self._ctx.hasher.hash(password)

            def work(uow: UnitOfWork) -> UserProfile:
                current = uow.user_profiles.lock(profile.id)
                if current.erased or current.password_hash != profile.password_hash:
                    raise AuthenticationFailed("invalid email or password")  # erased or changed meanwhile
                updated = attrs.evolve(current, password_hash=rehashed, updated_at=self.now())
                uow.user_profiles.update(updated)
                return updated

            return _redacted(self.transaction(work, actor=Actor.shopper(profile.id)))
        return _redacted(profile)

    def change_password(
        self, user_id: UUID, current_password: str, new_password: str, *, actor: Actor
    ) -> None:
        """Replace the password after checking the current one (:class:`AuthenticationFailed`)."""
        uid = as_uuid(user_id, "user_id")
        authorize(actor, "accounts.change_password", user_id=uid)
        profile = self.read(lambda uow: self.shopper(uow, uid), actor=actor)
        require(not profile.erased, "user_id", "refers to an erased account")
        if not isinstance(current_password, str) or not self._ctx.hasher.verify(
            profile.password_hash, current_password
        ):
            raise AuthenticationFailed("the current password is wrong")
        self._check_password(new_password, field="new_password")
        new_hash = self._ctx.hasher.hash(new_password)

        def work(uow: UnitOfWork) -> None:
            current = self.live_shopper(uow, profile.id)
            uow.user_profiles.update(attrs.evolve(current, password_hash=new_hash, updated_at=self.now()))

        self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ email verification

    def email_verification_token(self, user_id: UUID, *, actor: Actor) -> str:
        """A token proving control of the account's current email, valid for two days.

        Send it to the address; :meth:`verify_email` accepts it. Changing the email invalidates it.
        """
        uid = as_uuid(user_id, "user_id")
        authorize(actor, "accounts.update", user_id=uid)
        profile = self.read(lambda uow: self.shopper(uow, uid), actor=actor)
        expires = int((self.now() + EMAIL_TOKEN_TTL).timestamp())
        return f"{profile.id}.{expires}.{self._email_mac(profile, expires)}"

    def verify_email(self, token: str) -> UserProfile:
        """Mark the email verified; :class:`AuthenticationFailed` for a bad or expired token."""
        if not isinstance(token, str):
            raise AuthenticationFailed("invalid verification token")
        try:
            raw_id, raw_expiry, mac = token.split(".")
            user_id, expires = UUID(raw_id), int(raw_expiry)
        except ValueError:
            raise AuthenticationFailed("invalid verification token") from None

        def work(uow: UnitOfWork) -> UserProfile:
            # Locked: an erasure running meanwhile is either seen (the email, and so the MAC,
            # changed) or waits; the profile written back is never one read before it.
            profile = uow.user_profiles.lock(user_id) if uow.user_profiles.find(user_id) else None
            if profile is None or not hmac.compare_digest(mac, self._email_mac(profile, expires)):
                raise AuthenticationFailed("invalid verification token")
            if self.now().timestamp() > expires:
                raise AuthenticationFailed("the verification token has expired")
            if profile.email_verified_at is not None:
                return profile
            verified = attrs.evolve(profile, email_verified_at=self.now(), updated_at=self.now())
            uow.user_profiles.update(verified)
            return verified

        return _redacted(self.transaction(work, actor=Actor.shopper(user_id)))

    def _email_mac(self, profile: UserProfile, expires: int) -> str:
        return self.vault.token_mac("email_verification", f"{profile.id}|{profile.email}|{expires}")

    def mark_phone_verified(self, user_id: UUID, *, actor: Actor) -> UserProfile:
        """Record that the phone number was verified (by the host's SMS provider; staff only)."""
        authorize(actor, "accounts.verify_phone")

        def work(uow: UnitOfWork) -> UserProfile:
            profile = self.live_shopper(uow, user_id)
            require(profile.phone is not None, "phone", "is not set")
            updated = attrs.evolve(profile, phone_verified_at=self.now(), updated_at=self.now())
            uow.user_profiles.update(updated)
            return updated

        return self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ profile

    def get(self, user_id: UUID, *, actor: Actor) -> UserProfile:
        """The stored profile (:class:`NotFound` if there is none), for the shopper or staff.

        Only staff see the password hash: for anyone else ``password_hash`` is ``"<redacted>"``.
        """
        uid = as_uuid(user_id, "user_id")
        authorize(actor, "accounts.read", user_id=uid)
        return self._shown(self.read(lambda uow: self.shopper(uow, uid), actor=actor), actor)

    def details(self, user_id: UUID, *, actor: Actor) -> AccountDetails:
        """The profile with ``name`` and ``phone`` opened, for the shopper or staff."""
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.read", user_id=uid)

        def work(uow: UnitOfWork) -> AccountDetails:
            profile = self.shopper(uow, uid)
            opened = self.vault.open_fields(uow, uid, profile)
            return AccountDetails(self._shown(profile, acting), opened["name"], opened["phone"])

        return self.read(work, actor=acting)

    def update_profile(
        self,
        user_id: UUID,
        *,
        actor: Actor,
        username: str | Unset = UNSET,
        name: str | Unset | None = UNSET,
        phone: str | Unset | None = UNSET,
        body_metrics: BodyMetrics | Mapping[str, Any] | Unset = UNSET,
        location: Location | Mapping[str, Any] | Unset | None = UNSET,
        appearance: Appearance | Mapping[str, Any] | Unset | None = UNSET,
        style_preferences: StylePreferences | Mapping[str, Any] | Unset | None = UNSET,
        consents: Consents | Mapping[str, Any] | Unset = UNSET,
    ) -> UserProfile:
        """Change the given fields (``None`` clears an optional one); others stay as they are.

        A new phone number is unverified until confirmed again.
        """
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.update", user_id=uid)
        changes: dict[str, Any] = {}
        if username is not UNSET:
            changes["username"] = normalize_username(username)
        if body_metrics is not UNSET:
            changes["body_metrics"] = coerce(body_metrics, BodyMetrics, "body_metrics")
        if location is not UNSET:
            changes["location"] = None if location is None else coerce(location, Location, "location")
        if appearance is not UNSET:
            changes["appearance"] = (
                None if appearance is None else coerce(appearance, Appearance, "appearance")
            )
        if style_preferences is not UNSET:
            changes["style_preferences"] = (
                None
                if style_preferences is None
                else coerce(style_preferences, StylePreferences, "style_preferences")
            )
        if consents is not UNSET:
            agreed = Consents.from_mapping(consents)
            require(
                agreed.terms,
                "consents.terms",
                "cannot be withdrawn from an account; erase the account instead",
            )
            changes["consents"] = agreed
        clean_name = UNSET if name is UNSET else _text(name, "name", 200, optional=True)
        clean_phone = UNSET if phone is UNSET else _phone(phone)

        def work(uow: UnitOfWork) -> UserProfile:
            profile = self.live_shopper(uow, uid)
            if "username" in changes and changes["username"].lower() != profile.username.lower():
                taken = uow.user_profiles.where(username=changes["username"])
                if any(u.id != uid for u in taken):
                    raise Conflict("this username is taken")
            plaintexts: dict[str, Any] = {}
            if clean_name is not UNSET:
                plaintexts["name"] = clean_name
            if clean_phone is not UNSET:
                plaintexts["phone"] = clean_phone
            sealed: dict[str, Any] = self.vault.seal_fields(uow, uid, UserProfile, uid, **plaintexts)
            if clean_phone is not UNSET:
                sealed["phone_verified_at"] = None
            updated = attrs.evolve(profile, **changes, **sealed, updated_at=self.now())
            uow.user_profiles.update(updated)
            return updated

        return self._shown(self.transaction(work, actor=acting), acting)

    def change_email(self, user_id: UUID, new_email: str, *, actor: Actor) -> UserProfile:
        """Change the login email; it must be verified again."""
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.update", user_id=uid)
        normalized = normalize_email(new_email)

        def work(uow: UnitOfWork) -> UserProfile:
            profile = self.live_shopper(uow, uid)
            if any(u.id != uid for u in uow.user_profiles.where(email=normalized)):
                raise Conflict("an account with this email already exists")
            updated = attrs.evolve(profile, email=normalized, email_verified_at=None, updated_at=self.now())
            uow.user_profiles.update(updated)
            return updated

        return self._shown(self.transaction(work, actor=acting), acting)

    # ------------------------------------------------------------------ addresses

    def add_address(
        self,
        user_id: UUID,
        *,
        type: AddressType | str,
        line1: str,
        city: str,
        postal_code: str,
        country: str,
        line2: str | None = None,
        state: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        make_default_billing: bool = False,
        actor: Actor,
    ) -> Address:
        """Add an address (every line sealed); optionally make it the default billing address."""
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.manage_addresses", user_id=uid)
        kind = parse_enum(AddressType, type, "type")
        lines = {
            "line1": _text(line1, "line1", 200),
            "line2": _text(line2, "line2", 200, optional=True),
            "city": _text(city, "city", 100),
            "state": _text(state, "state", 100, optional=True),
            "postal_code": normalize_postal_code(_text(postal_code, "postal_code", 20) or ""),
            "country": _country(country),
        }
        extra = None if metadata is None else json_object_from(metadata, "metadata")

        def work(uow: UnitOfWork) -> Address:
            profile = self.live_shopper(uow, uid)  # serialised with erasure: no address outlives it
            address_id = self._ctx.ids.new_id()
            now = self.now()
            sealed: dict[str, Any] = self.vault.seal_fields(uow, uid, Address, address_id, **lines)
            address = Address(
                id=address_id,
                user_id=uid,
                type=kind,
                **self.vault.blind_indexes(
                    Address, postal_code=str(lines["postal_code"]), country=str(lines["country"])
                ),
                metadata=extra,
                created_at=now,
                updated_at=now,
                **sealed,
            )
            uow.addresses.add(address)
            if make_default_billing:
                uow.user_profiles.update(attrs.evolve(profile, billing_address_id=address_id, updated_at=now))
            return address

        return self.transaction(work, actor=acting)

    def address_details(self, address_id: UUID, *, actor: Actor) -> AddressDetails:
        """An address with its lines opened, for its owner or staff."""
        aid = as_uuid(address_id, "address_id")

        def work(uow: UnitOfWork) -> AddressDetails:
            address = uow.addresses.get(aid)
            authorize(actor, "accounts.read", user_id=address.user_id)
            return self._open_address(uow, address)

        return self.read(work, actor=actor)

    def _open_address(self, uow: UnitOfWork, address: Address) -> AddressDetails:
        from fittwin_core.domain.keys import PLATFORM_KEY_OWNER

        opened = self.vault.open_fields(uow, address.user_id or PLATFORM_KEY_OWNER, address)
        return AddressDetails(
            address,
            opened["line1"] or "",
            opened["line2"],
            opened["city"] or "",
            opened["state"],
            opened["postal_code"] or "",
            opened["country"] or "",
        )

    def addresses(
        self,
        user_id: UUID,
        *,
        actor: Actor,
        include_deleted: bool = False,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[Address]:
        """A page of the shopper's addresses, oldest first (removed ones only when asked)."""
        uid = as_uuid(user_id, "user_id")
        window = PageRequest.of(limit, after)
        acting = actor
        authorize(acting, "accounts.read", user_id=uid)

        def work(uow: UnitOfWork) -> Page[Address]:
            if include_deleted:
                return window.read(uow.addresses, user_id=uid)
            return window.read(uow.addresses, user_id=uid, deleted_at=None)

        return self.read(work, actor=acting)

    def find_addresses(
        self,
        *,
        country: str,
        postal_code: str,
        actor: Actor,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> Page[Address]:
        """A page of the live addresses in ``country`` with ``postal_code`` (staff only), found
        through the blind indexes and confirmed by decrypting (so an index collision never
        returns a wrong row: such a page holds fewer than ``limit`` and still has a ``next``)."""
        window = PageRequest.of(limit, after)
        authorize(actor, "accounts.find_addresses")
        wanted_country, wanted_code = _country(country), normalize_postal_code(postal_code)

        def work(uow: UnitOfWork) -> Page[Address]:
            candidates = window.read(
                uow.addresses,
                **self.vault.blind_indexes(Address, country=wanted_country, postal_code=wanted_code),
                deleted_at=None,
            )
            found = []
            for address in candidates.items:
                opened = self._open_address(uow, address)
                if opened.country == wanted_country and opened.postal_code == wanted_code:
                    found.append(address)
            return Page(tuple(found), candidates.next)

        return self.read(work, actor=actor)

    def remove_address(self, address_id: UUID, *, actor: Actor) -> Address:
        """Soft-delete an address (orders keep pointing at it); clears it as default billing."""
        aid = as_uuid(address_id, "address_id")

        def work(uow: UnitOfWork) -> Address:
            owner = uow.addresses.get(aid).user_id
            # The shopper's row before the address, in the order erasure takes them.
            profile = None if owner is None else uow.user_profiles.lock(owner)
            address = uow.addresses.lock(aid)
            authorize(actor, "accounts.manage_addresses", user_id=address.user_id)
            if address.deleted_at is not None:
                return address
            now = self.now()
            removed = attrs.evolve(address, deleted_at=now, updated_at=now)
            uow.addresses.update(removed)
            if profile is not None and profile.billing_address_id == aid:
                uow.user_profiles.update(attrs.evolve(profile, billing_address_id=None, updated_at=now))
            return removed

        return self.transaction(work, actor=actor)

    def set_billing_address(self, user_id: UUID, address_id: UUID | None, *, actor: Actor) -> UserProfile:
        """Make one of the shopper's live addresses the default billing address (``None`` clears)."""
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.manage_addresses", user_id=uid)
        aid = None if address_id is None else as_uuid(address_id, "address_id")

        def work(uow: UnitOfWork) -> UserProfile:
            profile = self.live_shopper(uow, uid)
            if aid is not None:
                own_live_address(uow, uid, aid, "address_id")
            updated = attrs.evolve(profile, billing_address_id=aid, updated_at=self.now())
            uow.user_profiles.update(updated)
            return updated

        return self._shown(self.transaction(work, actor=acting), acting)

    # ------------------------------------------------------------------ payment methods

    def add_payment_method(
        self,
        user_id: UUID,
        psp_token_id: str,
        *,
        brand: str | None = None,
        last4: str | None = None,
        expires_at: date | None = None,
        billing_address_id: UUID | None = None,
        make_default: bool = False,
        actor: Actor,
    ) -> PaymentMethod:
        """Record a tokenised payment method (the token comes from the payment provider).

        The first payment method becomes the default, as does any added with ``make_default``.
        """
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.manage_payment_methods", user_id=uid)
        token = _text(psp_token_id, "psp_token_id", 255)
        address_id = None if billing_address_id is None else as_uuid(billing_address_id, "billing_address_id")

        def work(uow: UnitOfWork) -> PaymentMethod:
            profile = self.live_shopper(uow, uid)
            if address_id is not None:
                own_live_address(uow, uid, address_id, "billing_address_id")
            if uow.payment_methods.where(psp_token_id=token, limit=1):
                raise Conflict("this payment method is already registered")
            now = self.now()
            method = PaymentMethod(
                id=self._ctx.ids.new_id(),
                user_id=uid,
                psp_token_id=str(token),
                brand=brand,
                last4=last4,
                expires_at=expires_at,
                billing_address_id=address_id,
                created_at=now,
                updated_at=now,
            )
            uow.payment_methods.add(method)
            if make_default or profile.default_payment_method_id is None:
                uow.user_profiles.update(
                    attrs.evolve(profile, default_payment_method_id=method.id, updated_at=now)
                )
            return method

        return self.transaction(work, actor=acting)

    def payment_methods(
        self, user_id: UUID, *, actor: Actor, limit: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Page[PaymentMethod]:
        """A page of the shopper's payment methods, oldest first."""
        uid = as_uuid(user_id, "user_id")
        window = PageRequest.of(limit, after)
        acting = actor
        authorize(acting, "accounts.read", user_id=uid)
        return self.read(lambda uow: window.read(uow.payment_methods, user_id=uid), actor=acting)

    def set_default_payment_method(
        self, user_id: UUID, payment_method_id: UUID | None, *, actor: Actor
    ) -> UserProfile:
        """Make one of the shopper's payment methods the default (``None`` clears)."""
        uid = as_uuid(user_id, "user_id")
        acting = actor
        authorize(acting, "accounts.manage_payment_methods", user_id=uid)
        pm_id = None if payment_method_id is None else as_uuid(payment_method_id, "payment_method_id")

        def work(uow: UnitOfWork) -> UserProfile:
            profile = self.live_shopper(uow, uid)
            if pm_id is not None:
                own_payment_method(uow, uid, pm_id)
            updated = attrs.evolve(profile, default_payment_method_id=pm_id, updated_at=self.now())
            uow.user_profiles.update(updated)
            return updated

        return self._shown(self.transaction(work, actor=acting), acting)

    def remove_payment_method(self, payment_method_id: UUID, *, actor: Actor) -> None:
        """Delete a payment method (clearing it as the default first)."""
        pm_id = as_uuid(payment_method_id, "payment_method_id")

        def work(uow: UnitOfWork) -> None:
            # The shopper's row before the method, in the order erasure takes them.
            profile = uow.user_profiles.lock(uow.payment_methods.get(pm_id).user_id)
            method = uow.payment_methods.lock(pm_id)
            authorize(actor, "accounts.manage_payment_methods", user_id=method.user_id)
            if profile.default_payment_method_id == pm_id:
                uow.user_profiles.update(
                    attrs.evolve(profile, default_payment_method_id=None, updated_at=self.now())
                )
            uow.payment_methods.delete(pm_id)

        self.transaction(work, actor=actor)

    # ------------------------------------------------------------------ helpers

    def _check_password(self, password: object, field: str = "password") -> None:
        settings = self._ctx.settings
        if not isinstance(password, str):
            raise ValidationError(field, "must be a string")
        require(
            len(password) >= settings.password_min_length,
            field,
            f"must be at least {settings.password_min_length} characters",
        )
        require(
            len(password) <= settings.password_max_length,
            field,
            f"must be at most {settings.password_max_length} characters",
        )

    def _verify_dummy(self, password: str) -> None:
        """Spend what verifying a password at the current parameters costs."""
        if self._dummy_hash is None:  # making the dummy costs as much as verifying it would
            self._dummy_hash = self._ctx.hasher.hash(str(self._ctx.ids.new_token()))
            return
        self._ctx.hasher.verify(self._dummy_hash, password)

    def _shown(self, profile: UserProfile, actor: Actor) -> UserProfile:
        """``profile`` as ``actor`` may see it: the password hash only for staff."""
        shows_hash = allowed(actor, "accounts.read_password_hash", user_id=profile.id)
        return profile if shows_hash else _redacted(profile)


def _redacted(profile: UserProfile) -> UserProfile:
    """``profile`` without its password hash (``"<redacted>"`` in its place)."""
    return attrs.evolve(profile, password_hash=REDACTED)


__all__ = ["AccountDetails", "Accounts", "AddressDetails", "normalize_postal_code"]
_ = datetime
