"""Engine start overlapped with model fitting (``make_engine(background=True)``) vs one after
the other, on this machine's cores.

The main job starts the embedded vLLM (~90 s on 2 cores) and fits the sequential baselines (~5 minutes)
before its first LLM call. Each variant runs in a fresh process: start the engine, fit SASRec on ML-100k for
``--epochs`` epochs, score one choice prompt (the engine is up), in one of three ways:

* ``sequential``: the engine starts, then the fit runs (the main job before the background start);
* ``background``: the engine starts in a thread while the fit runs with torch's default threads;
* ``background-1thread``: the same with torch on one thread (OpenMP spin-waits when two busy processes
  share two cores; see docs/results/seq-models.md).

Variants alternate over ``--rounds`` so machine noise falls on all::

    .venv/bin/python -m bench.overlap [--epochs 25] [--rounds 1] [--out runs/bench/overlap.json]

The result is the ratio of each variant's wall time (engine start + fit + first call) to ``sequential``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench._harness import mean_by_variant, run_variant, write_result

VARIANTS = ("sequential", "background", "background-1thread")


def child(variant: str, epochs: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from agent import make_engine
    from eval import build_sequential, leave_one_out, load_ml100k

    ds = load_ml100k()
    split = leave_one_out(ds)
    model = build_sequential("sasrec", ds, seed=0, max_epochs=epochs)
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    engine = make_engine(background=variant != "sequential")
    start_call = time.perf_counter() - t0
    if variant == "background-1thread":
        torch.set_num_threads(1)
    t = time.perf_counter()
    model.fit(split)
    fit = time.perf_counter() - t
    torch.set_num_threads(threads)
    t = time.perf_counter()
    [scores] = engine.score_choices(["Question: which letter comes first? Answer with one letter.\nAnswer:"],
                                    ["A", "B"])
    wait = time.perf_counter() - t
    total = time.perf_counter() - t0
    start = getattr(engine, "start_seconds", None) or start_call
    print(json.dumps({"variant": variant, "total_s": round(total, 1), "engine_start_s": round(start, 1),
                      "fit_s": round(fit, 1), "first_call_s": round(wait, 1), "epochs": len(model.epochs),
                      "torch_threads": threads, "letter_mass": round(scores.label_mass, 3)}), flush=True)
    engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default="runs/bench/overlap.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    variants = args.variants.split(",")
    if "sequential" not in variants or set(variants) - set(VARIANTS):
        raise SystemExit(f"--variants: a comma list of {', '.join(VARIANTS)} including sequential")
    rows = []
    for r in range(args.rounds):
        for variant in variants if r % 2 == 0 else variants[::-1]:
            rows.append(run_variant("bench.overlap", ["--epochs", str(args.epochs), "--child", variant],
                                    f"{variant} round {r}") | {"round": r})
    summary: dict = mean_by_variant(rows, variants, ("total_s", "engine_start_s", "fit_s", "first_call_s"), 1)
    summary["total_over_sequential"] = {v: round(summary[v]["total_s"] / summary["sequential"]["total_s"], 3)
                                        for v in variants}
    write_result(args.out, rows, summary)


if __name__ == "__main__":
    main()
