"""The harness's side of LLM tuning: training data from a split's training part only, and the validation
measure of the tuned re-ranker (the LLM alone against the retrieval order, candidates in two orders).

The agent's example builder never sees a :class:`Split`: this module passes it the training sequences and
the split's validation and test targets as forbidden ``(user, item)`` pairs, which it refuses to train on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval._data import Dataset
from eval._split import Split
from eval._stats import bootstrap_ci, paired_test

log = logging.getLogger(__name__)

__all__ = ["COMMITTED_MODELS", "choice_probs", "committed_item_head", "forbidden_pairs", "item_head_on_split", "validate_item_head", "rank_metrics", "ranks_from_probs", "tune_items",
           "tune_on_split", "tune_validation", "validate_model", "validation_examples", "validation_report"]


#: tuned models committed with the code (``models/`` at the repository root): a folder there whose name
#: (base + key) matches what a split's training data would produce is used instead of training again
COMMITTED_MODELS = Path(__file__).resolve().parents[1] / "models"


def tune_items(dataset: Dataset) -> list[Any]:
    """The catalogue as :class:`agent.CatalogItem` (title with year, genres) for the tuning prompts."""
    from agent import CatalogItem

    return [CatalogItem(item_id=it.item_id, title=(f"{it.title} ({it.year})" if it.year else it.title)[:300],
                        categories=tuple(it.genres)) for it in dataset.items.values()]


def forbidden_pairs(split: Split) -> list[tuple[str, str]]:
    """Every ``(user, item)`` the split holds out (validation and test targets)."""
    return [(u, t.item_id) for u, t in split.val.items()] + [(u, t.item_id) for u, t in split.test.items()]


def choice_probs(engine: Any, examples: Sequence[Any], orders: int = 2) -> np.ndarray:
    """Letter probabilities per example, in the examples' own candidate order, for ``orders`` orders
    (0: as given; 1: reversed): an array ``(orders, len(examples), n)``."""
    from agent import LETTERS, reorder

    n = len(examples[0].candidates)
    perms = [list(range(n)), list(range(n))[::-1]][:orders]
    out = np.zeros((len(perms), len(examples), n))
    for j, perm in enumerate(perms):
        shown = [reorder(e, perm) for e in examples]
        res = engine.score_choices([e.prompt for e in shown], LETTERS[:n])
        for row, r in enumerate(res):
            out[j, row, perm] = np.asarray(r.probs)  # back to the original candidate order
    return out


def ranks_from_probs(probs: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """Target rank (1 = first) per row of ``probs`` ``(users, n)``; ties count against the target."""
    ranks = []
    for p, t in zip(probs, targets, strict=True):
        ranks.append(1 + int(np.sum(p > p[t])) + int(np.sum(np.delete(p, t) == p[t])))
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


def validation_examples(split: Split, data_config: Any, users: Sequence[str]) -> tuple[list[Any], int]:
    """``users``' validation targets with the example retriever's top candidates after the whole training
    sequence, in retrieval order (users it misses are left out); and how many users were looked at."""
    from agent import ranked_examples

    targets = {u: split.val[u].item_id for u in users if u in split.val}
    return ranked_examples(split.train, targets, tune_items(split.dataset), data_config, users=users)


def validate_model(split: Split, path: Any, data_config: Any, users: Sequence[str],
                   engine_factory: Any = None) -> dict[str, Any]:
    """One model's letter probabilities on the validation examples, both orders, per user (JSON-able).
    Reads no test target."""
    import time

    from agent import VLLMEngine

    examples, looked = validation_examples(split, data_config, users)
    factory = engine_factory or (lambda p: VLLMEngine.from_model(str(p)))
    t0 = time.perf_counter()
    engine = factory(path)
    try:
        probs = choice_probs(engine, examples, orders=2)
    finally:
        engine.close()
    return {"model": str(path), "seconds": round(time.perf_counter() - t0, 1), "looked": looked,
            "users": [e.user_id for e in examples], "targets": [e.target for e in examples],
            "probs": probs.round(6).tolist()}


def validation_report(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Combine :func:`validate_model` runs (same users) into means, CIs and paired tests against the
    retrieval order, each model with one order (as given) and two orders averaged."""
    first = next(iter(runs.values()))
    targets = first["targets"]
    rankers: dict[str, np.ndarray] = {"retrieval": np.asarray(targets) + 1}
    for name, run in runs.items():
        if run["users"] != first["users"]:
            raise ValueError(f"run {name} has other users than {next(iter(runs))}")
        probs = np.asarray(run["probs"])
        rankers[f"{name}-1order"] = ranks_from_probs(probs[0], targets)
        rankers[name] = ranks_from_probs(probs.mean(axis=0), targets)
    report = tune_validation(rankers)
    report.update({"users_looked_at": first["looked"], "recall": len(targets) / max(1, first["looked"]),
                   "seconds": {k: v["seconds"] for k, v in runs.items()},
                   "models_paths": {k: v["model"] for k, v in runs.items()}})
    return report


def item_head_on_split(split: Split, config: Any = None, *, train: bool = True, home: Any = None,
                       progress: bool = True, log_file: Any = None, time_budget_s: float | None = None,
                       base: Any = None, device: str | None = None, trunk_cache_gib: float = 4.0) -> Any:
    """The item-head model tuned on ``split``'s training sequences only (validation and test targets are
    forbidden pairs): from the cache or :data:`COMMITTED_MODELS` when the key matches, else trained here
    (``train=False``: None instead of training). ``base``: a prepared model folder (default: the embedded
    model), e.g. ``agent.model_dir(name="qwen2.5-coder-0.5b-instruct")``. ``device``: where training runs
    (None: CUDA when torch sees it, else the CPU). ``trunk_cache_gib``: see :func:`agent.tune_item_head`."""
    from agent import ItemHeadConfig, find_item_head, tune_item_head
    from eval._branch import SASREC, fitted_branch, resolve_branch

    asked = config or ItemHeadConfig()
    config = resolve_branch(asked, split)  # {"branch": "sasrec"}: SASRec fitted on this split, by its name
    items = tune_items(split.dataset)
    kw = {"home": home, "seeds": [COMMITTED_MODELS], "base": None if base is None else Path(base)}
    fits_branch = asked.branch == SASREC
    if not train or fits_branch:  # a cached head needs no SASRec fit (tune_item_head looks the cache up itself)
        found = find_item_head(split.train, items, forbidden_pairs(split), config, **kw)
        if found is not None or not train:
            return found
    extra: dict[str, Any] = {"dataset": split.dataset.name, "split": f"{split.kind} (training sequences only)"}
    branch = None
    if fits_branch:
        branch, extra["branch"] = fitted_branch(split, [it.item_id for it in items])
    elif config.branch is not None:
        raise ValueError(f"the harness trains only the {SASREC!r} branch (SASRec fitted on the split), not "
                         f"{config.branch!r}: give {{\"branch\": \"{SASREC}\"}}")
    return tune_item_head(split.train, items, forbidden_pairs(split), config, progress=progress, log_file=log_file,
                          time_budget_s=time_budget_s, device=device, trunk_cache_gib=trunk_cache_gib,
                          extra=extra, branch=branch, **kw)


def committed_item_head(catalog: str) -> Any:
    """The item-head model tuned for the catalogue named ``catalog``, as ``tide predict`` uses it: for
    ``ml-100k``, the one tuned on its leave-one-out training sequences with the default config (cached or
    committed, never trained here); None for other catalogues, or when the base model is not prepared."""
    from agent import ModelPreparationError

    if catalog != "ml-100k":
        return None
    from eval._data import load_ml100k
    from eval._split import leave_one_out

    try:
        return item_head_on_split(leave_one_out(load_ml100k()), train=False)
    except ModelPreparationError as exc:
        log.warning("no item-head model: %s", exc)
        return None


def validate_item_head(split: Split, folder: Any, users: Sequence[str], data_config: Any = None,
                       progress: bool = True) -> dict[str, Any]:
    """The item-head model alone on ``users``' validation targets that the example retriever's top 20 holds
    (after the whole training sequence; the others are left out: re-ranking cannot move them): the target's
    rank among those candidates against the retrieval order's (paired), and on the same users the model's
    own full-catalogue NDCG@10 (training items masked). Reads no test target."""
    import time

    from tqdm.auto import tqdm

    from agent import ItemHeadScorer, TuneDataConfig
    from eval._branch import branch_from_manifest

    examples, looked = validation_examples(split, data_config or TuneDataConfig(), users)
    titles = {it.item_id: it.title for it in tune_items(split.dataset)}
    t0 = time.perf_counter()
    scorer = ItemHeadScorer(Path(folder), titles, branch=branch_from_manifest(folder))
    ranks, full = [], []
    for e in tqdm(examples, desc="item head (validation)", disable=not progress):
        s = scorer.scores([split.train[e.user_id]])[0]
        c = s[[scorer.index[i] for i in e.candidates]]
        ranks.append(1 + int(np.sum(c > c[e.target])))
        s[[scorer.index[i] for i in split.train[e.user_id]]] = -np.inf
        target = scorer.index[e.candidates[e.target]]
        r = 1 + int(np.sum(s > s[target]))
        full.append(1.0 / np.log2(r + 1) if r <= 10 else 0.0)
    report = tune_validation({"retrieval": np.asarray([e.target + 1 for e in examples]),
                              "item-head": np.asarray(ranks)})
    report.update({"users_looked_at": looked, "recall": len(examples) / max(1, looked),
                   "full_ndcg@10_same_users": bootstrap_ci(np.asarray(full)).to_dict(),
                   "seconds": round(time.perf_counter() - t0, 1), "model": str(folder)})
    return report
