"""Pure numpy helpers shared by the agent and the evaluation: item popularity and top-k with exclusions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["item_counts", "top_k"]


def item_counts(sequences: Iterable[Iterable[str]], index: Mapping[str, int]) -> np.ndarray:
    """How often each catalogue item occurs in ``sequences`` (a popularity count).

    Args:
        sequences: Item-id sequences (one per user, or any iterable of iterables of ids).
        index: ``item_id -> column``; ids not in it are ignored.

    Returns:
        A float64 vector of length ``len(index)``, in column order.
    """
    counts = np.zeros(len(index), dtype=np.float64)
    for seq in sequences:
        for item in seq:
            col = index.get(item)
            if col is not None:
                counts[col] += 1
    return counts


def top_k(scores: np.ndarray, k: int | None = None, exclude: Iterable[int] = ()) -> np.ndarray:
    """Columns of the ``k`` best finite scores of one score row, best first, excluded columns removed.

    Ties are broken by column order (a stable sort), so results are deterministic. Columns scored ``-inf``
    or NaN never appear: with fewer than ``k`` finite scores the result is shorter.

    Args:
        scores: One row of scores (higher is better).
        k: How many columns to return; ``None`` returns every finite one.
        exclude: Columns that must not be returned (e.g. already consumed items).

    Returns:
        An int64 array of at most ``k`` column indices.
    """
    row = np.array(scores, dtype=np.float64, copy=True).reshape(-1)
    cols = np.fromiter(exclude, dtype=np.int64)
    if cols.size:
        row[cols] = -np.inf
    order = np.argsort(-row, kind="stable")
    if k is not None:
        order = order[: max(k, 0)]
    return order[np.isfinite(row[order])]

