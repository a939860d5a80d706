"""The embedded engine under two OpenMP runtimes: torch's own libgomp, and Intel's libiomp5 preloaded.

vLLM's CPU backend warns "libiomp is not found in LD_PRELOAD. For best performance …" and its install guide
preloads Intel OpenMP. This bench measures what that buys on this machine, with the workload of the main
job's agent stage: choice scoring of distinct ~1,000-token prompts (no prefix shared between them, so each
is a full prefill) and a short greedy generation from each (decode). Each variant runs in a fresh process
(``LD_PRELOAD`` is read when a process starts), alternating ``gomp, iomp, gomp, iomp`` so that machine
noise falls on both::

    .venv/bin/python -m bench.openmp [--prompts 24] [--rounds 2] [--out docs/results/openmp.json]

Ratios, not absolute times, are the result: the same prompts, the same engine settings, one after another.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench._harness import mean_by_variant, run_variant, write_result

LETTERS = [chr(65 + i) for i in range(20)]


def _prompts(n: int) -> list[str]:
    """``n`` distinct prompts of about 1,000 Gemma tokens (the main job's choice prompts are ~985)."""
    out = []
    for u in range(n):
        history = "\n".join(f"[{i}] rated \"Film {u}-{i} of the year 199{i % 10}\" (Drama, Comedy, Romance) {1 + i % 5}/5"
                            for i in range(22))
        cands = "\n".join(f"{letter}: \"Candidate film {u}-{i}\" (1995; Action, Adventure, Thriller)"
                          for i, letter in enumerate(LETTERS))
        out.append(f"User {u} of the bench. Recent behaviors, oldest first:\n{history}\n\nCandidates:\n{cands}\n\n"
                   "Question: which candidate will this person choose next? Answer with one letter.\nAnswer:")
    return out


def agent_workload(engine, prompts: list[str]) -> tuple[float, float, list]:
    """Seconds of choice scoring over ``prompts`` (prefill; after a warm-up on other prompts) and of a
    48-token greedy generation from each (decode), and the generations."""
    from agent import GenerationRequest

    engine.score_choices(_prompts(2), LETTERS)  # warm-up on other prompts
    t = time.perf_counter()
    engine.score_choices(prompts, LETTERS)
    prefill = time.perf_counter() - t
    t = time.perf_counter()
    outs = engine.generate([GenerationRequest(prompt=p + " The answer is", max_tokens=48) for p in prompts])
    return prefill, time.perf_counter() - t, outs


def child(variant: str, n_prompts: int, offset: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent import VLLMEngine, model_dir

    prompts = _prompts(offset + n_prompts)[offset:]  # each round its own prompts: no prefix-cache hits
    t = time.perf_counter()
    engine = VLLMEngine.from_model(model_dir())
    start = time.perf_counter() - t
    prefill, decode, outs = agent_workload(engine, prompts)
    n_tokens = sum(o.prompt_tokens for o in outs)
    print(json.dumps({"variant": variant, "start_s": round(start, 1), "prefill_s": round(prefill, 2),
                      "prompt_tokens": n_tokens, "prefill_tok_s": round(n_tokens / prefill, 1),
                      "decode_s": round(decode, 2), "completion_tokens": sum(o.completion_tokens for o in outs),
                      "ld_preload": os.environ.get("LD_PRELOAD", "")}), flush=True)
    engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="runs/bench/openmp.json")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "OFFSET"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.prompts, int(args.child[1]))
        return
    iomp = Path(sys.prefix) / "lib" / "libiomp5.so"
    if not iomp.exists():
        raise SystemExit(f"no Intel OpenMP at {iomp} (pip install intel-openmp)")
    rows = []
    for r in range(args.rounds):
        for variant in ("gomp", "iomp"):
            env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            if variant == "iomp":
                env["LD_PRELOAD"] = str(iomp)
            offset = (2 * r + (variant == "iomp")) * args.prompts + 2
            rows.append(run_variant("bench.openmp", ["--prompts", str(args.prompts), "--child", variant,
                                                     str(offset)], f"{variant} round {r}", env) | {"round": r})
    summary: dict = mean_by_variant(rows, ("gomp", "iomp"), ("start_s", "prefill_s", "decode_s", "prefill_tok_s"))
    summary["iomp_over_gomp"] = {k: round(summary["iomp"][k] / summary["gomp"][k], 3) for k in ("prefill_s", "decode_s")}
    write_result(args.out, rows, summary)


if __name__ == "__main__":
    main()
