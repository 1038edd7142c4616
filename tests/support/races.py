"""Racing FitTwins: the factory each worker process builds its own FitTwin with."""

from __future__ import annotations

import secrets

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_core import FitTwin
from fittwin_core.testing.contract.races import RACE_SETTINGS


class RacerPayments(FakePayments):
    """Fake payments whose ids carry a token of their own: several processes' fakes create
    payments on one database, and ``pi_fake_000001`` from two of them would name two orders."""

    def __init__(self) -> None:
        super().__init__()
        self._token = secrets.token_hex(4)

    def _next_id(self, prefix: str) -> str:
        return f"{super()._next_id(prefix)}_{self._token}"


def racing_fittwin(url: str, keyring: str, objects: str) -> FitTwin:
    """A FitTwin on the store at ``url`` with the key ring (JSON) and object store every racer
    shares; payments are each process's own fakes (ids unique across processes)."""
    return connect(
        url,
        payments=RacerPayments(),
        keyring=LocalKeyRing.from_json(keyring),
        objects=objects,
        hasher=Argon2PasswordHasher.owasp_minimum(),
        settings=RACE_SETTINGS,
    )
