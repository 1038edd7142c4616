"""JSON text for ``jsonb`` columns that reads back exactly as it was written.

``jsonb`` stores numbers as ``numeric``: ``1e+17`` comes back as the integer
``100000000000000000``, no longer a float. Floats whose shortest form has a positive exponent
are therefore written out in positional notation with a fractional part (``…000.0``), which
``numeric`` keeps and which parses back to the same float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_MARK = "\x00f"  # NUL never occurs in stored JSON strings (the entities refuse it)


def _has_exponent_float(value: Any) -> bool:
    if isinstance(value, float):
        return "e+" in repr(value)
    if isinstance(value, dict):
        return any(_has_exponent_float(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_exponent_float(v) for v in value)
    return False


def _positional(value: float) -> str:
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def dumps(value: Any) -> str:
    """``json.dumps`` with floats written so that ``jsonb`` keeps them floats."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    # json writes floats as repr does: without "e+" in the text there is no such float (and a
    # string holding "e+" only costs the walk below).
    if "e+" not in text or not _has_exponent_float(value):
        return text
    floats: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, float) and "e+" in repr(item):
            floats.append(_positional(item))
            return f"{_MARK}{len(floats) - 1}{_MARK}"
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(value), ensure_ascii=False, allow_nan=False)
    for index, number in enumerate(floats):
        text = text.replace(f'"\\u0000f{index}\\u0000f"', number, 1)
    return text


__all__ = ["dumps"]
