"""Use cases, grouped as on the :class:`~fittwin_core.FitTwin` facade."""
