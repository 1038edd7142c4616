"""The :class:`FitTwin` facade: one object, its service groups, and the ports behind them."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from fittwin_core.services.accounts import Accounts
from fittwin_core.services.analytics import Analytics
from fittwin_core.services.audit import Audit
from fittwin_core.services.avatars import Avatars
from fittwin_core.services.base import Context
from fittwin_core.services.brands import Brands
from fittwin_core.services.catalog import Catalog
from fittwin_core.services.fitting import Fitting
from fittwin_core.services.orders import Orders
from fittwin_core.services.privacy import Privacy
from fittwin_core.services.referrals import Referrals
from fittwin_core.services.rewards import Rewards


class FitTwin:
    """FitTwin, wired to a store and its other ports (build one with ``fittwin_adapters.connect``).

    Service groups: ``accounts``, ``avatars``, ``brands``, ``catalog``, ``fit``, ``orders``,
    ``referrals``, ``rewards``, ``privacy``, ``audit``, ``analytics``. ``region`` is the region it serves as
    one shard of several (``None``: every region; see ``fittwin_core.routing.ShardRouter``).
    Use it as a context manager, or call :meth:`close`, to release the store's connections.
    """

    def __init__(self, ctx: Context) -> None:
        self.context = ctx
        self.accounts = Accounts(ctx)
        self.avatars = Avatars(ctx)
        self.brands = Brands(ctx)
        self.catalog = Catalog(ctx, self.brands)
        self.fit = Fitting(ctx)
        self.orders = Orders(ctx, self.brands, self.catalog)
        self.referrals = Referrals(ctx)
        self.rewards = Rewards(ctx)
        self.orders.hooks.append(self.rewards)
        self.privacy = Privacy(ctx)
        self.audit = Audit(ctx)
        self.analytics = Analytics(ctx)

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


__all__ = ["FitTwin"]
