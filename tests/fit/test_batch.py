"""The batch path gives exactly the scalar path's results."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fittwin_core.domain.errors import ConfigurationError, ValidationError
from fittwin_core.domain.users import BodyMetrics, FitPreference, Sex, StylePreferences
from fittwin_core.fit import Chart, recommend, recommend_batch
from fittwin_core.fit._numerics import exp
from fittwin_core.fit.batch import exp_array
from tests.fit.samples import JEANS, TOPS, fit_map

FIT_MAP = fit_map({"offset": {"chest": -1}, "stretch": {"waist": 0.02}}, {"slope": 5.0, "intercept": -2.0})
ISOTONIC_MAP = fit_map(
    {"offset": {"waist": 1.5}},
    {"method": "isotonic", "thresholds": [0.2, 0.5, 0.5001, 0.9], "values": [0.31, 0.5, 0.62, 0.88]},
)


@st.composite
def populations(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        row: dict[str, Any] = {
            "height_cm": draw(st.floats(150, 200)),
            "weight_kg": draw(st.floats(45, 130)),
            "sex": draw(st.sampled_from([None, Sex.FEMALE, Sex.MALE])),
        }
        for name, low, high in (("chest_cm", 75, 125), ("waist_cm", 60, 115), ("hip_cm", 80, 125)):
            kind = draw(st.sampled_from(["measured", "measured", "missing", "flagged"]))
            row[name] = None if kind == "missing" else draw(st.floats(low, high))
            row[f"{name}_estimated"] = kind == "flagged"
        rows.append(row)
    return rows


def _metrics(row: dict[str, Any]) -> BodyMetrics:
    fields = {k: v for k, v in row.items() if not k.endswith("_estimated")}
    flagged = {k[: -len("_estimated")] for k, v in row.items() if k.endswith("_estimated") and v}
    return BodyMetrics(**fields, estimated={name for name in flagged if fields[name] is not None})


def _columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key == "sex":
            columns[key] = np.array(values, dtype=object)
        elif key.endswith("_estimated"):
            columns[key] = np.array(values, dtype=bool)
        else:
            columns[key] = np.array([np.nan if v is None else v for v in values], dtype=float)
    return columns


@settings(max_examples=60, deadline=None)
@given(
    populations(),
    st.sampled_from([(TOPS, "tops"), (JEANS, "bottoms/jeans")]),
    st.sampled_from([None, FIT_MAP, ISOTONIC_MAP]),
    st.sampled_from(list(FitPreference)),
)
def test_batch_equals_scalar(
    rows: list[dict[str, Any]], chart_spec: Any, with_map: Any, pref: FitPreference
) -> None:
    """Bodies span heights and BMIs outside the estimators' ranges too (zones left unassessed)."""
    chart = Chart.from_rules(chart_spec[0], garment_type=chart_spec[1])
    kwargs: dict[str, Any] = {
        "fit_map": with_map,
        "preferences": StylePreferences(fit_prefs=pref),
    }
    batch = recommend_batch(_columns(rows), chart, **kwargs)
    for i, row in enumerate(rows):
        scalar = recommend(_metrics(row), chart, **kwargs)
        assert batch["size_label"][i] == scalar.size_label
        assert batch["confidence"][i] == scalar.confidence
        assert batch["between_sizes"][i] == scalar.between_sizes
        for label, p in scalar.probabilities.items():
            assert math.isclose(batch[f"p_{label}"][i], p, rel_tol=0, abs_tol=1e-12)


def test_a_dataframe_in_gives_a_dataframe_out_with_the_same_index() -> None:
    frame = pd.DataFrame(
        {
            "height_cm": [180.0, 170.0],
            "weight_kg": [80.0, 60.0],
            "chest_cm": [98.0, np.nan],
            "sex": ["male", None],
        },
        index=["a", "b"],
    )
    out = recommend_batch(frame, Chart.from_rules(TOPS))
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == ["a", "b"]
    assert list(out.columns) == ["size_label", "confidence", "between_sizes", "p_S", "p_M", "p_L", "p_XL"]
    assert (
        out.loc["a", "size_label"]
        == recommend(
            BodyMetrics(height_cm=180, weight_kg=80, chest_cm=98, sex=Sex.MALE), Chart.from_rules(TOPS)
        ).size_label
    )


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"weight_kg": [70.0]}, "bodies.height_cm"),
        ({"height_cm": [170.0, np.nan], "weight_kg": [70.0, 70.0]}, "bodies.height_cm[1]"),
        ({"height_cm": [170.0], "weight_kg": [70.0], "chest_cm": [900.0]}, "bodies.chest_cm[0]"),
        ({"height_cm": [170.0], "weight_kg": [70.0], "sex": ["x"]}, "bodies.sex[0]"),
        ({"height_cm": [170.0], "weight_kg": [70.0, 71.0]}, "bodies"),
    ],
)
def test_invalid_bodies_are_refused_naming_column_and_row(columns: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        recommend_batch(columns, Chart.from_rules(TOPS))
    assert info.value.field == field


def test_without_numpy_the_batch_path_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(ConfigurationError, match=r"fittwin\[notebook\]"):
        recommend_batch({"height_cm": [170.0], "weight_kg": [70.0]}, Chart.from_rules(TOPS))


def test_the_vector_exp_is_bit_identical_to_the_scalar_one() -> None:
    xs = np.concatenate([np.linspace(-745, 710, 5001), -np.geomspace(1e-12, 40, 3000), [0.0, -0.5, 1.0]])
    got = exp_array(xs)
    assert [float(v) for v in got] == [exp(float(x)) for x in xs]
    assert max(abs(exp(float(x)) - math.exp(x)) / math.exp(x) for x in xs if -700 < x < 700) < 1e-15


def test_importing_the_fit_engine_does_not_import_numpy_or_infrastructure() -> None:
    code = (
        "import sys, fittwin_core.fit\n"
        "banned = {'numpy', 'pandas', 'sqlalchemy', 'psycopg', 'fsspec', 'stripe', 'argon2',"
        " 'cryptography'}\n"
        "loaded = sorted(m for m in banned if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "import fittwin_core.fit.engine, fittwin_core.fit.charts\n"
        "assert 'fittwin_core.ports' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
