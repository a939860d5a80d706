"""Fitting and batched ranking, shared by the evaluation run (``eval._runner``) and the grid search
(``eval._search``): every answer is checked (one ranking per request, no consumed item ranked)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from eval._config import EvalConfig
from eval._errors import EvalError
from eval._metrics import target_rank
from eval._protocol import Predictor, Ranking, RankRequest
from eval._split import Split

__all__ = ["check_unique_names", "fit_timed", "rank_batched", "target_ranks"]


def check_unique_names(predictors: Sequence[Predictor]) -> list[str]:
    """The predictors' names; raises ``EvalError`` if two share one."""
    names = [p.name for p in predictors]
    if len(set(names)) != len(names):
        raise EvalError(f"predictor names must be unique: {names}")
    return names


# -- fit --------------------------------------------------------------------------------------------------
def fit_timed(predictor: Predictor, split: Split, cfg: EvalConfig) -> float:
    """Fit on the split's training data (unless the run says predictors come fitted); return seconds."""
    t0 = time.perf_counter()
    if cfg.fit:
        predictor.fit(split)
    return time.perf_counter() - t0


def rank_batched(
    predictor: Predictor, requests: list[RankRequest], cfg: EvalConfig, desc: str
) -> tuple[list[Ranking], list[float]]:
    """Rank in batches, checking each answer; return rankings and per-batch wall seconds."""
    from tqdm.auto import tqdm

    rankings: list[Ranking] = []
    seconds: list[float] = []
    size = cfg.batch_size
    for start in tqdm(range(0, len(requests), size), desc=desc, disable=not cfg.progress, leave=False):
        batch = requests[start : start + size]
        t0 = time.perf_counter()
        out = predictor.rank(batch, cfg.k)
        seconds.append(time.perf_counter() - t0)
        if len(out) != len(batch):
            raise EvalError(f"{predictor.name}.rank returned {len(out)} rankings for {len(batch)} requests")
        for request, ranking in zip(batch, out, strict=True):
            leaked = request.exclude.intersection(ranking.item_ids)
            if leaked:
                raise EvalError(f"{predictor.name} ranked consumed items {sorted(leaked)[:3]} for {request.user_id}")
        rankings.extend(out)
    return rankings, seconds


def target_ranks(rankings: list[Ranking], targets: list[str]) -> np.ndarray:
    return np.array([target_rank(r.item_ids, t) for r, t in zip(rankings, targets, strict=True)])


# -- report -----------------------------------------------------------------------------------------------
