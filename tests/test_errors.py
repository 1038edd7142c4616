"""Every FitTwinError has a stable code, an HTTP status and a retry flag, as docs/errors.md says."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from fittwin_core.domain import errors
from fittwin_core.domain.errors import FitTwinError

PAGE = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \| (\d{3}) \| (yes|no) \|", re.M)


def documented() -> dict[str, tuple[str, int, bool]]:
    """The table of docs/errors.md: class name → (code, status, retryable)."""
    return {
        name: (code, int(status), retryable == "yes")
        for name, code, status, retryable in ROW.findall(PAGE.read_text(encoding="utf-8"))
    }


def error_classes() -> list[type[FitTwinError]]:
    """FitTwinError and every subclass defined in fittwin_core.domain.errors."""
    found, todo = [], [FitTwinError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors.__name__:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_the_documented_table_matches_the_classes() -> None:
    table = documented()
    classes = {cls.__name__: (cls.code, cls.http_status, cls.retryable) for cls in error_classes()}
    assert table == classes
    assert set(errors.__all__) >= set(classes)


def test_codes_are_unique_snake_case_and_refined_by_subclasses() -> None:
    codes = [cls.code for cls in error_classes()]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in codes)


# What a host needs, written down independently of the classes: the retryable errors and
# the status each answers with.
RETRYABLE = {
    "TransientConflict": 503,
    "IdempotencyKeyInUse": 409,
    "StoreUnavailable": 503,
    "PaymentProviderUnavailable": 502,
    "WebhookDeliveryFailed": 502,  # a brand endpoint down: the outbox retries
}


def test_exactly_the_transient_failures_are_retryable() -> None:
    assert {cls.__name__: cls.http_status for cls in error_classes() if cls.retryable} == RETRYABLE


@pytest.mark.parametrize(
    "error",
    [
        errors.ValidationError("email", "must be an email address"),
        errors.NotFound("orders", 7),
        errors.IdempotencyKeyInUse("a request with this idempotency key is in progress"),
        errors.IdempotencyKeyReused("this idempotency key was used for a different order"),
        errors.PaymentProviderUnavailable("payment provider could not be reached"),
        errors.WrongRegion("eu", "us"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_pickle_and_describe_themselves(error: FitTwinError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    problem = error.as_problem()
    assert problem["code"] == error.code and problem["status"] == error.http_status
    assert problem["detail"] == str(error) and problem["retryable"] is error.retryable
    assert ("field" in problem) is isinstance(error, errors.ValidationError)
