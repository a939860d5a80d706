"""The evaluation runner: fit, tune on validation, rank test targets, score, and write the results.

Validation tuning: a predictor that satisfies ``Tunable`` (a ``tunable: dict[str, list]`` grid and
``set_params(**params)``) is tried on every grid point (the Cartesian product) against the *validation*
targets of the sampled users; the setting with the best NDCG@10 is kept (ties: the first in grid order)
and only then are test targets ranked. Test targets never influence a choice.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval._data import Dataset
from eval._interests import interest_prf, predicted_interests
from eval._metrics import (
    METRICS,
    metrics_from_ranks,
    sample_negatives,
    sampled_rank_from_list,
    sampled_rank_from_scores,
    target_rank,
)
from eval._outputs import component_config, write_outputs, write_summary
from eval._protocol import FullScorer, Predictor, Ranking, RankRequest, Tunable
from eval._split import Split
from eval._stats import bootstrap_ci, paired_test
from eval.errors import EvalError

__all__ = ["EvalConfig", "EvalResult", "run_evaluation", "sample_users"]


class EvalConfig(BaseModel):
    """Settings of one evaluation run (written to ``config.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: int | Literal["all"] = Field(200, description="evaluated users: a seeded sample size, or all")
    seed: int = 0
    k: int = Field(50, ge=20, description="ranking length requested and stored per user")
    tune: bool = True
    fit: bool = Field(True, description="call predictor.fit; False for predictors that are already fitted")
    batch_size: int = Field(64, ge=1, description="requests per rank() call")
    n_bootstrap: int = Field(1000, ge=10)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    sampled_negatives: int = Field(100, ge=0, description="0 disables the sampled-negatives table")
    interest_top_n: int = Field(3, ge=1, description="top items whose genres stand for a model's interests")
    baselines: list[str] | None = Field(
        None, description="models every other model is tested against; None = every model listed before it"
    )
    significance_metrics: list[str] = ["ndcg@10", "hr@10", "mrr@10"]
    progress: bool = True

    @field_validator("users")
    @classmethod
    def _positive_users(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("users must be >= 1 or 'all'")
        return value


@dataclass(slots=True)
class EvalResult:
    """What a run produced.

    Attributes:
        config: The run's settings.
        users: Evaluated users, in order.
        summary: Everything in ``summary.json``.
        per_user: Model -> metric -> per-user values (aligned with ``users``).
        rankings: Model -> test rankings (aligned with ``users``).
        out_dir: Where files were written, if anywhere.
    """

    config: EvalConfig
    users: list[str]
    summary: dict[str, Any]
    per_user: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    rankings: dict[str, list[Ranking]] = field(default_factory=dict)
    out_dir: Path | None = None


def sample_users(split: Split, users: int | Literal["all"], seed: int) -> list[str]:
    """A seeded sample of the split's test users (all of them for ``"all"`` or a size >= their number).

    The sample keeps dataset order, so the same seed gives the same list.
    """
    eligible = split.test_users
    if users == "all" or users >= len(eligible):
        return eligible
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(eligible), size=int(users), replace=False))
    return [eligible[i] for i in chosen]


def _rank_batched(
    predictor: Predictor, requests: list[RankRequest], k: int, batch_size: int, progress: bool, desc: str
) -> tuple[list[Ranking], list[float]]:
    """Rank in batches; return rankings and per-batch wall seconds."""
    from tqdm.auto import tqdm

    rankings: list[Ranking] = []
    seconds: list[float] = []
    for start in tqdm(range(0, len(requests), batch_size), desc=desc, disable=not progress, leave=False):
        batch = requests[start : start + batch_size]
        t0 = time.perf_counter()
        out = predictor.rank(batch, k)
        seconds.append(time.perf_counter() - t0)
        if len(out) != len(batch):
            raise EvalError(f"{predictor.name}.rank returned {len(out)} rankings for {len(batch)} requests")
        for request, ranking in zip(batch, out, strict=True):
            leaked = request.exclude.intersection(ranking.item_ids)
            if leaked:
                raise EvalError(f"{predictor.name} ranked consumed items {sorted(leaked)[:3]} for {request.user_id}")
        rankings.extend(out)
    return rankings, seconds


def _ranks(rankings: list[Ranking], targets: list[str]) -> np.ndarray:
    return np.array([target_rank(r.item_ids, t) for r, t in zip(rankings, targets, strict=True)])


def _tune(
    predictor: Any, split: Split, users: list[str], cfg: EvalConfig
) -> dict[str, Any] | None:
    if not cfg.tune or not isinstance(predictor, Tunable) or not predictor.tunable:
        return None
    val_users = [u for u in users if u in split.val]
    if not val_users:
        return None
    requests = split.requests(val_users, "val")
    targets = [split.val[u].item_id for u in val_users]
    names = list(predictor.tunable)
    if hasattr(predictor, "set_stage"):  # lets a predictor skip work that validation metrics don't read
        predictor.set_stage("val")
    results = []
    best: tuple[float, dict[str, Any]] | None = None
    for values in itertools.product(*(predictor.tunable[n] for n in names)):
        params = dict(zip(names, values, strict=True))
        predictor.set_params(**params)
        rankings, _ = _rank_batched(
            predictor, requests, cfg.k, cfg.batch_size, cfg.progress, f"tune {predictor.name} {params}"
        )
        score = float(metrics_from_ranks(_ranks(rankings, targets), ["ndcg@10"])["ndcg@10"].mean())
        results.append({"params": params, "ndcg@10": score})
        if best is None or score > best[0]:
            best = (score, params)
    assert best is not None
    predictor.set_params(**best[1])
    return {"grid": predictor.tunable, "results": results, "best": best[1], "best_ndcg@10": best[0], "n_users": len(val_users)}


def run_evaluation(
    dataset: Dataset,
    predictors: Sequence[Predictor],
    split: Split,
    *,
    users: int | Literal["all"] = 200,
    seed: int = 0,
    out_dir: str | Path | None = None,
    tune: bool = True,
    **options: Any,
) -> EvalResult:
    """Evaluate predictors on a split: fit on all training data, tune on validation, score test targets.

    Args:
        dataset: The data the split came from (item genres for interest metrics, provenance).
        predictors: Models to evaluate; names must be unique.
        split: Leave-one-out or temporal split.
        users: Size of the seeded sample of test users, or ``"all"``.
        seed: Seed for the user sample, the sampled negatives and the bootstrap.
        out_dir: If given, write config.json, rankings.jsonl, summary.json, results.md and metrics.png.
        tune: Run the validation grid search of ``Tunable`` predictors.
        **options: Other ``EvalConfig`` fields (``k``, ``batch_size``, ``n_bootstrap``, ``baselines`` ...).

    Returns:
        The result; ``result.summary`` is what ``summary.json`` holds.

    Raises:
        EvalError: On duplicate names, or a predictor that ranks consumed items or returns the wrong count.
    """
    cfg = EvalConfig(users=users, seed=seed, tune=tune, **options)
    names = [p.name for p in predictors]
    if len(set(names)) != len(names):
        raise EvalError(f"predictor names must be unique: {names}")
    _comparisons(names, cfg.baselines)  # fail on unknown baselines before any fitting
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    stage_seconds: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    chosen = sample_users(split, cfg.users, cfg.seed)
    requests = split.requests(chosen, "test")
    targets = [split.test[u].item_id for u in chosen]
    stage_seconds["prepare"] = time.perf_counter() - t0

    fit_seconds: dict[str, float] = {}
    for p in predictors:
        t0 = time.perf_counter()
        if cfg.fit:
            p.fit(split)
        fit_seconds[p.name] = time.perf_counter() - t0
        stage_seconds[f"fit:{p.name}"] = fit_seconds[p.name]

    tuning: dict[str, Any] = {}
    for p in predictors:
        t0 = time.perf_counter()
        result = _tune(p, split, chosen, cfg)
        if result is not None:
            tuning[p.name] = result
            stage_seconds[f"tune:{p.name}"] = time.perf_counter() - t0

    rankings: dict[str, list[Ranking]] = {}
    batch_seconds: dict[str, list[float]] = {}
    for p in predictors:
        t0 = time.perf_counter()
        if hasattr(p, "set_stage"):
            p.set_stage("test")
        rankings[p.name], batch_seconds[p.name] = _rank_batched(
            p, requests, cfg.k, cfg.batch_size, cfg.progress, f"rank {p.name}"
        )
        stage_seconds[f"rank:{p.name}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    per_user: dict[str, dict[str, np.ndarray]] = {}
    models: dict[str, Any] = {}
    negatives = (
        sample_negatives(split.item_ids, [r.exclude for r in requests], targets, cfg.sampled_negatives, cfg.seed)
        if cfg.sampled_negatives
        else []
    )
    col = {item: i for i, item in enumerate(split.item_ids)}

    def ci(values: np.ndarray) -> dict[str, Any]:
        return bootstrap_ci(values, n_resamples=cfg.n_bootstrap, confidence=cfg.confidence, seed=cfg.seed).to_dict()

    for p in predictors:
        ranked = rankings[p.name]
        values = metrics_from_ranks(_ranks(ranked, targets), METRICS)
        prf = np.array(
            [
                interest_prf(
                    predicted_interests(dataset, r.item_ids, r.info, cfg.interest_top_n),
                    dataset.items[t].genres if t in dataset.items else (),
                )
                for r, t in zip(ranked, targets, strict=True)
            ]
        ).reshape(-1, 3)
        values["interest_precision"], values["interest_recall"], values["interest_f1"] = prf.T
        per_user[p.name] = values
        batch = np.array(batch_seconds[p.name])
        sizes = np.array([min(cfg.batch_size, len(requests) - i) for i in range(0, len(requests), cfg.batch_size)])
        per_user_ms = 1000.0 * batch / np.maximum(sizes, 1)
        total = float(batch.sum())
        entry: dict[str, Any] = {
            "metrics": {m: ci(values[m]) for m in METRICS},
            "interest": {
                "precision": ci(values["interest_precision"]),
                "recall": ci(values["interest_recall"]),
                "f1": ci(values["interest_f1"]),
            },
            "valid_rate": float(np.mean([bool(r.info.get("valid", True)) for r in ranked])) if ranked else float("nan"),
            "throughput_users_per_s": len(requests) / total if total > 0 else float("inf"),
            "latency_ms_per_user": {
                "mean": float(per_user_ms.mean()) if len(per_user_ms) else float("nan"),
                "p50_batch": float(np.median(per_user_ms)) if len(per_user_ms) else float("nan"),
                "p95_batch": float(np.quantile(per_user_ms, 0.95)) if len(per_user_ms) else float("nan"),
            },
            "fit_seconds": fit_seconds[p.name],
            "config": component_config(p),
        }
        if ranked and all("candidates" in r.info for r in ranked):
            # a re-ranker can only rank what its candidate stage showed it: recall@N of that stage
            hits = np.array([float(t in r.info["candidates"]) for r, t in zip(ranked, targets, strict=True)])
            entry["candidate_recall"] = ci(hits) | {"n": max(len(r.info["candidates"]) for r in ranked)}
        if p.name in tuning:
            entry["tuning"] = tuning[p.name]
        if negatives:
            if isinstance(p, FullScorer):
                scores = p.score_all(requests)
                sranks = np.array(
                    [
                        sampled_rank_from_scores(scores[i], col[t], [col[n] for n in negatives[i]])
                        for i, t in enumerate(targets)
                    ]
                )
                exact = True
            else:
                pairs = [sampled_rank_from_list(r.item_ids, t, n) for r, t, n in zip(ranked, targets, negatives, strict=True)]
                sranks = np.array([rank for rank, _ in pairs])
                exact = all(e for _, e in pairs)
            sm = metrics_from_ranks(sranks, ["hr@10", "ndcg@10"])
            entry["sampled"] = {m: ci(v) for m, v in sm.items()} | {"exact": exact}
        models[p.name] = entry

    significance = []
    for p, b in _comparisons(names, cfg.baselines):
        for metric in cfg.significance_metrics:
            test = paired_test(
                per_user[p][metric], per_user[b][metric],
                n_resamples=cfg.n_bootstrap, confidence=cfg.confidence, seed=cfg.seed,
            )
            significance.append({"model": p, "baseline": b, "metric": metric, **test.to_dict()})
    stage_seconds["score"] = time.perf_counter() - t0

    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "split": split.kind,
        "n_users": len(chosen),
        "n_test_users_available": len(split.test),
        "protocol": "full ranking over the catalogue, previously consumed items excluded",
        "catalogue_size": len(split.item_ids),
        "sampled_negatives": cfg.sampled_negatives,
        "models": models,
        "significance": significance,
        "stage_seconds": stage_seconds,
    }
    result = EvalResult(cfg, chosen, summary, per_user, rankings, out)
    if out is not None:
        t0 = time.perf_counter()
        write_outputs(result, dataset, split, predictors, requests, targets)
        stage_seconds["write"] = time.perf_counter() - t0
    stage_seconds["total"] = time.perf_counter() - t_all
    if out is not None:  # rewrite with the final timings
        write_summary(out, summary)
    return result


def _comparisons(names: list[str], baselines: list[str] | None) -> list[tuple[str, str]]:
    """(model, baseline) pairs: every model against each named baseline, or, with no baselines named,
    every model against each model listed before it (so ``pop, lstm, memory, agent`` tests each model
    against all simpler ones once)."""
    if baselines is None:
        return [(p, b) for i, p in enumerate(names) for b in names[:i]]
    unknown = set(baselines) - set(names)
    if unknown:
        raise EvalError(f"baselines {sorted(unknown)} are not among the predictors {names}")
    return [(p, b) for p in names for b in baselines if b != p]
