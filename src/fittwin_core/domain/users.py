"""Shoppers: profiles, body metrics, addresses and payment methods.

Personal data is *sealed*: the columns the data model marks ENCRYPTED (name, phone, address
lines) hold envelope ciphertext produced through the ``FieldCipher`` port, never plaintext.
The validators refuse plaintext there, so a profile cannot be stored with a clear-text name
by mistake, and reprs show only whether such a field is set.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

import attrs
from email_validator import EmailNotValidError, validate_email

from fittwin_core.domain import rules
from fittwin_core.domain.errors import ValidationError
from fittwin_core.domain.rules import JsonMap, redacted

# ----------------------------------------------------------------------------- sealed values

SEALED_PATTERN = re.compile(r"fte1\.[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{16,}")
"""Envelope ciphertext as stored: ``fte1.<data key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``."""


def _sealed(field: str, value: Any) -> None:
    if not isinstance(value, str) or SEALED_PATTERN.fullmatch(value) is None:
        raise ValidationError(field, "must be sealed ciphertext (fte1.<key id>.<payload>), not plaintext")


sealed = rules.Rule(_sealed)
"""attrs validator for ENCRYPTED columns."""


def sealed_field(*, optional: bool = False) -> Any:
    """An attrs field for an ENCRYPTED column (redacted in reprs)."""
    if optional:
        return attrs.field(default=None, validator=rules.optional(sealed), repr=redacted)
    return attrs.field(validator=sealed, repr=redacted)


# ----------------------------------------------------------------------------- email, username

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAX_EMAIL_LENGTH = 254
_EMAIL_RULE = "must be an email address like name@example.com"
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
"""Controls, format characters (zero-width, bidi overrides), surrogates, private use,
unassigned code points and separators: nothing a person can see or type on purpose."""
_SCRIPT_SETS = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
"""The script mixes UTS #39 allows in a "highly restrictive" identifier; any other mix of two
scripts in one domain label is refused."""


def _scripts(label: str) -> frozenset[str]:
    """The scripts of the letters of ``label``, by the first word of each letter's Unicode name
    (``LATIN SMALL LETTER U WITH DIAERESIS`` → ``LATIN``); marks, digits and hyphens have none."""
    return frozenset(
        unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
        for ch in label
        if unicodedata.category(ch).startswith("L")
    )


def _mixes_scripts(domain: str) -> bool:
    for label in domain.split("."):
        scripts = _scripts(label)
        if len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS):
            return True
    return False


def normalize_email(raw: str, field: str = "email") -> str:
    """The canonical form of an email address, so that look-alikes cannot coexist.

    The address is trimmed, NFKC-normalised (fullwidth ``ａ`` becomes ``a``, ligatures split)
    and case-folded, then checked by ``email-validator``. Refused: invisible, control and
    direction characters (zero-width space, right-to-left override); anything but ASCII before
    the ``@`` (Cyrillic ``а`` would pass for Latin ``a``); a domain label mixing scripts. An
    internationalised domain is kept in its ASCII form (``münchen.de`` → ``xn--mnchen-3ya.de``),
    so every stored address is ASCII and shows what it is.
    """
    if not isinstance(raw, str):
        raise ValidationError(field, "must be a string")
    rules.check_text(field, raw)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw.strip()).casefold())
    if any(unicodedata.category(ch) in _INVISIBLE for ch in folded):
        raise ValidationError(field, "must not contain invisible, control or direction characters")
    local, at, domain = folded.rpartition("@")
    if not at or not local:
        raise ValidationError(field, _EMAIL_RULE)
    if not local.isascii():
        raise ValidationError(field, "must use only ASCII characters before the @ (look-alikes are refused)")
    if not domain.isascii() and _mixes_scripts(domain):
        raise ValidationError(field, "must not mix scripts within a part of the domain")
    try:
        # The library's messages quote the offending characters: only our own rule goes on.
        value = validate_email(folded, check_deliverability=False, allow_smtputf8=False).ascii_email
    except EmailNotValidError:
        raise ValidationError(field, _EMAIL_RULE) from None
    if value is None:  # pragma: no cover — allow_smtputf8=False always gives an ASCII form
        raise ValidationError(field, _EMAIL_RULE)
    value = value.casefold()
    _check_email(field, value)
    return value


def _check_email(field: str, value: Any) -> None:
    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
        raise ValidationError(field, _EMAIL_RULE)
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValidationError(field, f"must be at most {MAX_EMAIL_LENGTH} characters")


def _normalized_email(field: str, value: Any) -> None:
    _check_email(field, value)
    if unicodedata.normalize("NFC", value.strip()).casefold() != value:
        raise ValidationError(field, "must be normalised (trimmed and case-folded)")


email = rules.Rule(_normalized_email)
"""attrs validator: a normalised email address (see :func:`normalize_email`)."""

USERNAME_MAX = 32
username = rules.text(
    max_len=USERNAME_MAX,
    pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    rule="may contain letters, digits, '_', '.' and '-', starting with a letter or digit",
)
"""attrs validator: 1–32 ASCII characters; unique case-insensitively."""


def normalize_username(raw: object, field: str = "username") -> str:
    """A username in canonical form: NFKC-normalised (fullwidth ``ａda`` is ``ada``, and then
    taken if ``ada`` is) and checked against :data:`username`, whose ASCII-only pattern refuses
    look-alike letters from other scripts and invisible characters."""
    if not isinstance(raw, str):
        raise ValidationError(field, "must be a string")
    rules.check_text(field, raw)
    value = unicodedata.normalize("NFKC", raw)
    username.check(field, value)
    return value


country_code = rules.text(
    min_len=2, max_len=2, pattern=r"[A-Z]{2}", rule="must be an ISO 3166-1 alpha-2 code"
)
region_name = rules.text(max_len=32, pattern=r"[a-z0-9][a-z0-9-]*", rule="must be a lower-case region name")

DEFAULT_REGION = "default"
"""The region of users on a single-region deployment."""


# ----------------------------------------------------------------------------- body metrics


class Sex(StrEnum):
    """Biological sex, used only to pick anthropometric regressions when estimating."""

    FEMALE = "female"
    MALE = "male"


MEASUREMENT_RANGES: dict[str, tuple[float, float]] = {
    "chest_cm": (30.0, 200.0),
    "waist_cm": (25.0, 200.0),
    "hip_cm": (30.0, 200.0),
    "neck_cm": (15.0, 70.0),
    "shoulder_cm": (15.0, 80.0),
    "sleeve_cm": (15.0, 110.0),
    "inseam_cm": (15.0, 120.0),
    "thigh_cm": (15.0, 110.0),
    "torso_length_cm": (20.0, 100.0),
    "foot_length_cm": (8.0, 35.0),
}
"""Optional body measurements (girths and lengths, in cm) and their human ranges."""

HEIGHT_RANGE_CM = (50.0, 260.0)
WEIGHT_RANGE_KG = (3.0, 400.0)

CM_PER_INCH = 2.54
KG_PER_POUND = 0.45359237


def _measurement(name: str) -> Any:
    low, high = MEASUREMENT_RANGES[name]
    return attrs.field(default=None, validator=rules.optional(rules.number(ge=low, le=high, unit="cm")))


def _known_measurements(field: str, value: Any) -> None:
    if not isinstance(value, frozenset) or not all(isinstance(v, str) for v in value):
        raise ValidationError(field, "must be a set of measurement names")
    unknown = value - MEASUREMENT_RANGES.keys()
    if unknown:
        raise ValidationError(field, f"names unknown measurements: {', '.join(sorted(unknown))}")


def _to_frozenset(value: Any) -> Any:
    if isinstance(value, list | tuple | set):
        return frozenset(value)
    return value


@attrs.frozen(kw_only=True)
class BodyMetrics:
    """A shopper's body in SI units: height and weight, plus optional girths and lengths in cm.

    Each optional measurement is *measured* unless its name is in ``estimated`` (filled in by
    the fit estimator, with a larger uncertainty). Use :meth:`from_imperial` for inches and
    pounds.
    """

    height_cm: float = attrs.field(
        validator=rules.number(ge=HEIGHT_RANGE_CM[0], le=HEIGHT_RANGE_CM[1], unit="cm")
    )
    weight_kg: float = attrs.field(
        validator=rules.number(ge=WEIGHT_RANGE_KG[0], le=WEIGHT_RANGE_KG[1], unit="kg")
    )
    sex: Sex | None = attrs.field(default=None, validator=rules.optional(rules.member_of(Sex)))
    chest_cm: float | None = _measurement("chest_cm")
    waist_cm: float | None = _measurement("waist_cm")
    hip_cm: float | None = _measurement("hip_cm")
    neck_cm: float | None = _measurement("neck_cm")
    shoulder_cm: float | None = _measurement("shoulder_cm")
    sleeve_cm: float | None = _measurement("sleeve_cm")
    inseam_cm: float | None = _measurement("inseam_cm")
    thigh_cm: float | None = _measurement("thigh_cm")
    torso_length_cm: float | None = _measurement("torso_length_cm")
    foot_length_cm: float | None = _measurement("foot_length_cm")
    estimated: frozenset[str] = attrs.field(
        factory=frozenset, converter=_to_frozenset, validator=rules.Rule(_known_measurements)
    )

    MEASUREMENTS: ClassVar[tuple[str, ...]] = tuple(MEASUREMENT_RANGES)

    def __attrs_post_init__(self) -> None:
        missing = sorted(name for name in self.estimated if getattr(self, name) is None)
        if missing:
            raise ValidationError("estimated", f"names measurements that are not set: {', '.join(missing)}")

    @classmethod
    def from_imperial(
        cls,
        *,
        height_in: float,
        weight_lb: float,
        sex: Sex | str | None = None,
        estimated: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        **measurements_in: float | None,
    ) -> BodyMetrics:
        """Build from inches and pounds: ``from_imperial(height_in=70, weight_lb=160, chest_in=40)``.

        Each ``<name>_in`` keyword becomes ``<name>_cm`` (1 in = 2.54 cm, 1 lb = 0.45359237 kg).
        """
        converted: dict[str, float | None] = {}
        for key, value in measurements_in.items():
            if not key.endswith("_in") or f"{key[:-3]}_cm" not in MEASUREMENT_RANGES:
                raise ValidationError(key, "is not a known measurement (use e.g. chest_in, waist_in)")
            converted[f"{key[:-3]}_cm"] = None if value is None else inches_to_cm(value, key)
        return cls(
            height_cm=inches_to_cm(height_in, "height_in"),
            weight_kg=pounds_to_kg(weight_lb, "weight_lb"),
            sex=None if sex is None else rules.parse_enum(Sex, sex, "sex"),
            estimated=frozenset(f"{name[:-3]}_cm" if name.endswith("_in") else name for name in estimated),
            **converted,
        )

    def measurements(self) -> dict[str, float]:
        """The optional measurements that are set, by name (``{"chest_cm": 96.0, ...}``)."""
        return {name: value for name in MEASUREMENT_RANGES if (value := getattr(self, name)) is not None}

    def is_estimated(self, name: str) -> bool:
        """Whether measurement ``name`` is an estimate rather than measured."""
        return name in self.estimated


def _finite_number(field: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:  # noqa: PLR0124
        raise ValidationError(field, "must be a number")
    return float(value)


def inches_to_cm(value: float, field: str = "inches") -> float:
    """Inches to centimetres, rounded to 1 µm to keep float noise out of stored values."""
    return round(_finite_number(field, value) * CM_PER_INCH, 4)


def pounds_to_kg(value: float, field: str = "pounds") -> float:
    """Pounds to kilograms, rounded to 0.1 g."""
    return round(_finite_number(field, value) * KG_PER_POUND, 4)


# ----------------------------------------------------------------------------- profile JSON


@attrs.frozen(kw_only=True)
class Appearance:
    """How a shopper looks, for avatar rendering (``hairColor``, ``eyeColor``, ``skinTone``)."""

    hair_color: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=40)), metadata={"json": "hairColor"}
    )
    eye_color: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=40)), metadata={"json": "eyeColor"}
    )
    skin_tone: str | None = attrs.field(
        default=None, validator=rules.optional(rules.text(max_len=40)), metadata={"json": "skinTone"}
    )


class FitPreference(StrEnum):
    """How closely a shopper likes clothes to fit; shifts the ease the recommender allows."""

    SLIM = "slim"
    REGULAR = "regular"
    RELAXED = "relaxed"


class TorsoLength(StrEnum):
    """Torso-length preference, used by length zones."""

    SHORT = "short"
    REGULAR = "regular"
    LONG = "long"


@attrs.frozen(kw_only=True)
class StylePreferences:
    """Style keywords, fit preference (``fitPrefs``) and torso-length preference (``torsoLengthPref``)."""

    keywords: tuple[str, ...] = attrs.field(
        default=(), converter=rules.to_tuple, validator=rules.sequence_of(rules.text(max_len=40))
    )
    fit_prefs: FitPreference = attrs.field(
        default=FitPreference.REGULAR,
        validator=rules.member_of(FitPreference),
        metadata={"json": "fitPrefs"},
    )
    torso_length_pref: TorsoLength = attrs.field(
        default=TorsoLength.REGULAR,
        validator=rules.member_of(TorsoLength),
        metadata={"json": "torsoLengthPref"},
    )


@attrs.frozen(kw_only=True)
class Consents:
    """What the shopper agreed to. ``terms`` must be true to register."""

    terms: bool = attrs.field(validator=rules.boolean)
    marketing: bool = attrs.field(default=False, validator=rules.boolean)
    comms: bool = attrs.field(default=False, validator=rules.boolean)

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any] | Consents) -> Consents:
        """Accept a ``Consents`` or a ``{"terms": True, ...}`` mapping (unknown keys refused)."""
        if isinstance(value, Consents):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("consents", "must be a mapping with at least 'terms'")
        unknown = set(value) - {"terms", "marketing", "comms"}
        if unknown:
            raise ValidationError("consents", f"has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        if "terms" not in value:
            raise ValidationError("consents.terms", "is required")
        return cls(**value)


@attrs.frozen(kw_only=True)
class Location:
    """Where a shopper is: ISO country code and an optional region/state name."""

    country: str = attrs.field(validator=country_code)
    region: str | None = attrs.field(default=None, validator=rules.optional(rules.text(max_len=100)))


# ----------------------------------------------------------------------------- entities


@attrs.frozen(kw_only=True)
class UserProfile:
    """A shopper account (``user_profiles``). ``name`` and ``phone`` are sealed ciphertext.

    ``region`` says which regional store and object-store location hold the shopper's data.
    """

    id: UUID = attrs.field(validator=rules.uuid)
    email: str = attrs.field(validator=email, repr=redacted)
    password_hash: str = attrs.field(validator=rules.text(max_len=512), repr=redacted)
    username: str = attrs.field(repr=redacted, validator=username)
    body_metrics: BodyMetrics | None = attrs.field(
        validator=rules.optional(rules.instance_of(BodyMetrics)), repr=redacted
    )
    """Required to register; ``None`` only once the account was erased."""
    consents: Consents = attrs.field(repr=redacted, validator=rules.instance_of(Consents))
    region: str = attrs.field(default=DEFAULT_REGION, validator=region_name)
    email_verified_at: datetime | None = attrs.field(
        default=None, validator=rules.optional(rules.aware_datetime)
    )
    name: str | None = sealed_field(optional=True)
    phone: str | None = sealed_field(optional=True)
    phone_verified_at: datetime | None = attrs.field(
        default=None, validator=rules.optional(rules.aware_datetime)
    )
    location: Location | None = attrs.field(
        repr=redacted, default=None, validator=rules.optional(rules.instance_of(Location))
    )
    appearance: Appearance | None = attrs.field(
        default=None, validator=rules.optional(rules.instance_of(Appearance)), repr=redacted
    )
    style_preferences: StylePreferences | None = attrs.field(
        repr=redacted, default=None, validator=rules.optional(rules.instance_of(StylePreferences))
    )
    default_payment_method_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    billing_address_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    erased_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    """When a data-subject erasure anonymised the account (an addition to the data model)."""
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)

    @property
    def erased(self) -> bool:
        """Whether the account was erased (anonymised; it can no longer sign in)."""
        return self.erased_at is not None


class AddressType(StrEnum):
    """``addresses.type``."""

    BILLING = "billing"
    SHIPPING = "shipping"


BLIND_INDEX_PATTERN = r"[0-9a-f]{16,64}"
_blind_index = rules.optional(
    rules.text(max_len=64, pattern=BLIND_INDEX_PATTERN, rule="must be a hex blind index")
)


@attrs.frozen(kw_only=True)
class Address:
    """A postal address (``addresses``). Every line is sealed ciphertext; ``postal_code`` and
    ``country`` are also indexed through keyed blind indexes for equality search.

    Addresses with no ``user_id`` belong to brands and are sealed under the platform data key.
    """

    id: UUID = attrs.field(validator=rules.uuid)
    user_id: UUID | None = attrs.field(validator=rules.optional(rules.uuid))
    type: AddressType = attrs.field(validator=rules.member_of(AddressType))
    line1: str = sealed_field()
    line2: str | None = sealed_field(optional=True)
    city: str = sealed_field()
    state: str | None = sealed_field(optional=True)
    postal_code: str = sealed_field()
    country: str = sealed_field()
    postal_code_bidx: str | None = attrs.field(repr=redacted, default=None, validator=_blind_index)
    country_bidx: str | None = attrs.field(repr=redacted, default=None, validator=_blind_index)
    metadata: JsonMap | None = attrs.field(
        repr=redacted, default=None, converter=rules.to_json_map, validator=rules.optional(rules.json_object)
    )
    deleted_at: datetime | None = attrs.field(default=None, validator=rules.optional(rules.aware_datetime))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


@attrs.frozen(kw_only=True)
class PaymentMethod:
    """A tokenised card or wallet at the payment provider (``payment_methods``). Only display
    data (brand, last four digits, expiry) is kept; the PSP token is unique."""

    id: UUID = attrs.field(validator=rules.uuid)
    user_id: UUID = attrs.field(validator=rules.uuid)
    psp_token_id: str = attrs.field(validator=rules.text(max_len=255), repr=redacted)
    brand: str | None = attrs.field(
        repr=redacted, default=None, validator=rules.optional(rules.text(max_len=32))
    )
    last4: str | None = attrs.field(
        repr=redacted,
        default=None,
        validator=rules.optional(
            rules.text(min_len=4, max_len=4, pattern=r"[0-9]{4}", rule="must be 4 digits")
        ),
    )
    expires_at: date | None = attrs.field(
        repr=redacted, default=None, validator=rules.optional(rules.calendar_date)
    )
    billing_address_id: UUID | None = attrs.field(default=None, validator=rules.optional(rules.uuid))
    created_at: datetime = attrs.field(validator=rules.aware_datetime)
    updated_at: datetime = attrs.field(validator=rules.aware_datetime)


__all__ = [
    "BLIND_INDEX_PATTERN",
    "CM_PER_INCH",
    "DEFAULT_REGION",
    "KG_PER_POUND",
    "MEASUREMENT_RANGES",
    "SEALED_PATTERN",
    "Address",
    "AddressType",
    "Appearance",
    "BodyMetrics",
    "Consents",
    "FitPreference",
    "Location",
    "PaymentMethod",
    "Sex",
    "StylePreferences",
    "TorsoLength",
    "UserProfile",
    "email",
    "inches_to_cm",
    "normalize_email",
    "normalize_username",
    "pounds_to_kg",
    "sealed",
    "sealed_field",
]
