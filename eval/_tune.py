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

__all__ = ["choice_ranks", "forbidden_pairs", "rank_metrics", "tune_items", "tune_on_split", "tune_validation",
           "validate_tuned"]


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


def tune_on_split(split: Split, data_config: Any, tune_config: Any, *, home: Any = None, progress: bool = True,
                  log_file: Any = None, time_budget_s: float | None = None) -> Any:
    """Tune the embedded LLM on ``split``'s training sequences only (its validation and test targets are
    forbidden to the example builder); returns the tuned model's folder (cached by key)."""
    from agent import build_examples, tune_model

    examples = build_examples(split.train, tune_items(split.dataset), forbidden_pairs(split), data_config)
    return tune_model(examples, data_config, tune_config, home=home, progress=progress, log_file=log_file,
                      time_budget_s=time_budget_s,
                      extra={"dataset": split.dataset.name, "split": f"{split.kind} (training sequences only)"})


def validate_tuned(split: Split, models: dict[str, Any], data_config: Any, users: Sequence[str],
                   engine_factory: Any = None) -> dict[str, Any]:
    """The validation measure: for ``users``' validation targets, the example retriever's top candidates
    after the whole training sequence (users it misses are left out), each model's letter probabilities
    averaged over 1 and 2 candidate orders; mean rank and NDCG@10 within the candidates, paired against the
    retrieval order. Reads no test target.

    Args:
        models: name -> model folder, each served by ``engine_factory(folder)`` (default: ``VLLMEngine``).
    """
    import time

    from agent import VLLMEngine, ranked_examples

    factory = engine_factory or (lambda path: VLLMEngine.from_model(str(path)))
    targets = {u: split.val[u].item_id for u in users if u in split.val}
    examples, looked = ranked_examples(split.train, targets, tune_items(split.dataset), data_config, users=users)
    rankers: dict[str, np.ndarray] = {"retrieval": np.asarray([e.target + 1 for e in examples])}
    seconds = {}
    for name, path in models.items():
        t0 = time.perf_counter()
        engine = factory(path)
        try:
            rankers[f"{name}-1order"] = choice_ranks(engine, examples, orders=1)
            rankers[name] = choice_ranks(engine, examples, orders=2)
        finally:
            engine.close()
        seconds[name] = round(time.perf_counter() - t0, 1)
    report = tune_validation(rankers)
    report.update({"users_looked_at": looked, "recall": len(examples) / max(1, looked), "seconds": seconds,
                   "models_paths": {k: str(v) for k, v in models.items()}})
    return report
