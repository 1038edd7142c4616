"""The fit engine: size charts, fit maps, estimation and size recommendation. Pure code.

Imports only the standard library, attrs and :mod:`fittwin_core.domain`; numpy and pandas are
imported lazily by :func:`recommend_batch` alone. See ``docs/fit.md``.
"""

from fittwin_core.fit import learning, outcomes
from fittwin_core.fit.batch import recommend_batch
from fittwin_core.fit.charts import (
    ZONE_FIELDS,
    Chart,
    ZoneRule,
    normalize_size_chart,
    parse_chart,
)
from fittwin_core.fit.engine import ENGINE_VERSION, SizeRecommendation, recommend
from fittwin_core.fit.estimation import ESTIMATE_SD_CM, LANDMARKS, estimate_measurements
from fittwin_core.fit.fitmaps import FitRules, parse_fit_map, validate_fit_map

__all__ = [
    "ENGINE_VERSION",
    "ESTIMATE_SD_CM",
    "LANDMARKS",
    "ZONE_FIELDS",
    "Chart",
    "FitRules",
    "SizeRecommendation",
    "ZoneRule",
    "estimate_measurements",
    "learning",
    "normalize_size_chart",
    "outcomes",
    "parse_chart",
    "parse_fit_map",
    "recommend",
    "recommend_batch",
    "validate_fit_map",
]
