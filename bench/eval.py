"""Benchmark of the evaluation main job: time per stage and per model, LSTM epoch times, peak memory.

Skeleton: it runs the baselines (pop, lstm); the agent and memory-only predictors are added to
``build_predictors`` when they exist. Timings are printed, never asserted (house style: speed lives here).

Usage: python bench/eval.py [--users 200] [--seed 0] [--max-epochs 40] [--out runs/bench-eval]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

# This file is named eval.py (the issue names it), so running it puts bench/ first on sys.path, where
# "eval" would resolve to this script; drop that entry so "eval" is the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from eval import (  # noqa: E402
    LSTMConfig,
    LSTMPredictor,
    PopularityPredictor,
    Predictor,
    Split,
    format_table,
    leave_one_out,
    load_ml100k,
    run_evaluation,
)


def build_predictors(split: Split, args: argparse.Namespace) -> list[Predictor]:
    """The models to time. The lead adds MemoryPredictor / AgentPredictor here."""
    overrides = {"seed": args.seed, "progress": False} | ({"max_epochs": args.max_epochs} if args.max_epochs else {})
    return [PopularityPredictor(), LSTMPredictor(LSTMConfig(**overrides))]


def peak_rss_mib() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="200", help="sample size or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    users = args.users if args.users == "all" else int(args.users)

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    dataset = load_ml100k()
    stages["load ml-100k"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    split = leave_one_out(dataset)
    stages["split"] = time.perf_counter() - t0
    predictors = build_predictors(split, args)
    result = run_evaluation(dataset, predictors, split, users=users, seed=args.seed, out_dir=args.out, progress=False)
    stages |= result.summary["stage_seconds"]

    print(format_table(result.summary))
    print("\nstage                     seconds")
    for name, seconds in stages.items():
        print(f"{name:25s} {seconds:8.2f}")
    for p in predictors:
        if isinstance(p, LSTMPredictor) and p.epochs:
            secs = [e["seconds"] for e in p.epochs]
            print(f"\n{p.name}: {len(secs)} epochs, {sum(secs):.1f}s, mean {sum(secs) / len(secs):.2f}s/epoch, "
                  f"best epoch {p.best_epoch}")
    for name, model in result.summary["models"].items():
        lat = model["latency_ms_per_user"]
        print(f"{name}: {model['throughput_users_per_s']:.1f} users/s, {lat['mean']:.2f} ms/user "
              f"(p95 batch {lat['p95_batch']:.2f} ms/user)")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")
    if args.out:
        Path(args.out, "bench.json").write_text(json.dumps({"stages": stages, "peak_rss_mib": peak_rss_mib()}, indent=2))


if __name__ == "__main__":
    main()
