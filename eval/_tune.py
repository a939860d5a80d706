"""The harness's side of LLM tuning: training data from a split's training part only, and the validation
measure of the tuned re-ranker (the LLM alone against the retrieval order, candidates in two orders).

The agent's example builder never sees a :class:`Split`: this module passes it the training sequences and
the split's validation and test targets as forbidden ``(user, item)`` pairs, which it refuses to train on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eval._data import Dataset
from eval._split import Split
from eval._stats import bootstrap_ci, paired_test

__all__ = ["choice_ranks", "forbidden_pairs", "rank_metrics", "tune_items", "tune_validation"]


def tune_items(dataset: Dataset) -> list[Any]:
    """The catalogue as :class:`agent.CatalogItem` (title with year, genres) for the tuning prompts."""
    from agent import CatalogItem

    return [CatalogItem(item_id=it.item_id, title=(f"{it.title} ({it.year})" if it.year else it.title)[:300],
                        categories=tuple(it.genres)) for it in dataset.items.values()]


def forbidden_pairs(split: Split) -> list[tuple[str, str]]:
    """Every ``(user, item)`` the split holds out (validation and test targets)."""
    return [(u, t.item_id) for u, t in split.val.items()] + [(u, t.item_id) for u, t in split.test.items()]


def choice_ranks(engine: Any, examples: Sequence[Any], orders: int = 2) -> np.ndarray:
    """Target rank (1 = first) among each example's candidates by the engine's letter probabilities,
    averaged over ``orders`` candidate orders (1: as given; 2: also reversed) to cancel position bias."""
    from agent import LETTERS, reorder

    n = len(examples[0].candidates)
    perms = [list(range(n)), list(range(n))[::-1]][:orders]
    total = np.zeros((len(examples), n))
    for perm in perms:
        shown = [reorder(e, perm) for e in examples]
        res = engine.score_choices([e.prompt for e in shown], LETTERS[:n])
        for row, r in enumerate(res):
            total[row, perm] += np.asarray(r.probs)  # back to the original candidate order
    ranks = []
    for row, e in enumerate(examples):
        p = total[row]
        # ties count against the target (pessimistic): rank = 1 + #candidates scored at least as high
        ranks.append(1 + int(np.sum(p > p[e.target])) + int(np.sum(p[np.arange(n) != e.target] == p[e.target])))
    return np.asarray(ranks)


def rank_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user mean-rank and NDCG@10 within the candidates (one relevant item)."""
    ranks = np.asarray(ranks, dtype=float)
    return {"rank": ranks, "ndcg@10": np.where(ranks <= 10, 1.0 / np.log2(ranks + 1), 0.0),
            "hr@1": (ranks == 1).astype(float)}


def tune_validation(rankers: dict[str, np.ndarray], reference: str = "retrieval") -> dict[str, Any]:
    """Means with bootstrap CIs for each ranker, and paired tests of each against ``reference``."""
    out: dict[str, Any] = {"n": int(len(rankers[reference])), "models": {}, "paired": []}
    per = {name: rank_metrics(r) for name, r in rankers.items()}
    for name, m in per.items():
        out["models"][name] = {k: bootstrap_ci(v).to_dict() for k, v in m.items()}
    for name, m in per.items():
        if name == reference:
            continue
        for metric in ("rank", "ndcg@10"):
            t = paired_test(m[metric], per[reference][metric])
            out["paired"].append({"model": name, "baseline": reference, "metric": metric, **t.to_dict()})
    return out
