"""The grid search that chooses a ``Tunable`` predictor's settings on validation targets, and the users it reads.

Best NDCG@10 wins, except that a predictor's ``tune_reference`` setting (the agent's: no LLM weight) stays unless
the best grid point beats it on the same users with paired bootstrap and Wilcoxon p < ``EvalConfig.tune_alpha``:
a flat grid does not promote noise. :func:`tune_predictors` runs it on a split of its own (a test-like
validation: ``leave_one_out(without_last(dataset))``, whose test targets are the real validation items) for
``run_evaluation(..., preset=...)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from eval._config import EvalConfig
from eval._errors import EvalError
from eval._metrics import metrics_from_ranks
from eval._protocol import Predictor, StageAware, Tunable
from eval._ranking import check_unique_names, fit_timed, rank_batched, target_ranks
from eval._results import Trial, TuningResult
from eval._split import Split
from eval._stats import paired_test

__all__ = ["grid_search", "tune_predictors", "tuning_users"]


def tuning_users(split: Split, chosen: Sequence[str], n: int | None, seed: int) -> list[str]:
    """The users whose validation targets the grid search reads: ``chosen`` (those with a validation target)
    and, up to ``n`` in all, a seeded sample of the split's other users with one, in dataset order."""
    own = [u for u in chosen if u in split.val]
    if n is None or n <= len(own):
        return own
    taken = set(own)
    others = [u for u in split.val if u not in taken]
    rng = np.random.default_rng([seed, 1])  # its own stream: the test sample stays as it is
    extra = {others[i] for i in rng.choice(len(others), size=min(n - len(own), len(others)), replace=False)}
    return own + [u for u in others if u in extra]


def tune_predictors(
    predictors: Sequence[Predictor],
    split: Split,
    users: Sequence[str],
    *,
    stage: Literal["val", "test"] = "val",
    on: str = "validation",
    seed: int = 0,
    **options: Any,
) -> dict[str, TuningResult]:
    """Fit ``predictors`` on ``split``'s training data and grid-search each ``Tunable`` one on ``users``'
    ``stage`` targets (the same rule as :func:`run_evaluation`'s: best NDCG@10, a reference kept unless
    beaten with p < ``tune_alpha``). Returns the results by predictor name (the best settings are left
    applied), for ``run_evaluation(..., preset=...)``.

    ``stage="test"`` reads the split's test targets: only for a split whose test targets are another
    split's validation items, as in ``leave_one_out(without_last(ds))``; ``on`` names them in the report.

    Raises:
        EvalError: Duplicate names, or a user without a ``stage`` target.
    """
    cfg = EvalConfig(seed=seed, **options)
    check_unique_names(predictors)
    targets = split.test if stage == "test" else split.val
    missing = [u for u in users if u not in targets]
    if missing:
        raise EvalError(f"{len(missing)} users have no {stage} target in this split, e.g. {missing[:3]}")
    out: dict[str, TuningResult] = {}
    for p in predictors:
        fit_timed(p, split, cfg)
    for p in predictors:
        tuned = grid_search(p, split, list(users), cfg, stage=stage, on=on)
        if tuned is not None:
            out[p.name] = tuned
    return out


def grid_search(predictor: Predictor, split: Split, users: list[str], cfg: EvalConfig,
                stage: Literal["val", "test"] = "val", on: str = "validation") -> TuningResult | None:
    """Grid search on ``users``' ``stage`` targets (validation, or a test-like split's test targets: ``on`` names
    them); the best setting is left applied. None for a predictor with nothing to tune."""
    if not cfg.tune or not isinstance(predictor, Tunable) or not predictor.tunable:
        return None
    val_users = list(users)
    if not val_users:
        return None
    requests = split.requests(val_users, stage)
    targets = [split.target(u, stage).item_id for u in val_users]
    grid = predictor.tunable
    names = list(grid)
    if isinstance(predictor, StageAware):  # lets a predictor skip work that validation metrics don't read
        predictor.set_stage("val", targets=dict(zip(val_users, targets, strict=True)))
    reference = getattr(predictor, "tune_reference", None)
    if reference is not None:
        reference = dict(reference)
        if set(reference) != set(names) or any(reference[n] not in grid[n] for n in names):
            raise EvalError(f"{predictor.name}: tune_reference {reference} is not a point of its grid {grid}")
    trials: list[Trial] = []
    per_user: list[np.ndarray] = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values, strict=True))
        predictor.set_params(**params)
        rankings, _ = rank_batched(predictor, requests, cfg, f"tune {predictor.name} {params}")
        ndcg = metrics_from_ranks(target_ranks(rankings, targets), ["ndcg@10"])["ndcg@10"]
        trials.append(Trial(params, float(ndcg.mean())))
        per_user.append(np.asarray(ndcg, dtype=np.float64))
    top = max(range(len(trials)), key=lambda i: (trials[i].ndcg_at_10, -i))  # ties: the first in grid order
    best, against = trials[top], None
    if reference is not None:
        ref = next(i for i, t in enumerate(trials) if t.params == reference)
        test = paired_test(per_user[top], per_user[ref], n_resamples=cfg.n_bootstrap, confidence=cfg.confidence,
                           seed=cfg.seed)
        won = top != ref and test.mean_diff > 0 and max(test.p_bootstrap, test.p_wilcoxon) < cfg.tune_alpha
        against = {"best_grid_point": trials[top].params, **test.to_dict(), "alpha": cfg.tune_alpha,
                   "kept": "best grid point" if won else "reference"}
        best = trials[top] if won else trials[ref]
    predictor.set_params(**best.params)
    return TuningResult(grid=grid, trials=trials, best=best.params, best_ndcg_at_10=best.ndcg_at_10,
                        n_users=len(val_users), reference=reference, against_reference=against, on=on)
