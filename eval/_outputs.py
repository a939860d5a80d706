"""Writing a run's files: config.json, rankings.jsonl, summary.json, results.md, metrics.png (atomically)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval._data import Dataset
from eval._metrics import target_rank
from eval._plots import plot_metrics
from eval._protocol import Predictor, RankRequest
from eval._report import results_markdown
from eval._results import EvalResult, EvalSummary
from eval._split import Split

__all__ = ["component_config", "jsonable", "write_outputs", "write_summary"]


def component_config(predictor: Any) -> dict[str, Any]:
    """A predictor's class name and its pydantic config, for provenance."""
    from pydantic import BaseModel

    config = getattr(predictor, "config", None)
    dumped = config.model_dump(mode="json") if isinstance(config, BaseModel) else {}
    return {"class": type(predictor).__name__, **dumped}


def write_summary(out: Path, summary: EvalSummary | Mapping[str, Any]) -> None:
    """(Re)write ``summary.json``."""
    data = summary.to_dict() if isinstance(summary, EvalSummary) else summary
    _atomic_write(out / "summary.json", json.dumps(jsonable(data), indent=2))


def jsonable(obj: Any) -> Any:
    """Make numpy scalars, non-finite floats (null) and pydantic values (e.g. a tuned ``ContextWeights``)
    JSON-safe."""
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        return jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN/Infinity
    return obj


def write_outputs(
    result: EvalResult,
    dataset: Dataset,
    split: Split,
    predictors: Sequence[Predictor],
    requests: list[RankRequest],
    targets: list[str],
) -> None:
    """Write every output file of a run into ``result.out_dir``."""
    out = result.out_dir
    assert out is not None
    config = {
        "eval": result.config.model_dump(mode="json"),
        "dataset": {
            "name": dataset.name,
            "meta": dataset.meta,
            "n_users": len(dataset.sequences),
            "n_items": len(dataset.items),
            "n_interactions": len(dataset.interactions),
        },
        "split": {
            "kind": split.kind,
            "cut": split.cut,
            "n_test_users": len(split.test),
            "n_train_interactions": sum(len(v) for v in split.train.values()),
        },
        "predictors": {p.name: component_config(p) for p in predictors},
        "users": result.users,
    }
    _atomic_write(out / "config.json", json.dumps(jsonable(config), indent=2, default=str))
    lines = []
    stage = "test"
    for name, ranked in result.rankings.items():
        for user, request, target, ranking in zip(result.users, requests, targets, ranked, strict=True):
            rank = target_rank(ranking.item_ids, target)
            lines.append(
                json.dumps(
                    {
                        "model": name,
                        "user_id": user,
                        "stage": stage,
                        "now": request.now,
                        "target": target,
                        "target_rank": None if rank == float("inf") else int(rank),
                        "item_ids": ranking.item_ids,
                        "scores": [round(float(s), 6) for s in ranking.scores],
                        "info": ranking.info,
                    },
                    default=str,
                )
            )
    _atomic_write(out / "rankings.jsonl", "\n".join(lines) + "\n")
    summary = result.summary.to_dict()
    write_summary(out, summary)
    _atomic_write(out / "results.md", results_markdown(summary))
    plot_metrics(summary, out / "metrics.png")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
