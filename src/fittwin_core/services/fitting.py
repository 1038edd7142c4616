"""``ft.fit``: size recommendations for a shopper and a product, on top of :mod:`fittwin_core.fit`."""

from __future__ import annotations

from uuid import UUID

from fittwin_core import fit
from fittwin_core.domain import Actor, ValidationError
from fittwin_core.fit import SizeRecommendation
from fittwin_core.ports import UnitOfWork
from fittwin_core.services.base import Service, as_uuid
from fittwin_core.services.permissions import authorize


class Fitting(Service):
    """``ft.fit``: what size of a product fits a shopper, and how sure we are."""

    def recommend(self, user_id: UUID, product_id: UUID, *, actor: Actor) -> SizeRecommendation:
        """Recommend a size of ``product_id`` for the shopper's body metrics and fit preferences,
        using the product's size chart and fit map. Missing girths are estimated (and lower the
        confidence); ``size_label`` is ``None`` with a ``reason`` when nothing fits."""
        uid, pid = as_uuid(user_id, "user_id"), as_uuid(product_id, "product_id")
        acting = actor
        authorize(acting, "fit.recommend", user_id=uid)

        def work(uow: UnitOfWork) -> SizeRecommendation:
            profile = self.shopper(uow, uid)
            if profile.body_metrics is None:
                raise ValidationError("user_id", "refers to an account without body metrics (erased)")
            product = uow.products.get(pid)
            chart = uow.size_charts.get(product.size_chart_id)
            fit_map = None if product.fit_map_id is None else uow.fit_maps.get(product.fit_map_id)
            return fit.recommend(profile.body_metrics, chart, fit_map, profile.style_preferences)

        return self.read(work, actor=acting)

    def sizes(self, size_chart_id: UUID, *, actor: Actor) -> tuple[str, ...]:
        """A size chart's size labels, smallest first, graded sizes included (public, like the catalog)."""
        cid = as_uuid(size_chart_id, "size_chart_id")
        authorize(actor, "catalog.read")
        return fit.parse_chart(self.read(lambda uow: uow.size_charts.get(cid), actor=actor)).labels


__all__ = ["Fitting"]
