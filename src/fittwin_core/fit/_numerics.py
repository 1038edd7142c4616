"""Deterministic floating-point helpers shared by the scalar and the batch paths.

The batch path must give *exactly* the scalar path's labels, flags and confidences. Library
``exp`` implementations differ in their last bit (``math.exp`` and numpy's SIMD ``exp`` do),
so both paths use :func:`exp` below, built only from operations IEEE 754 rounds correctly
(``+ - * /``, ``floor``, ``ldexp``). Applied element-wise by numpy or to a Python float, it
gives bit-identical results. Accuracy: relative error below 1e-15 over the range used.
"""

from __future__ import annotations

import math

LN2_HI = 6.93147180369123816490e-01
"""High part of ln 2 (Cody–Waite split: ``k * LN2_HI`` is exact for |k| < 2**11)."""
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
EXP_MIN = -700.0
"""Arguments below this give 0.0 (the true value is below 1e-304)."""
EXP_MAX = 700.0

# 1/n! for n = 13 .. 2, Horner order (|r| <= ln2/2 after range reduction, so the
# truncation error r**14/14! is below 1e-17).
_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))


def exp(x: float) -> float:
    """``e**x`` computed with the same operations as :func:`fittwin_core.fit.batch` uses."""
    if x < EXP_MIN:
        return 0.0
    x = min(x, EXP_MAX)
    k = math.floor(x * INV_LN2 + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO
    p = _TAYLOR[0]
    for c in _TAYLOR[1:]:
        p = p * r + c
    p = p * r + 1.0
    p = p * r + 1.0
    return math.ldexp(p, int(k))


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (the same rule the batch path applies)."""
    return math.floor(x + 0.5)


__all__ = ["EXP_MAX", "EXP_MIN", "INV_LN2", "LN2_HI", "LN2_LO", "exp", "round_half_up"]
