"""The :class:`FitTwin` facade: one object, its service groups, and the ports behind them."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from fittwin_core.domain import Actor
from fittwin_core.services.accounts import Accounts
from fittwin_core.services.analytics import Analytics
from fittwin_core.services.audit import Audit
from fittwin_core.services.avatars import Avatars
from fittwin_core.services.base import Context, Session, UnitOfWorkRunner
from fittwin_core.services.brands import Brands
from fittwin_core.services.catalog import Catalog
from fittwin_core.services.effects import Effects
from fittwin_core.services.fitting import Fitting
from fittwin_core.services.orders import Orders
from fittwin_core.services.permissions import check_actor
from fittwin_core.services.privacy import Privacy
from fittwin_core.services.referrals import Referrals
from fittwin_core.services.rewards import Rewards


class ServiceGroups:
    """The service groups, built on one context and one :class:`UnitOfWorkRunner`."""

    def __init__(self, ctx: Context, runner: UnitOfWorkRunner | None = None) -> None:
        runner = runner or UnitOfWorkRunner(ctx)
        self.context = ctx
        self.accounts = Accounts(ctx, runner)
        self.effects = Effects(ctx, runner)
        self.avatars = Avatars(ctx, runner, self.effects)
        self.brands = Brands(ctx, runner, self.effects)
        self.catalog = Catalog(ctx, self.brands, runner)
        self.fit = Fitting(ctx, runner)
        self.rewards = Rewards(ctx, runner)
        self.orders = Orders(ctx, self.brands, self.catalog, runner, self.rewards)
        self.referrals = Referrals(ctx, runner)
        self.privacy = Privacy(ctx, runner)
        self.audit = Audit(ctx, runner)
        self.analytics = Analytics(ctx, runner)


class Transaction(ServiceGroups):
    """A unit of work across several service calls (``with ft.transaction(actor=a) as tx:``).

    ``tx`` has the same service groups as ``ft``; every call made through them runs in one
    transaction, committed once when the ``with`` block ends and rolled back on any error, so
    a failing last call leaves nothing written. Each call still takes its own ``actor=`` (and
    is checked for it); ``actor`` here is the transaction's own, recorded where a call's is not.
    Work that must wait for the commit (delivering the outbox's effects, opening an order's
    payment, deleting objects) runs after it. There is no automatic retry: a ``TransientConflict`` leaves the
    block and the host retries the block. See ``docs/transactions.md``.
    """

    def __init__(self, ctx: Context, actor: Actor) -> None:
        self.actor = check_actor(actor)
        self._session = Session(ctx, self.actor)
        super().__init__(ctx, self._session)

    def __enter__(self) -> Self:
        self._session.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._session.end(exc)

    def __repr__(self) -> str:
        return f"Transaction(actor={self.actor!r})"


class FitTwin(ServiceGroups):
    """FitTwin, wired to a store and its other ports (build one with ``fittwin_adapters.connect``).

    Service groups: ``accounts``, ``avatars``, ``brands``, ``catalog``, ``effects``, ``fit``, ``orders``,
    ``referrals``, ``rewards``, ``privacy``, ``audit``, ``analytics``. ``region`` is the region it serves as
    one shard of several (``None``: every region; see ``fittwin_core.routing.ShardRouter``).
    Use it as a context manager, or call :meth:`close`, to release the store's connections.
    Every call that changes data or reads a shopper's or a brand's data takes ``actor=``;
    :meth:`transaction` groups several calls in one unit of work.
    """

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)

    def transaction(self, *, actor: Actor) -> Transaction:
        """A unit of work across several calls: ``with ft.transaction(actor=a) as tx:
        tx.accounts.register(...); tx.accounts.add_address(...)`` (see :class:`Transaction`)."""
        return Transaction(self.context, actor)

    @property
    def region(self) -> str | None:
        """The region this FitTwin serves as a shard (``Settings.region``), or ``None``."""
        return self.context.settings.region

    @property
    def store(self) -> object:
        """The store adapter (e.g. ``ft.store.migrate()`` on PostgreSQL)."""
        return self.context.store

    def close(self) -> None:
        """Release the store's resources."""
        self.context.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        region = "" if self.region is None else f", region={self.region!r}"
        return f"FitTwin(store={type(self.context.store).__name__}{region})"


__all__ = ["FitTwin", "ServiceGroups", "Transaction"]
