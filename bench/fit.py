"""Benchmark the fit engine: recommendations per second, scalar and batch.

Chart: 12 sizes × 4 zones (chest, waist, hip, height). Bodies: synthetic, seeded, with every
zone measured. The baseline, measured in the same run, is the straightforward use of the
scalar API that re-validates and re-parses the chart JSON on every call
(``Chart.from_rules(...)`` then ``recommend``), i.e. what the engine would cost without its
parse cache. Run: ``.venv/bin/python bench/fit.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import platform
import random
import time

import numpy as np

from fittwin_core.domain.users import BodyMetrics
from fittwin_core.fit import Chart, recommend, recommend_batch

LABELS = ["3XS", "2XS", "XS", "S", "M", "L", "XL", "2XL", "3XL", "4XL", "5XL", "6XL"]


def chart_rules() -> dict[str, object]:
    """A 12-size, 4-zone body chart graded in 4 cm (girths) and 3 cm (height) steps."""
    sizes = []
    for i, label in enumerate(LABELS):
        sizes.append(
            {
                "label": label,
                "chest": [72 + 4 * i, 76 + 4 * i],
                "waist": [58 + 4 * i, 62 + 4 * i],
                "hip": [80 + 4 * i, 84 + 4 * i],
                "height": [160 + 3 * i, 163 + 3 * i],
            }
        )
    zones = {z: {"tolerance": 2.0, "weight": 1.0} for z in ("chest", "waist", "hip", "height")}
    return {"zones": zones, "sizes": sizes}


def bodies(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    step = rng.uniform(0, 11, n)
    return {
        "height_cm": np.round(161.5 + 3 * step + rng.normal(0, 2, n), 1),
        "weight_kg": np.round(rng.uniform(50, 110, n), 1),
        "chest_cm": np.round(74 + 4 * step + rng.normal(0, 2, n), 1),
        "waist_cm": np.round(60 + 4 * step + rng.normal(0, 2, n), 1),
        "hip_cm": np.round(82 + 4 * step + rng.normal(0, 2, n), 1),
    }


def as_metrics(columns: dict[str, np.ndarray], n: int) -> list[BodyMetrics]:
    return [
        BodyMetrics(
            height_cm=float(columns["height_cm"][i]),
            weight_kg=float(columns["weight_kg"][i]),
            chest_cm=float(columns["chest_cm"][i]),
            waist_cm=float(columns["waist_cm"][i]),
            hip_cm=float(columns["hip_cm"][i]),
        )
        for i in range(n)
    ]


def timed(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sample sizes")
    args = parser.parse_args()
    n_scalar = 5_000 if args.quick else 20_000
    n_base = 500 if args.quick else 2_000
    n_batch = 100_000 if args.quick else 1_000_000

    rules = chart_rules()
    chart = Chart.from_rules(rules)
    columns = bodies(max(n_scalar, n_batch))
    metrics = as_metrics(columns, n_scalar)
    random.seed(1)

    base_t = timed(lambda: [recommend(b, Chart.from_rules(rules)) for b in metrics[:n_base]], repeat=1)
    scalar_t = timed(lambda: [recommend(b, chart) for b in metrics])
    batch_cols = {k: v[:n_batch] for k, v in columns.items()}
    batch_t = timed(lambda: recommend_batch(batch_cols, chart))

    # Same answers: the batch path against the scalar path on the scalar sample.
    check = recommend_batch({k: v[:n_scalar] for k, v in columns.items()}, chart)
    scalar = [recommend(b, chart) for b in metrics]
    assert list(check["size_label"]) == [r.size_label for r in scalar]
    assert list(check["confidence"]) == [r.confidence for r in scalar]

    rows = [
        ("baseline: re-parse chart per call", n_base, base_t),
        ("scalar recommend (cached chart)", n_scalar, scalar_t),
        ("recommend_batch (numpy)", n_batch, batch_t),
    ]
    print(f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{'method':36s} {'bodies':>10s} {'seconds':>9s} {'recs/s':>12s} {'vs baseline':>12s}")
    base_rate = n_base / base_t
    for name, n, t in rows:
        rate = n / t
        print(f"{name:36s} {n:10d} {t:9.3f} {rate:12,.0f} {rate / base_rate:11.1f}x")


if __name__ == "__main__":
    main()
