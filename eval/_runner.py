"""The evaluation runner, in five steps: fit → tune → rank → report → compare (then write the files).

Tuning: a predictor that satisfies ``Tunable`` (a ``tunable: dict[str, list]`` grid and ``set_params``) is
grid-searched on the *validation* targets of the sampled users (and up to ``tune_users`` others) by
``eval._search.grid_search``, and only then are test targets ranked. Test targets never influence a choice.
Settings chosen elsewhere (``tune_predictors`` on a test-like validation split: ``eval.without_last``) come in
as ``run_evaluation(..., preset=...)`` and are applied to the freshly fitted predictors, untuned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from eval._auc import per_user_auc
from eval._config import EvalConfig
from eval._data import Dataset
from eval._errors import EvalError
from eval._interests import interest_prf, predicted_interests
from eval._metrics import (
    METRICS,
    metrics_from_ranks,
    sample_negatives,
    sampled_rank_from_list,
    sampled_rank_from_scores,
)
from eval._outputs import component_config, write_outputs, write_summary
from eval._protocol import FullScorer, Predictor, Ranking, RankRequest, StageAware, Tunable
from eval._ranking import check_unique_names, fit_timed, rank_batched, target_ranks
from eval._results import (
    CandidateRecall,
    Comparison,
    EvalResult,
    EvalSummary,
    Latency,
    ModelReport,
    SampledReport,
    TuningResult,
    run_environment,
)
from eval._search import grid_search, tuning_users
from eval._split import Split
from eval._stats import BootstrapCI, bootstrap_ci, paired_test

__all__ = ["EvalConfig", "EvalResult", "run_evaluation", "sample_users"]


@dataclass(frozen=True, slots=True)
class _Targets:
    """The sampled users' test requests and the item each one should find."""

    users: list[str]
    requests: list[RankRequest]
    items: list[str]


@dataclass(frozen=True, slots=True)
class _Ranked:
    """One predictor's test rankings and the wall seconds of each ``rank`` batch."""

    rankings: list[Ranking]
    batch_seconds: list[float]


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


def run_evaluation(
    dataset: Dataset,
    predictors: Sequence[Predictor],
    split: Split,
    *,
    users: int | Literal["all"] = 200,
    seed: int = 0,
    out_dir: str | Path | None = None,
    tune: bool = True,
    preset: Mapping[str, TuningResult] | None = None,
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
        preset: Settings already chosen (by :func:`tune_predictors`, e.g. on a test-like validation split),
            by predictor name: applied after fitting, recorded as that predictor's tuning, and not searched
            again here.
        **options: Other ``EvalConfig`` fields (``k``, ``batch_size``, ``n_bootstrap``, ``baselines`` ...).

    Returns:
        The result; ``result.summary.to_dict()`` is what ``summary.json`` holds.

    Raises:
        EvalError: On duplicate names, unknown baselines, or a predictor that ranks consumed items or
            returns the wrong number of rankings.
    """
    cfg = EvalConfig(users=users, seed=seed, tune=tune, **options)
    names = check_unique_names(predictors)
    pairs = _comparisons(names, cfg.baselines)  # fail on unknown baselines before any fitting
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    chosen = sample_users(split, cfg.users, cfg.seed)
    targets = _Targets(chosen, split.requests(chosen, "test"), [split.test[u].item_id for u in chosen])
    stages["prepare"] = time.perf_counter() - t0

    fit_seconds = {p.name: fit_timed(p, split, cfg) for p in predictors}
    stages.update({f"fit:{name}": seconds for name, seconds in fit_seconds.items()})
    tuning: dict[str, TuningResult] = {}
    val_users = tuning_users(split, chosen, cfg.tune_users, cfg.seed)  # the same for every predictor
    unknown = set(preset or {}) - set(names)
    if unknown:
        raise EvalError(f"preset settings for predictors not evaluated: {sorted(unknown)}")
    for p in predictors:
        t0 = time.perf_counter()
        if preset and p.name in preset:
            tuned = preset[p.name]
            if not isinstance(p, Tunable):
                raise EvalError(f"{p.name} takes no settings, yet preset has {tuned.best}")
            p.set_params(**tuned.best)
            tuning[p.name] = tuned
            continue
        tuned = grid_search(p, split, val_users, cfg)
        if tuned is not None:
            tuning[p.name] = tuned
            stages[f"tune:{p.name}"] = time.perf_counter() - t0
    ranked: dict[str, _Ranked] = {}
    for p in predictors:
        t0 = time.perf_counter()
        ranked[p.name] = _rank_test(p, targets, cfg)
        stages[f"rank:{p.name}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    per_user = {p.name: _per_user_values(dataset, ranked[p.name].rankings, targets, cfg) for p in predictors}
    for p in predictors:  # AUC of the full ranking: exact from full scores when the predictor has them
        per_user[p.name]["auc"] = per_user_auc(p, ranked[p.name].rankings, targets.requests, targets.items,
                                               split.item_ids)
    models = _report(predictors, split, targets, ranked, per_user, fit_seconds, tuning, cfg)
    significance = _compare(pairs, per_user, cfg)
    stages["score"] = time.perf_counter() - t0

    summary = EvalSummary(
        dataset=dataset.name, split=split.kind, n_users=len(chosen), n_test_users_available=len(split.test),
        catalogue_size=len(split.item_ids), sampled_negatives=cfg.sampled_negatives, models=models,
        significance=significance, stage_seconds=stages, environment=run_environment(),
    )
    result = EvalResult(cfg, chosen, summary, per_user, {n: r.rankings for n, r in ranked.items()}, out)
    if out is not None:
        t0 = time.perf_counter()
        write_outputs(result, dataset, split, predictors, targets.requests, targets.items)
        stages["write"] = time.perf_counter() - t0
    stages["total"] = time.perf_counter() - t_all
    if out is not None:  # rewrite with the final timings
        write_summary(out, summary)
    return result


# -- rank -------------------------------------------------------------------------------------------------
def _rank_test(predictor: Predictor, targets: _Targets, cfg: EvalConfig) -> _Ranked:
    if isinstance(predictor, StageAware):
        predictor.set_stage("test")
    rankings, seconds = rank_batched(predictor, targets.requests, cfg, f"rank {predictor.name}")
    return _Ranked(rankings, seconds)


def _per_user_values(
    dataset: Dataset, ranked: list[Ranking], targets: _Targets, cfg: EvalConfig
) -> dict[str, np.ndarray]:
    """Metric -> one value per user: ranking metrics and interest precision/recall/F1."""
    values = metrics_from_ranks(target_ranks(ranked, targets.items), METRICS)
    prf = np.array(
        [
            interest_prf(
                predicted_interests(dataset, r.item_ids, r.info, cfg.interest_top_n),
                dataset.items[t].genres if t in dataset.items else (),
            )
            for r, t in zip(ranked, targets.items, strict=True)
        ]
    ).reshape(-1, 3)
    values["interest_precision"], values["interest_recall"], values["interest_f1"] = prf.T
    return values


def _report(
    predictors: Sequence[Predictor],
    split: Split,
    targets: _Targets,
    ranked: dict[str, _Ranked],
    per_user: dict[str, dict[str, np.ndarray]],
    fit_seconds: dict[str, float],
    tuning: dict[str, TuningResult],
    cfg: EvalConfig,
) -> dict[str, ModelReport]:
    """One :class:`ModelReport` per predictor, in predictor order."""
    negatives = (
        sample_negatives(split.item_ids, [r.exclude for r in targets.requests], targets.items,
                         cfg.sampled_negatives, cfg.seed)
        if cfg.sampled_negatives
        else []
    )

    def ci(values: np.ndarray) -> BootstrapCI:
        return bootstrap_ci(values, n_resamples=cfg.n_bootstrap, confidence=cfg.confidence, seed=cfg.seed)

    models: dict[str, ModelReport] = {}
    for p in predictors:
        rankings, values = ranked[p.name].rankings, per_user[p.name]
        batch = np.array(ranked[p.name].batch_seconds)
        total = float(batch.sum())
        models[p.name] = ModelReport(
            metrics={m: ci(values[m]) for m in (*METRICS, "auc")},
            interest={k: ci(values[f"interest_{k}"]) for k in ("precision", "recall", "f1")},
            valid_rate=float(np.mean([bool(r.info.get("valid", True)) for r in rankings])) if rankings else float("nan"),
            throughput_users_per_s=len(targets.requests) / total if total > 0 else float("inf"),
            latency_ms_per_user=_latency(batch, len(targets.requests), cfg.batch_size),
            fit_seconds=fit_seconds[p.name],
            config=component_config(p),
            candidate_recall=_candidate_recall(rankings, targets.items, ci),
            tuning=tuning.get(p.name),
            sampled=_sampled(p, split, targets, rankings, negatives, ci) if negatives else None,
        )
    return models


def _latency(batch_seconds: np.ndarray, n_requests: int, batch_size: int) -> Latency:
    sizes = np.array([min(batch_size, n_requests - i) for i in range(0, n_requests, batch_size)])
    per_user_ms = 1000.0 * batch_seconds / np.maximum(sizes, 1)
    if not len(per_user_ms):
        return Latency(float("nan"), float("nan"), float("nan"))
    return Latency(float(per_user_ms.mean()), float(np.median(per_user_ms)), float(np.quantile(per_user_ms, 0.95)))


_DEEPER_RECALL = (20, 30, 50)


def _candidate_recall(rankings: list[Ranking], targets: list[str], ci: Any) -> CandidateRecall | None:
    """A re-ranker can only rank what its candidate stage showed it: recall@N of that stage."""
    if not rankings or not all("candidates" in r.info for r in rankings):
        return None
    hits = np.array([float(t in r.info["candidates"]) for r, t in zip(rankings, targets, strict=True)])
    n = max(len(r.info["candidates"]) for r in rankings)
    # beyond its candidates a re-ranker's ranking is its retriever's order, so the stage's recall at a larger
    # cut-off is the target among the candidates or the next items of the ranking (issue #9: N = 20, 30, 50)
    shortest = min(len(r.item_ids) for r in rankings)
    deeper = {
        m: ci(np.array([float(t in r.info["candidates"] or t in r.item_ids[:m])
                        for r, t in zip(rankings, targets, strict=True)]))
        for m in _DEEPER_RECALL if n < m <= shortest
    }
    return CandidateRecall(ci(hits), n, deeper)


def _sampled(
    predictor: Predictor, split: Split, targets: _Targets, rankings: list[Ranking], negatives: list[list[str]],
    ci: Any,
) -> SampledReport:
    """HR/NDCG@10 against the shared sampled negatives: exact from full scores when the predictor has them."""
    if isinstance(predictor, FullScorer):
        col = {item: i for i, item in enumerate(split.item_ids)}
        scores = predictor.score_all(targets.requests)
        ranks = np.array([sampled_rank_from_scores(scores[i], col[t], [col[n] for n in negatives[i]])
                          for i, t in enumerate(targets.items)])
        exact = True
    else:
        pairs = [sampled_rank_from_list(r.item_ids, t, n) for r, t, n in zip(rankings, targets.items, negatives, strict=True)]
        ranks = np.array([rank for rank, _ in pairs])
        exact = all(e for _, e in pairs)
    return SampledReport({m: ci(v) for m, v in metrics_from_ranks(ranks, ["hr@10", "ndcg@10"]).items()}, exact)


# -- compare ----------------------------------------------------------------------------------------------
def _compare(
    pairs: list[tuple[str, str]], per_user: dict[str, dict[str, np.ndarray]], cfg: EvalConfig
) -> list[Comparison]:
    """Paired tests of each (model, baseline) pair on each significance metric."""
    return [
        Comparison(p, b, metric, paired_test(per_user[p][metric], per_user[b][metric],
                                             n_resamples=cfg.n_bootstrap, confidence=cfg.confidence, seed=cfg.seed))
        for p, b in pairs
        for metric in cfg.significance_metrics
    ]


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
