"""Interest shares over time for the page: a user's history cut into equal time bins."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from memory import Behavior

__all__ = ["behavior_categories", "timeline"]

TOP_CATEGORIES = 6
OTHER = "other"


def behavior_categories(b: Behavior) -> list[str]:
    """The categories a behavior carries (``genres`` or ``categories`` attribute), else ``["other"]``."""
    for name in ("genres", "categories"):
        value = b.attributes.get(name)
        if isinstance(value, list) and value:
            return [str(v) for v in value if v is not None] or [OTHER]
        if isinstance(value, str) and value:
            return [value]
    return [OTHER]


def timeline(user_id: str, history: Sequence[Behavior], bins: int) -> dict[str, Any]:
    """Category shares per bin; each behavior adds 1/g to each of its g categories, so a bin sums to 1.

    Args:
        user_id: The user.
        history: Behaviors, oldest first.
        bins: Number of equal-width time bins (1..100).
    """
    if not history:
        return {"user_id": user_id, "categories": [], "bins": []}
    totals: Counter[str] = Counter()
    for b in history:
        cats = behavior_categories(b)
        for c in cats:
            totals[c] += 1.0 / len(cats)
    top = [c for c, _ in totals.most_common() if c != OTHER][:TOP_CATEGORIES]
    start, end = history[0].timestamp, history[-1].timestamp
    width = max((end - start) / bins, (end - start) / 10_000) if end > start else None
    groups: list[list[Behavior]] = [[] for _ in range(bins if width else 1)]
    for b in history:
        i = 0 if width is None else min(int((b.timestamp - start) / width), bins - 1)
        groups[i].append(b)
    out = []
    for i, group in enumerate(groups):
        shares: Counter[str] = Counter()
        for b in group:
            cats = behavior_categories(b)
            for c in cats:
                shares[c if c in top else OTHER] += 1.0 / len(cats)
        n = len(group)
        lo = start if width is None else start + i * width
        hi = end if width is None else start + (i + 1) * width
        out.append({"start": lo, "end": hi, "n": n,
                    "shares": {c: round(v / n, 4) for c, v in shares.items()} if n else {}})
    cats = top + ([OTHER] if any(OTHER in g["shares"] for g in out) else [])
    return {"user_id": user_id, "categories": cats, "bins": out}
