"""The item-head model's interests: the categories of its next-item distribution (``InterestAgent``'s
``item_head_interests``), as the likeliest ``k`` or the set with the highest expected F1."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._itemhead import ItemHeadScorer

__all__ = ["best_f1_set", "category_probs", "expected_f1_labels", "interests_from_next_items"]


def category_probs(catalog: Any, scorer: ItemHeadScorer, history: Sequence[str], exclude: Iterable[str]
                   ) -> dict[str, float]:
    """P(the next item carries category c) under the model: its next-item probabilities summed per category."""
    p = scorer.next_item_probs(history, exclude)
    out: dict[str, float] = {}
    for j, item_id in enumerate(scorer.item_ids):
        if p[j] <= 0 or item_id not in catalog.index:
            continue
        for c in catalog.items[catalog.index[item_id]].categories:
            out[c] = out.get(c, 0.0) + float(p[j])
    return out


def expected_f1_labels(catalog: Any, scorer: ItemHeadScorer, history: Sequence[str], exclude: Iterable[str],
                       max_labels: int, *, top_items: int = 300, top_categories: int = 8, temperature: float = 1.0,
                       recent_mix: float = 0.0, recent_items: int = 10) -> list[str]:
    """The category set with the highest expected F1 against the next item's categories under the model.

    F1 of a set ``S`` against an item's categories ``G`` is ``2|S ∩ G| / (|S| + |G|)``; its expectation over
    the model's next-item distribution (the ``top_items`` likeliest, renormalised) is maximised over every
    set of 1..``max_labels`` of the ``top_categories`` likeliest categories. A fixed top-k ignores that one
    film usually carries one or two categories: this picks how many to state from the distribution itself.
    Returned most likely first (by each category's own probability).

    ``temperature`` sharpens (< 1) or flattens (> 1) the model's distribution (``p ** (1 / temperature)``,
    renormalised); ``recent_mix`` gives that share of the mass to the user's last ``recent_items`` items
    (equal parts): the next film's categories often repeat a recent film's.
    """
    if temperature <= 0 or not 0.0 <= recent_mix <= 1.0:
        raise ValueError("temperature must be > 0 and recent_mix in [0, 1]")
    p = scorer.next_item_probs(history, exclude)
    if temperature != 1.0:
        p = np.where(p > 0, np.power(np.maximum(p, 1e-300), 1.0 / temperature), 0.0)
    rows: list[frozenset[str]] = []
    weights: list[float] = []
    for j in np.argsort(-p)[:top_items]:
        item_id = scorer.item_ids[int(j)]
        if p[j] <= 0 or item_id not in catalog.index:
            continue
        cats = frozenset(catalog.items[catalog.index[item_id]].categories)
        if cats:
            rows.append(cats)
            weights.append(float(p[j]))
    recent = [frozenset(catalog.items[catalog.index[i]].categories) for i in list(history)[-recent_items:]
              if i in catalog.index] if recent_mix > 0 else []
    recent = [c for c in recent if c]
    if weights:
        weights = list(np.asarray(weights) / sum(weights) * (1.0 - recent_mix if recent else 1.0))
    if recent:
        rows += recent
        weights += [recent_mix / len(recent)] * len(recent)
    return best_f1_set(rows, weights, max_labels, top_categories)[0]


def best_f1_set(rows: Sequence[frozenset[str]], weights: Sequence[float], max_labels: int,
                top_categories: int = 8) -> tuple[list[str], float]:
    """The set of 1..``max_labels`` of the ``top_categories`` heaviest labels with the highest expected F1
    against a distribution over label sets (``rows``, each with its weight; normalised here), and that
    expected F1. F1 of ``S`` against ``G`` is ``2|S ∩ G| / (|S| + |G|)``. Empty rows count as misses; no
    rows or no weight: ``([], 0.0)``."""
    from itertools import combinations

    if len(rows) != len(weights):
        raise ValueError(f"{len(rows)} rows but {len(weights)} weights")
    if not rows or sum(weights) <= 0:
        return [], 0.0
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    marginal: dict[str, float] = {}
    for cats, wi in zip(rows, w, strict=True):
        for c in cats:
            marginal[c] = marginal.get(c, 0.0) + float(wi)
    pool = sorted(marginal, key=lambda c: (-marginal[c], c))[:top_categories]
    if not pool:
        return [], 0.0
    sizes = np.array([len(c) for c in rows])
    member = {c: np.array([c in cats for cats in rows], dtype=np.float64) for c in pool}
    best, best_f1 = [pool[0]], -1.0
    for k in range(1, max_labels + 1):
        for subset in combinations(pool, k):
            hits = sum(member[c] for c in subset)
            f1 = float(np.sum(w * 2 * hits / (k + sizes)))
            if f1 > best_f1 + 1e-12:
                best, best_f1 = list(subset), f1
    return best, best_f1


def interests_from_next_items(catalog: Any, scorer: ItemHeadScorer, ctx: Any, k: int, rule: str = "top-k",
                              **expected_f1: Any) -> list[Any]:
    """The categories of the model's next-item distribution as :class:`Interest` (see
    ``InterestAgent.item_head_interests``): the ``k`` likeliest (``rule="top-k"``) or the set of at most
    ``k`` with the highest expected F1 (``"expected-f1"``, :func:`expected_f1_labels`, which takes
    ``expected_f1``'s keywords)."""
    from ._schemas import Interest

    probs = category_probs(catalog, scorer, ctx.history, ctx.exclude)
    if rule == "expected-f1":
        labels = sorted(expected_f1_labels(catalog, scorer, ctx.history, ctx.exclude, k, **expected_f1),
                        key=lambda c: (-probs.get(c, 0.0), c))
    elif rule == "top-k":
        labels = sorted(probs, key=lambda c: (-probs[c], c))[:k]
    else:
        raise ValueError(f"unknown interest rule {rule!r} (top-k or expected-f1)")
    short = {a.name for a in ctx.profile.short.top_attributes[:3]}
    out = []
    for label in labels:
        p = probs.get(label, 0.0)
        conf = "high" if p >= 0.6 else "medium" if p >= 0.35 else "low"
        out.append(Interest(label=label[:60], confidence=conf, horizon="short" if label in short else "long",
                            evidence=[]))
    return out
