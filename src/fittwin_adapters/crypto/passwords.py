"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import dataclasses

import argon2
from argon2 import profiles
from argon2.exceptions import Argon2Error, InvalidHashError

from fittwin_core.domain.errors import ConfigurationError, ValidationError

OWASP_MIN_MEMORY_COST = 19_456
"""OWASP's minimum argon2id memory cost: 19 MiB, in KiB."""
OWASP_MIN_TIME_COST = 2
"""OWASP's minimum number of passes at that memory cost."""
OWASP_MIN_PARALLELISM = 1
"""OWASP's minimum degree of parallelism."""

_DEFAULT = profiles.RFC_9106_LOW_MEMORY


def _check_parameter(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"argon2id {name} must be an integer")
    if value < minimum:
        raise ConfigurationError(
            f"argon2id {name} must be at least {minimum} (OWASP minimum: "
            f"m={OWASP_MIN_MEMORY_COST} KiB, t={OWASP_MIN_TIME_COST}, p={OWASP_MIN_PARALLELISM})"
        )
    return value


class Argon2PasswordHasher:
    """Hash and verify passwords with argon2id; implements ``PasswordHasher``.

    The defaults are argon2-cffi's RFC 9106 low-memory profile (64 MiB, 3 passes, 4 lanes).
    Parameters weaker than OWASP's minimum (19 MiB, 2 passes, 1 lane) are refused with
    :class:`ConfigurationError`; use :meth:`owasp_minimum` where speed matters more than
    margin (test suites, demos).
    """

    __slots__ = ("_hasher",)

    def __init__(
        self,
        *,
        time_cost: int = _DEFAULT.time_cost,
        memory_cost: int = _DEFAULT.memory_cost,
        parallelism: int = _DEFAULT.parallelism,
    ) -> None:
        time_cost = _check_parameter("time_cost", time_cost, OWASP_MIN_TIME_COST)
        memory_cost = _check_parameter("memory_cost", memory_cost, OWASP_MIN_MEMORY_COST)
        parallelism = _check_parameter("parallelism", parallelism, OWASP_MIN_PARALLELISM)
        if memory_cost < 8 * parallelism:
            raise ConfigurationError("argon2id memory_cost must be at least 8 KiB per lane of parallelism")
        parameters = dataclasses.replace(
            _DEFAULT, time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)

    @classmethod
    def owasp_minimum(cls) -> Argon2PasswordHasher:
        """The fastest hasher allowed (m=19456 KiB, t=2, p=1): for test suites and demos."""
        return cls(
            time_cost=OWASP_MIN_TIME_COST,
            memory_cost=OWASP_MIN_MEMORY_COST,
            parallelism=OWASP_MIN_PARALLELISM,
        )

    @property
    def time_cost(self) -> int:
        """Number of passes over the memory."""
        return self._hasher.time_cost

    @property
    def memory_cost(self) -> int:
        """Memory used per hash, in KiB."""
        return self._hasher.memory_cost

    @property
    def parallelism(self) -> int:
        """Number of lanes."""
        return self._hasher.parallelism

    def hash(self, password: str) -> str:
        """Hash ``password`` with a fresh random salt; the result encodes the parameters."""
        if not isinstance(password, str):
            raise ValidationError("password", "must be a string")
        try:
            encoded = password.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("password", "must be valid Unicode text") from None
        try:
            return self._hasher.hash(encoded)
        except Argon2Error as exc:  # libargon2 failed (e.g. out of memory); never echoes the input
            raise ConfigurationError(f"argon2id could not hash: {exc}") from None

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``; ``False`` for a mismatch or a malformed hash."""
        if not isinstance(password_hash, str) or not isinstance(password, str):
            return False
        try:
            return self._hasher.verify(password_hash, password.encode("utf-8"))
        except (Argon2Error, ValueError):  # mismatch, malformed hash, unencodable text
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether ``password_hash`` was made with other parameters than this hasher's
        (``True`` for a hash it cannot read): rehash it after a successful login."""
        if not isinstance(password_hash, str):
            return True
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(time_cost={self.time_cost}, "
            f"memory_cost={self.memory_cost}, parallelism={self.parallelism})"
        )


__all__ = [
    "OWASP_MIN_MEMORY_COST",
    "OWASP_MIN_PARALLELISM",
    "OWASP_MIN_TIME_COST",
    "Argon2PasswordHasher",
]
