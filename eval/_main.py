"""The main job: MovieLens-100k into a memory store, four models evaluated, one user shown.

``tide eval`` calls :func:`run_main`, which returns a :class:`MainResult` and prints nothing; the CLI prints
:func:`format_main` of it. Stages are timed and written with the results (``main.json``).
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from eval._assemble import build_predictors, item_head_folder, llm_model_folder, start_engine
from eval._data import Dataset, load_ml100k
from eval._errors import EvalError
from eval._mainconfig import SYNTHETIC_HABITS, SYNTHETIC_HABITS_USERS, MainConfig, MainResult
from eval._protocol import LLMTimed
from eval._results import TuningResult
from eval._runner import run_evaluation, sample_users
from eval._search import tune_predictors, tuning_users
from eval._show import show_user
from eval._split import Split, leave_one_out, temporal_split, without_last

__all__ = ["run_main"]


def _load(name: str, seed: int = 0) -> Dataset:
    if name == "ml-100k":
        return load_ml100k()
    if name == SYNTHETIC_HABITS:  # the data ``scripts/context_eval.py`` measures context on; seeded by ``seed``
        from eval._synthetic import make_synthetic

        return make_synthetic(n_users=SYNTHETIC_HABITS_USERS, seed=seed, habits=True)[0]
    path = Path(name)
    if path.is_dir():
        return load_ml100k(path)
    raise EvalError(f"unknown dataset {name!r}: use ml-100k, {SYNTHETIC_HABITS} or a path to an ml-100k folder")


def _split(ds: Dataset, cfg: MainConfig) -> Split:
    if cfg.split == "loo":
        return leave_one_out(ds)
    return temporal_split(ds, quantile=cfg.temporal_cut)


def run_main(cfg: MainConfig) -> MainResult:
    """Run the evaluation and (with the memory or agent model) show one user's prediction and summary.

    Writes the runner's files and ``main.json`` into ``cfg.out``; prints nothing (progress bars go to
    stderr). The memory store and the engine are closed on every path.

    Raises:
        EvalError: An unknown dataset, or ``show_user`` is not a test user of the split (checked before
            any model is fitted).
    """
    stages: dict[str, float] = {}
    t = time.perf_counter()
    ds = _load(cfg.dataset, cfg.seed)
    split = _split(ds, cfg)
    stages["load+split"] = time.perf_counter() - t
    if cfg.show_user not in (None, "auto") and cfg.show_user not in split.test:
        raise EvalError(f"user {cfg.show_user!r} is not a test user of this split")
    if cfg.testlike and cfg.split != "loo":
        raise EvalError("test-like validation (eval.without_last) needs the leave-one-out split")
    cfg.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as resources:
        llm_model = llm_model_folder(cfg, split, stages)
        item_head = item_head_folder(cfg, split, stages)
        engine = start_engine(cfg, resources, stages, llm_model)
        preset, testlike_head = (_testlike_tuning(cfg, ds, split, engine, item_head, stages) if cfg.testlike
                                 else (None, None))
        predictors, agent, sync = build_predictors(cfg, ds, resources, stages, engine, item_head)
        t = time.perf_counter()
        # each model is compared with every simpler one listed before it
        result = run_evaluation(ds, predictors, split, users=cfg.users, seed=cfg.seed, out_dir=cfg.out,
                                n_bootstrap=cfg.n_bootstrap, tune_alpha=cfg.tune_alpha, tune_users=cfg.tune_users,
                                preset=preset)
        stages["evaluate"] = time.perf_counter() - t
        if sync is not None:
            stages["memory ingest (inside evaluate)"] = sync.seconds
        for p in predictors:
            if isinstance(p, LLMTimed):
                stages["agent LLM (inside evaluate)"] = p.llm_seconds
        shown = None
        if cfg.show_user and agent is not None:
            from eval._tide import MemoryPredictor

            t = time.perf_counter()
            # the agent as the evaluation fitted and tuned it (the last of the memory/agent models)
            agent = [p for p in predictors if isinstance(p, MemoryPredictor)][-1].current_agent
            shown = show_user(agent, ds, split, result.users[0] if cfg.show_user == "auto" else cfg.show_user, cfg)
            stages["show user"] = time.perf_counter() - t
    main = MainResult(cfg, result, stages, shown, item_head, testlike_head)
    (cfg.out / "main.json").write_text(json.dumps(main.to_dict(), indent=2, default=str))
    return main


def _testlike_tuning(cfg: MainConfig, ds: Dataset, split: Split, engine: Any, item_head: Path | None,
                     stages: dict[str, float]) -> tuple[dict[str, TuningResult], Path | None]:
    """Choose every model's settings on test-like validation: the models fitted on
    ``leave_one_out(without_last(ds))`` (the agent with the item head tuned there), grid-searched on that
    split's test targets, which are the real validation items of the users plain validation would read.
    Returns the settings and the test-like item-head model folder that chose them (None: none)."""
    t = time.perf_counter()
    tsplit = leave_one_out(without_last(ds))
    users = [u for u in tuning_users(split, sample_users(split, cfg.users, cfg.seed), cfg.tune_users, cfg.seed)
             if u in tsplit.test]
    wrong = [u for u in users if tsplit.test[u] != split.val[u]]
    if wrong:  # cannot happen for leave-one-out; a guard that the targets are the validation items
        raise EvalError(f"test-like targets differ from the validation targets for {wrong[:3]}")
    sub: dict[str, float] = {}
    head = item_head_folder(cfg, tsplit, sub)
    if (head is None) != (item_head is None):
        raise EvalError("test-like validation needs an item-head model tuned on the test-like split as well as "
                        "the real one ('python scripts/item_head.py train --testlike', or '--item-head tune'), "
                        "or none (--item-head none)")
    with ExitStack() as scratch:  # the tuning models and their store go once the settings are chosen
        scratch.callback(shutil.rmtree, cfg.out / "memory-testlike", ignore_errors=True)  # after the store closes
        predictors, _, _ = build_predictors(cfg, ds, scratch, sub, engine, head, store="memory-testlike")
        preset = tune_predictors(predictors, tsplit, users, stage="test", on="test-like validation", seed=cfg.seed,
                                 n_bootstrap=cfg.n_bootstrap, tune_alpha=cfg.tune_alpha)
    stages.update({f"test-like {k}": v for k, v in sub.items()})
    stages["test-like tuning (fit + grid search, all)"] = time.perf_counter() - t
    return preset, head

