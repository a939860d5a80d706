"""Load each prepared model in vLLM, answer a short chat prompt greedily, time the start and the decoding.

Usage (run under the heavy-work lock; each model in its own subprocess so one engine is alive at a time)::

    flock /tmp/tide-heavy.lock .venv/bin/python scripts/model_check.py \\
        --models gemma-3-270m,qwen2.5-coder-0.5b-instruct --out runs/model-check.jsonl

Per model it prints one JSON line: engine start seconds, the greedy answer to one chat question, and
decode speed for one request and for a batch of 16 (completion tokens / wall seconds, greedy,
``max_tokens`` 64, no stop but the model's own end). Speeds on a shared machine vary; compare models
within one run. Models must be prepared first (``tide model prepare --model NAME``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTION = "In one sentence: what does a movie recommender do?"
BATCH_QUESTIONS = [
    "Name a film genre and one classic film in it.",
    "Someone loved Alien and The Terminator. Suggest one more film, one line.",
    "In one sentence: why do people rewatch comedies?",
    "What is a thriller? One sentence.",
]
BATCH = 16
MAX_TOKENS = 64


def check_one(name: str) -> dict:
    from agent import GenerationRequest, Message, VLLMEngine, load_manifest, model_dir

    folder = model_dir(name=name)
    manifest = load_manifest(folder)
    if manifest is None:
        raise SystemExit(f"{folder} is not prepared: tide model prepare --model {name}")
    cpu0 = time.process_time()
    started = time.perf_counter()
    with VLLMEngine.from_model(folder) as engine:
        load_s = time.perf_counter() - started

        def ask(questions: list[str]) -> tuple[list, float]:
            reqs = [GenerationRequest(messages=(Message(role="user", content=q),), max_tokens=MAX_TOKENS)
                    for q in questions]
            t = time.perf_counter()
            outs = engine.generate(reqs)
            return outs, time.perf_counter() - t

        [one], one_s = ask([QUESTION])
        batch, batch_s = ask([BATCH_QUESTIONS[i % len(BATCH_QUESTIONS)] for i in range(BATCH)])
        prompt = engine.prompt_text(GenerationRequest(messages=(Message(role="user", content=QUESTION),),
                                                      max_tokens=1))
    return {
        "model": name, "dtype": engine.config.dtype, "engine_start_s": round(load_s, 1),
        "chat_template": bool(manifest.get("chat_template")), "prompt_head": prompt[:40],
        "answer": one.text, "finish_reason": one.finish_reason,
        "tok_s_single": round(one.completion_tokens / one_s, 1),
        "tok_s_batch16": round(sum(o.completion_tokens for o in batch) / batch_s, 1),
        "batch_tokens": sum(o.completion_tokens for o in batch),
        "process_cpu_s": round(time.process_time() - cpu0, 1),
        "loadavg": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="gemma-3-270m,qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--out", type=Path, default=Path("runs/model-check.jsonl"))
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        print("RESULT " + json.dumps(check_one(args.one)), flush=True)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        print(f"[model_check] {name} ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name}: check failed (exit {done.returncode})")
        row = lines[-1][len("RESULT "):]
        print(row, flush=True)
        with args.out.open("a") as f:
            f.write(row + "\n")


if __name__ == "__main__":
    main()
