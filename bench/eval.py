"""Benchmark of the evaluation main job: time per stage and per model, LSTM time per epoch, agent users/s,
peak memory (this process and its children — the vLLM engine core runs in a child process).

It runs exactly the main job (``eval.run_main``) and reads the timings it records. Timings are printed,
never asserted (house style: speed lives here).

Usage (from the repository root):
python -m bench.eval [--users 200] [--seed 0] [--models pop,lstm,memory,agent] [--out runs/bench-eval]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path


def peak_rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="200", help="sample size or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="pop,lstm,memory,agent")
    parser.add_argument("--lstm-epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/bench-eval")
    args = parser.parse_args()
    from eval import MainConfig, run_main

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load0 = os.getloadavg()[0]
    cfg = MainConfig(models=args.models.split(","), users="all" if args.users == "all" else int(args.users),
                     seed=args.seed, out=Path(args.out), lstm_epochs=args.lstm_epochs, show_user="auto")
    t0 = time.perf_counter()
    main_result = run_main(cfg)
    wall = time.perf_counter() - t0
    result, stages = main_result.evaluation, main_result.stage_seconds
    summary = result.summary
    print("\n== bench.eval")
    cores = os.cpu_count()
    print(f"load average at start {load0:.2f}, at end {os.getloadavg()[0]:.2f} ({cores} cores; >{cores} means contention)")
    print(f"end-to-end wall: {wall:.1f} s for {len(result.users)} users")
    print("stages (main job):")
    for k, v in stages.items():
        print(f"  {k:34s} {v:8.1f} s")
    print("stages (runner):")
    for k, v in summary.stage_seconds.items():
        print(f"  {k:34s} {v:8.1f} s")
    print("per model: users/s (test ranking), mean ms/user, fit s")
    for name, m in summary.models.items():
        lat = m.latency_ms_per_user.mean
        print(f"  {name:8s} {m.throughput_users_per_s:10.2f} users/s  {lat:10.1f} ms/user  fit {m.fit_seconds:.1f} s")
    lstm = summary.models["lstm"].config if "lstm" in summary.models else {}
    epochs = lstm.get("epochs") or []
    secs = [float(e["seconds"]) for e in epochs if isinstance(e, dict) and e.get("seconds") is not None]
    if secs:
        print(f"LSTM: {len(secs)} epochs, {sum(secs) / len(secs):.2f} s/epoch mean, best epoch {lstm.get('best_epoch')}")
    print(f"peak RSS: this process {peak_rss_mib(resource.RUSAGE_SELF):.0f} MiB, "
          f"largest child {peak_rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB")
    out = Path(args.out) / "bench_eval.json"
    out.write_text(json.dumps({"wall_s": wall, "stages": stages, "runner": summary.stage_seconds,
                               "load_start": load0, "load_end": os.getloadavg()[0]}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
