"""Regional shards: one :class:`~fittwin_core.FitTwin` per region, and a router in front of them.

Each region has its own store (one PostgreSQL per region) and its own object-store location;
a shopper's rows and media live only in their region (``user_profiles.region``). The
:class:`ShardRouter` hands out the FitTwin of a region or of a shopper; each regional FitTwin
refuses shoppers of other regions with :class:`~fittwin_core.domain.errors.WrongRegion`.
Build one with ``fittwin_adapters.connect(regions={...}, object_regions={...})``; see
``docs/privacy.md`` (Regions).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

from fittwin_core.domain import (
    Actor,
    AuthenticationFailed,
    BodyMetrics,
    ConfigurationError,
    Conflict,
    NotFound,
    UserProfile,
    ValidationError,
)
from fittwin_core.domain.users import normalize_email
from fittwin_core.services.base import as_uuid

if TYPE_CHECKING:
    from fittwin_core.app import FitTwin


class ShardRouter:
    """Route calls to the FitTwin of a region: ``router.for_user(user_id).orders.place(...)``.

    ``shards`` maps each region name to the FitTwin serving it (whose ``Settings.region`` must
    be that name). The router binds every shard's region directory to itself, so a shard asked
    about a shopper of another region says which (:class:`WrongRegion`). ``default_region``
    is where :meth:`register` puts shoppers when no ``region`` is given (none by default: the
    region must be named).
    """

    def __init__(self, shards: Mapping[str, FitTwin], *, default_region: str | None = None) -> None:
        if not isinstance(shards, Mapping) or not shards:
            raise ConfigurationError("a ShardRouter needs at least one {region: FitTwin}")
        for region, ft in shards.items():
            if ft.region != region:
                raise ConfigurationError(
                    f"the FitTwin for region {region!r} serves region {ft.region!r}: "
                    f"build it with Settings(region={region!r})"
                )
        if default_region is not None and default_region not in shards:
            raise ConfigurationError(f"default_region {default_region!r} has no shard")
        self._shards = dict(shards)
        self.default_region = default_region
        for ft in self._shards.values():
            ft.context.directory.bind(self._locate)

    # ------------------------------------------------------------------ routing

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions served, in the order given."""
        return tuple(self._shards)

    def for_region(self, region: str) -> FitTwin:
        """The FitTwin serving ``region`` (:class:`ValidationError` for a region not served)."""
        try:
            return self._shards[region]
        except (KeyError, TypeError):
            known = ", ".join(self._shards)
            raise ValidationError("region", f"is not a served region (served: {known})") from None

    def region_of(self, user_id: UUID) -> str:
        """The region holding the shopper ``user_id`` (:class:`NotFound` when no region does)."""
        uid = as_uuid(user_id, "user_id")
        region = self._locate(uid)
        if region is None:
            raise NotFound("user_profiles", uid)
        return region

    def for_user(self, user_id: UUID) -> FitTwin:
        """The FitTwin holding the shopper ``user_id``'s data."""
        return self._shards[self.region_of(user_id)]

    def __iter__(self) -> Iterator[tuple[str, FitTwin]]:
        """``(region, FitTwin)`` pairs, e.g. to run retention in every region."""
        return iter(self._shards.items())

    def __len__(self) -> int:
        return len(self._shards)

    # ------------------------------------------------------------------ routed calls

    def register(
        self,
        email: str,
        password: str,
        username: str,
        body_metrics: BodyMetrics | Mapping[str, Any],
        *,
        region: str | None = None,
        actor: Actor,
        **options: Any,
    ) -> UserProfile:
        """Register a shopper in ``region``'s store (see ``Accounts.register`` for the options
        and who may be ``actor``).

        The email must also be free in every other region (:class:`Conflict`), so that
        :meth:`authenticate` finds one account per email. That check is made before registering:
        two registrations racing in two regions can still both succeed, and usernames are
        unique within a region only. Hosts that need more keep a global index.
        """
        home = region if region is not None else self.default_region
        if home is None:
            raise ValidationError("region", "is required: name the shopper's region")
        target = self.for_region(home)
        normalized = normalize_email(email)
        for other, ft in self._shards.items():
            if other == home:
                continue
            with ft.context.store.unit_of_work() as uow:
                if uow.user_profiles.where(email=normalized, limit=1):
                    raise Conflict("an account with this email already exists")
        return target.accounts.register(
            email, password, username, body_metrics, region=home, actor=actor, **options
        )

    def authenticate(self, email: str, password: str) -> UserProfile:
        """Sign a shopper in, whichever region holds them (:class:`AuthenticationFailed` otherwise).

        Every region checks a password hash, found or not, so the time taken does not tell
        where (or whether) the account exists.
        """
        found: UserProfile | None = None
        for ft in self._shards.values():
            try:
                found = ft.accounts.authenticate(email, password)
            except AuthenticationFailed:
                continue
        if found is None:
            raise AuthenticationFailed("invalid email or password")
        return found

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every region's store."""
        for ft in self._shards.values():
            ft.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ShardRouter(regions={list(self._shards)!r})"

    def _locate(self, user_id: UUID) -> str | None:
        for region, ft in self._shards.items():
            with ft.context.store.unit_of_work() as uow:
                if uow.user_profiles.find(user_id) is not None:
                    return region
        return None


__all__ = ["ShardRouter"]
