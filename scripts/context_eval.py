"""Context-aware vs context-blind memory-only retrieval: synthetic habits, and the ML-100k no-harm check.

    python scripts/context_eval.py --out docs/results/context        # both parts, ~10 min on 2 cores

Protocol (the harness's, done here step by step so the query context can be passed):
per-user leave-one-out; the memory store is filled with each user's training behaviors, every validation
target is ranked, then the validation behaviors are added and the test targets are ranked (memory never
holds anything at or after a target). Ranking = the agent's retrieval stage alone (memory profile +
collaborative transitions, no LLM) over the full catalogue, consumed items excluded.

- Context-blind: the retrieval weights (w_co, short half-life) are picked on validation NDCG@10 over the
  harness's grid.
- Context-aware: the context weights (hour, weekday, place) are picked on validation HR@10 with the blind
  model's retrieval weights; the grid includes all-zero weights (= blind). Then the context model re-picks
  its own retrieval weights (w_co, short half-life) on validation NDCG@10 with that context on. At
  prediction time the query context is the target's time and, when the data has coordinates, its place.
- Test: HR@10 / NDCG@10 of both on the same users, paired bootstrap, Wilcoxon and t-test.

On ML-100k (no places) the blind model must reproduce the harness's memory-only result, and the
time-only context can only be kept if validation prefers it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agent import AgentConfig, InterestAgent, TransitionIndex
from eval import (
    catalog_from_dataset,
    dataset_behaviors,
    leave_one_out,
    load_ml100k,
    make_synthetic,
    metrics_from_ranks,
    paired_test,
    sample_users,
    target_rank,
)
from memory import (
    ContextWeights,
    Location,
    MemoryConfig,
    MemoryStore,
    QueryContext,
    SentenceTransformerEmbedder,
)

BASE_GRID = {"w_co": [0.0, 1.0, 2.0, 4.0], "short_half_life_days": [1 / 144, 1 / 24, 1.0, 7.0, 30.0]}
CONTEXT_GRID = {"hour": [0.0, 1.0, 2.0, 4.0, 8.0], "weekday": [0.0, 1.0, 2.0], "place": [0.0, 1.0, 2.0, 4.0, 8.0]}
TIME_GRID = {"hour": [0.0, 1.0, 2.0, 4.0], "weekday": [0.0, 1.0, 2.0], "place": [0.0]}
METRIC_NAMES = ("hr@10", "ndcg@10")


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class Bench:
    """One dataset, one store, the leave-one-out requests of the sampled users."""

    def __init__(self, dataset: Any, users: list[str], split: Any, folder: Path, embedder: Any):
        self.dataset, self.users, self.split = dataset, users, split
        self.store = MemoryStore.open(folder, embedder=embedder, config=MemoryConfig())
        pop: dict[str, int] = {}
        for seq in split.train.values():
            for i in seq:
                pop[i] = pop.get(i, 0) + 1
        catalog = catalog_from_dataset(dataset, embedder, pop)
        self.agent = InterestAgent(self.store, catalog, None, AgentConfig(),
                                   TransitionIndex.fit(split.train, catalog.index))
        self.held = 0

    def fill(self, stage: str) -> None:
        """Memory = everything before the stage's targets."""
        t0 = time.perf_counter()
        batch = []
        for u in self.users:
            start = 0 if stage == "val" else len(self.split.history_before(u, "val")[0])
            batch += dataset_behaviors(self.dataset, u)[start: len(self.split.history_before(u, stage)[0])]
        self.store.add(batch)
        log(f"memory filled for {stage}: +{len(batch)} behaviors in {time.perf_counter() - t0:.0f} s")

    def queries(self, stage: str, use_place: bool) -> list[QueryContext]:
        out = []
        for u in self.users:
            target = self.dataset.sequences[u][len(self.split.history_before(u, stage)[0])]
            place = Location(lat=target.lat, lon=target.lon) if use_place and target.lat is not None else None
            out.append(QueryContext(place=place))
        return out

    def ranks(self, stage: str, queries: list[QueryContext] | None, agent: InterestAgent | None = None) -> np.ndarray:
        agent = agent or self.agent
        reqs = self.split.requests(self.users, stage)
        nows = [datetime.fromtimestamp(r.now, tz=UTC) for r in reqs]
        scored = agent.score_candidates([r.user_id for r in reqs], nows, histories=[list(r.history) for r in reqs],
                                        excludes=[list(r.exclude) for r in reqs], queries=queries)
        targets = [self.split.target(u, stage).item_id for u in self.users]
        return np.array([target_rank([agent.catalog.items[i].item_id for i in s.top(10)], t)
                         for s, t in zip(scored, targets, strict=True)])


def _metrics(ranks: np.ndarray) -> dict[str, float]:
    return {k: float(v.mean()) for k, v in metrics_from_ranks(ranks, METRIC_NAMES).items()}


def tune_base(bench: Bench, queries: list[QueryContext] | None = None
              ) -> tuple[InterestAgent, dict[str, Any], list[dict[str, Any]]]:
    trials = []
    best: tuple[float, dict[str, Any]] | None = None
    for w_co, hl in itertools.product(BASE_GRID["w_co"], BASE_GRID["short_half_life_days"]):
        bench.store.reconfigure(short_half_life_days=hl)
        agent = bench.agent.with_config(retrieval={"w_co": w_co})
        m = _metrics(bench.ranks("val", queries, agent))
        trials.append({"w_co": w_co, "short_half_life_days": hl, **m})
        if best is None or m["ndcg@10"] > best[0]:
            best = (m["ndcg@10"], {"w_co": w_co, "short_half_life_days": hl})
    assert best is not None
    params = best[1]
    bench.store.reconfigure(short_half_life_days=params["short_half_life_days"])
    return bench.agent.with_config(retrieval={"w_co": params["w_co"]}), params, trials


def tune_context(bench: Bench, agent: InterestAgent, grid: dict[str, list[float]], use_place: bool
                 ) -> tuple[ContextWeights, list[dict[str, Any]]]:
    trials = []
    best: tuple[tuple[float, float, float], ContextWeights] | None = None
    for h, d, p in itertools.product(grid["hour"], grid["weekday"], grid["place"]):
        cw = ContextWeights(hour=h, weekday=d, place=p)
        bench.store.reconfigure(context=cw)
        m = _metrics(bench.ranks("val", bench.queries("val", use_place), agent))
        trials.append({"hour": h, "weekday": d, "place": p, **m})
        if len(trials) % 12 == 0:
            log(f"context grid {len(trials)}/{len(grid['hour']) * len(grid['weekday']) * len(grid['place'])}")
        key = (m["hr@10"], m["ndcg@10"], -(h + d + p))  # ties: the smaller total weight
        if best is None or key > best[0]:
            best = (key, cw)
    assert best is not None
    bench.store.reconfigure(context=best[1])
    return best[1], trials


def run(name: str, dataset: Any, users: list[str], split: Any, embedder: Any, grid: dict[str, list[float]],
        use_place: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"tide-context-{name}-") as tmp:
        bench = Bench(dataset, users, split, Path(tmp) / "store", embedder)
        bench.fill("val")
        agent, base, base_trials = tune_base(bench)
        log(f"{name}: blind retrieval weights {base}")
        cw, ctx_trials = tune_context(bench, agent, grid, use_place)
        log(f"{name}: context weights {cw.model_dump()}")
        # the context model re-picks its own retrieval weights with the context on (a 10-minute short
        # half-life, good without context, leaves the newest behavior alone in the short profile)
        ctx_agent, ctx_base, rebase_trials = tune_base(bench, bench.queries("val", use_place))
        log(f"{name}: context model's retrieval weights {ctx_base}")
        val_blind = next(t for t in base_trials if t["w_co"] == base["w_co"]
                         and t["short_half_life_days"] == base["short_half_life_days"])
        bench.fill("test")
        bench.store.reconfigure(short_half_life_days=ctx_base["short_half_life_days"])
        aware = bench.ranks("test", bench.queries("test", use_place), ctx_agent)
        bench.store.reconfigure(short_half_life_days=base["short_half_life_days"])
        blind = bench.ranks("test", None, agent)
        # absent context and a context with zero weights are the same ranking as no context at all
        bench.store.reconfigure(context=ContextWeights(hour=0, weekday=0, place=0))
        zero = bench.ranks("test", bench.queries("test", use_place), agent)
        bench.store.close()
    mb = metrics_from_ranks(blind, METRIC_NAMES)
    ma = metrics_from_ranks(aware, METRIC_NAMES)
    out = {
        "dataset": name, "n_users": len(users), "n_items": len(dataset.items), "use_place": use_place,
        "blind_params": base, "context_params": ctx_base, "context_weights": cw.model_dump(),
        "validation": {"blind": {k: val_blind[k] for k in METRIC_NAMES},
                       "context": max(ctx_trials, key=lambda t: (t["hr@10"], t["ndcg@10"]))},
        "test": {"blind": {k: float(v.mean()) for k, v in mb.items()},
                 "context": {k: float(v.mean()) for k, v in ma.items()}},
        "ratio_hr@10": float(ma["hr@10"].mean() / mb["hr@10"].mean()) if mb["hr@10"].mean() > 0 else None,
        "paired": {k: paired_test(ma[k], mb[k], seed=0).to_dict() for k in METRIC_NAMES},
        "zero_weights_identical_to_blind": bool(np.array_equal(zero, blind)),
        "grid": {"base": BASE_GRID, "context": grid},
        "trials": {"base": base_trials, "context": ctx_trials, "context_base": rebase_trials},
        "seconds": time.perf_counter() - t0,
    }
    log(f"{name}: test HR@10 blind {out['test']['blind']['hr@10']:.3f} context {out['test']['context']['hr@10']:.3f}")
    return out


def markdown(results: list[dict[str, Any]], command: str) -> str:
    lines = ["# Context-aware vs context-blind memory-only retrieval", "", f"Command: `{command}`", "",
             "| dataset | users | context weights (validation) | HR@10 blind | HR@10 context | ratio | "
             "NDCG@10 blind | NDCG@10 context | ΔHR@10 [95% CI] | p (bootstrap / Wilcoxon) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        t, p = r["test"], r["paired"]["hr@10"]
        cw = r["context_weights"]
        ratio = f"{r['ratio_hr@10']:.2f}×" if r["ratio_hr@10"] is not None else "–"
        lines.append(
            f"| {r['dataset']} | {r['n_users']} | hour {cw['hour']:g}, weekday {cw['weekday']:g}, place {cw['place']:g} "
            f"| {t['blind']['hr@10']:.3f} | {t['context']['hr@10']:.3f} | {ratio} | {t['blind']['ndcg@10']:.4f} "
            f"| {t['context']['ndcg@10']:.4f} | {p['mean_diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] "
            f"| {p['p_bootstrap']:.3g} / {p['p_wilcoxon']:.3g} |")
    lines += ["", "Retrieval weights picked on validation NDCG@10, blind: "
              + "; ".join(f"{r['dataset']} {r['blind_params']}" for r in results)
              + "; with context: " + "; ".join(f"{r['dataset']} {r.get('context_params')}" for r in results),
              "", "Zero context weights give exactly the blind ranking: "
              + "; ".join(f"{r['dataset']} {r['zero_weights_identical_to_blind']}" for r in results), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic-users", type=int, default=500)
    ap.add_argument("--ml-users", type=int, default=200, help="0 skips the ML-100k check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/results/context")
    args = ap.parse_args()
    embedder = SentenceTransformerEmbedder.from_package()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python scripts/context_eval.py " + " ".join(sys.argv[1:])
    results: list[dict[str, Any]] = []

    def write() -> None:  # after each dataset, so a later failure keeps what was measured
        out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=1))
        out.with_suffix(".md").write_text(markdown(results, command))

    if args.synthetic_users:
        ds, _ = make_synthetic(n_users=args.synthetic_users, seed=args.seed, habits=True)
        split = leave_one_out(ds)
        results.append(run("synthetic-habits", ds, split.test_users, split, embedder, CONTEXT_GRID, True))
        write()
    if args.ml_users:
        ml = load_ml100k()
        split = leave_one_out(ml)
        users = sample_users(split, args.ml_users, args.seed)
        results.append(run("ml-100k", ml, users, split, embedder, TIME_GRID, False))
        write()
    print(markdown(results, command))


if __name__ == "__main__":
    main()
