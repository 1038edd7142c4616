"""fittwin_core.webhooks: the Stripe signature scheme FitTwin uses for its brand webhooks."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import pytest
import stripe
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fittwin_core.domain.errors import AuthenticationFailed, ConfigurationError, ValidationError
from fittwin_core.webhooks import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    check_timestamp,
    parse_signature_header,
    sign_payload,
    verify_webhook,
)

SECRET = "whsec_brand_subscription"
T = 1_700_000_000
PAYLOAD = b'{"event":"order.paid","order_id":"0190"}'

payloads = st.binary(max_size=256)
secrets_ = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
timestamps = st.integers(min_value=0, max_value=4_000_000_000)


def oracle(payload: bytes, secret: str, timestamp: int) -> str:
    """The v1 signature computed straight from the scheme's definition."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def test_the_header_name_is_fittwins_own() -> None:
    assert SIGNATURE_HEADER == "FitTwin-Signature"


def test_a_signature_header_carries_the_timestamp_and_one_v1_signature() -> None:
    header = sign_payload(PAYLOAD, SECRET, T)
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert header == f"t={T},v1={oracle(PAYLOAD, SECRET, T)}"


@settings(max_examples=60)
@given(payload=payloads, secret=secrets_, timestamp=timestamps)
def test_signing_follows_the_definition(payload: bytes, secret: str, timestamp: int) -> None:
    assert (
        sign_payload(payload, secret, timestamp) == f"t={timestamp},v1={oracle(payload, secret, timestamp)}"
    )


@settings(max_examples=30)
@given(payload=st.text(max_size=120), secret=secrets_, timestamp=timestamps)
def test_signatures_are_the_ones_stripe_makes(payload: str, secret: str, timestamp: int) -> None:
    expected = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    assert sign_payload(payload.encode(), secret, timestamp) == expected


@settings(max_examples=60)
@given(payload=payloads, secret=secrets_, timestamp=timestamps)
def test_a_signed_payload_verifies_and_gives_back_its_timestamp(
    payload: bytes, secret: str, timestamp: int
) -> None:
    header = sign_payload(payload, secret, timestamp)
    assert verify_webhook(payload, header, secret, now=timestamp) == timestamp


@settings(max_examples=60)
@given(payload=payloads.filter(bool), data=st.data())
def test_any_change_to_the_payload_is_refused(payload: bytes, data: st.DataObject) -> None:
    header = sign_payload(payload, SECRET, T)
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    tampered = payload[:index] + bytes([payload[index] ^ flip]) + payload[index + 1 :]
    with pytest.raises(AuthenticationFailed):
        verify_webhook(tampered, header, SECRET, now=T)


# Real secrets are long random strings; short ones could occur in any message by chance.
long_secrets = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=16, max_size=40)


@settings(max_examples=40)
@given(secret=long_secrets, other=long_secrets)
def test_another_secret_is_refused_and_never_quoted(secret: str, other: str) -> None:
    assume(secret != other)
    header = sign_payload(PAYLOAD, other, T)
    with pytest.raises(AuthenticationFailed) as raised:
        verify_webhook(PAYLOAD, header, secret, now=T)
    assert secret not in str(raised.value)
    assert other not in str(raised.value)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    header = sign_payload(PAYLOAD, SECRET, T)
    forged = header.replace(f"t={T}", f"t={T + 10}")
    with pytest.raises(AuthenticationFailed, match="does not match"):
        verify_webhook(PAYLOAD, forged, SECRET, now=T + 10)


@pytest.mark.parametrize("offset", [0, 1, DEFAULT_TOLERANCE, -DEFAULT_TOLERANCE])
def test_timestamps_within_the_tolerance_are_accepted(offset: int) -> None:
    header = sign_payload(PAYLOAD, SECRET, T)
    assert verify_webhook(PAYLOAD, header, SECRET, now=T + offset) == T


@pytest.mark.parametrize("offset", [DEFAULT_TOLERANCE + 1, -(DEFAULT_TOLERANCE + 1), 86_400])
def test_timestamps_outside_the_tolerance_are_refused(offset: int) -> None:
    header = sign_payload(PAYLOAD, SECRET, T)
    with pytest.raises(AuthenticationFailed, match="tolerance"):
        verify_webhook(PAYLOAD, header, SECRET, now=T + offset)


def test_the_tolerance_is_configurable() -> None:
    header = sign_payload(PAYLOAD, SECRET, T)
    assert verify_webhook(PAYLOAD, header, SECRET, tolerance=3600, now=T + 3000) == T
    with pytest.raises(AuthenticationFailed):
        verify_webhook(PAYLOAD, header, SECRET, tolerance=10, now=T + 11)


@pytest.mark.parametrize("tolerance", [0, -1])
def test_a_tolerance_must_be_positive(tolerance: int) -> None:
    header = sign_payload(PAYLOAD, SECRET, T)
    with pytest.raises(ValidationError):
        verify_webhook(PAYLOAD, header, SECRET, tolerance=tolerance, now=T)


def test_now_defaults_to_the_current_time() -> None:
    fresh = sign_payload(PAYLOAD, SECRET, int(time.time()))
    assert verify_webhook(PAYLOAD, fresh, SECRET) > 0
    stale = sign_payload(PAYLOAD, SECRET, int(time.time()) - DEFAULT_TOLERANCE - 60)
    with pytest.raises(AuthenticationFailed):
        verify_webhook(PAYLOAD, stale, SECRET)


@settings(max_examples=40)
@given(
    wrong=st.lists(secrets_.filter(lambda s: s != SECRET), min_size=1, max_size=4),
    position=st.integers(min_value=0, max_value=4),
)
def test_one_matching_v1_among_several_is_enough(wrong: list[str], position: int) -> None:
    signatures = [oracle(PAYLOAD, other, T) for other in wrong]
    signatures.insert(min(position, len(signatures)), oracle(PAYLOAD, SECRET, T))
    header = ",".join([f"t={T}", *(f"v1={sig}" for sig in signatures)])
    assert verify_webhook(PAYLOAD, header, SECRET, now=T) == T


def test_no_matching_v1_among_several_is_refused() -> None:
    header = f"t={T},v1={oracle(PAYLOAD, 'a', T)},v1={oracle(PAYLOAD, 'b', T)}"
    with pytest.raises(AuthenticationFailed):
        verify_webhook(PAYLOAD, header, SECRET, now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "garbage",
        "t=1700000000",
        "v1=" + "0" * 64,
        "t=,v1=00",
        "t=-5,v1=00",
        "t=1.5,v1=00",
        "t=١٢٣,v1=00",  # non-ASCII digits
        "t=1,t=2,v1=00",
        "t=1700000000,v0=00",
        "t=1700000000,=00",
        "t=1700000000,v1=00,junk",
        "t=" + "9" * 40 + ",v1=00",
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(AuthenticationFailed):
        verify_webhook(PAYLOAD, header, SECRET, now=T)


def test_a_v1_value_that_is_not_ascii_is_refused_without_crashing() -> None:
    with pytest.raises(AuthenticationFailed):
        verify_webhook(PAYLOAD, f"t={T},v1=ünïcödé", SECRET, now=T)


def test_whitespace_around_entries_is_tolerated() -> None:
    header = sign_payload(PAYLOAD, SECRET, T).replace(",", ", ")
    assert verify_webhook(PAYLOAD, header, SECRET, now=T) == T


def test_a_text_payload_is_read_as_utf8() -> None:
    text = '{"brand":"Zoë"}'
    header = sign_payload(text.encode(), SECRET, T)
    assert verify_webhook(text, header, SECRET, now=T) == T


def test_stripes_library_accepts_fittwin_signatures() -> None:
    now = int(time.time())
    header = sign_payload(PAYLOAD, SECRET, now)
    assert stripe.WebhookSignature.verify_header(PAYLOAD, header, SECRET, tolerance=DEFAULT_TOLERANCE)


@pytest.mark.parametrize("secret", ["", "   "])
def test_an_empty_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        sign_payload(PAYLOAD, secret, T)
    with pytest.raises(ConfigurationError):
        verify_webhook(PAYLOAD, f"t={T},v1=00", secret, now=T)


def test_a_negative_timestamp_cannot_be_signed() -> None:
    with pytest.raises(ValidationError):
        sign_payload(PAYLOAD, SECRET, -1)


def test_parsing_keeps_every_v1_in_order_and_ignores_other_schemes() -> None:
    assert parse_signature_header("t=5,v0=zz,v1=aa,v1=bb") == (5, ["aa", "bb"])


def test_check_timestamp_refuses_both_directions() -> None:
    check_timestamp(T, now=T + 300)
    with pytest.raises(AuthenticationFailed):
        check_timestamp(T, now=T + 301)
    with pytest.raises(AuthenticationFailed):
        check_timestamp(T, now=T - 301)
