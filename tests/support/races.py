"""Racing FitTwins: the factory each worker process builds its own FitTwin with."""

from __future__ import annotations

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import Argon2PasswordHasher, LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_core import FitTwin
from fittwin_core.testing.contract.races import RACE_SETTINGS


def racing_fittwin(url: str, keyring: str, objects: str) -> FitTwin:
    """A FitTwin on the store at ``url`` with the key ring (JSON) and object store every racer
    shares; payments are each process's own fake (its ids are random, so unique across processes)."""
    return connect(
        url,
        payments=FakePayments(),
        keyring=LocalKeyRing.from_json(keyring),
        objects=objects,
        hasher=Argon2PasswordHasher.owasp_minimum(),
        settings=RACE_SETTINGS,
    )
