"""Render the permission matrix as the Markdown table ``docs/permissions.md`` carries."""

from __future__ import annotations

from fittwin_core.services.permissions import PERMISSIONS, Grant

COLUMNS = (
    (Grant.PLATFORM_ADMIN, "platform admin"),
    (Grant.SYSTEM, "system"),
    (Grant.BRAND_OWNER, "brand owner"),
    (Grant.BRAND_MANAGER, "brand manager"),
    (Grant.BRAND_ANALYST, "brand analyst"),
    (Grant.SELF, "the shopper"),
    (Grant.SHOPPER, "any shopper"),
    (Grant.ANONYMOUS, "anonymous"),
)


def _lets_through(grants: frozenset[Grant], column: Grant) -> bool:
    if Grant.ANYONE in grants or column in grants:
        return True
    return column == Grant.SELF and Grant.SHOPPER in grants  # any shopper includes the one concerned


def render() -> str:
    """The table: one row per action, ✓ where a grant lets the actor through."""
    lines = [
        "| action | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for action, grants in PERMISSIONS.items():
        cells = ["✓" if _lets_through(grants, grant) else "" for grant, _ in COLUMNS]
        lines.append(f"| `{action}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
