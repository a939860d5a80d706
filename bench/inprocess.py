"""The embedded engine with vLLM's engine core in child processes (the default) vs inside the calling
process (``VLLMEngineConfig(in_process=True)``, i.e. ``VLLM_ENABLE_V1_MULTIPROCESSING=0``).

By default vLLM's CPU backend runs an engine-core process and a worker process, each importing torch and
vLLM again, and passes every step between them. In-process, the main job's one engine skips both. The
workload is the main job's agent stage (as ``bench.openmp``): choice scoring of distinct ~1,260-token
prompts (full prefills) and a short greedy generation from each (decode). Each variant runs in a fresh
process, alternating ``mp, inproc, ...`` so that machine noise falls on both::

    .venv/bin/python -m bench.inprocess [--prompts 16] [--rounds 1] [--out runs/bench/inprocess.json]

Ratios (in-process over child processes) are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench._harness import mean_by_variant, run_variant, write_result
from bench.openmp import _prompts, agent_workload

VARIANTS = ("mp", "inproc")


def child(variant: str, n_prompts: int, offset: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import multiprocessing

    from agent import VLLMEngine, model_dir

    prompts = _prompts(offset + n_prompts)[offset:]  # each run its own prompts: no prefix-cache hits
    t = time.perf_counter()
    engine = VLLMEngine.from_model(model_dir(), in_process=variant == "inproc")
    start = time.perf_counter() - t
    children = len(multiprocessing.active_children())
    prefill, decode, outs = agent_workload(engine, prompts)
    print(json.dumps({"variant": variant, "start_s": round(start, 1), "prefill_s": round(prefill, 2),
                      "decode_s": round(decode, 2), "prompt_tokens": sum(o.prompt_tokens for o in outs),
                      "completion_tokens": sum(o.completion_tokens for o in outs),
                      "child_processes": children}), flush=True)
    engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default="runs/bench/inprocess.json")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "OFFSET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.prompts, int(args.child[1]))
        return
    rows = []
    for r in range(args.rounds):
        for i, variant in enumerate(VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
            offset = (2 * r + i) * args.prompts + 2
            rows.append(run_variant("bench.inprocess", ["--prompts", str(args.prompts), "--child", variant,
                                                        str(offset)], f"{variant} round {r}") | {"round": r})
    summary: dict = mean_by_variant(rows, VARIANTS, ("start_s", "prefill_s", "decode_s"))
    summary["inproc_over_mp"] = {k: round(summary["inproc"][k] / summary["mp"][k], 3)
                                 for k in ("start_s", "prefill_s", "decode_s")}
    write_result(args.out, rows, summary)


if __name__ == "__main__":
    main()
