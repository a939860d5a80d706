"""The embedded engine in one dtype: start time and choice scoring of 16 ~600-token prompts (twice).

Run both, one after the other, on the same machine, and compare (docs/results/dtype-cmp.jsonl)::

    for d in float32 bfloat16; do .venv/bin/python -m bench.dtype $d 2>/dev/null | grep '"dtype"'; done
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent import VLLMEngine, model_dir

    dtype = sys.argv[1]
    letters = [chr(65 + i) for i in range(20)]
    history = "Recent films: " + "; ".join(f"Film {i} (199{i % 10}; Drama, Comedy)" for i in range(25))
    prompts = [history + f" User {u}.\n"
               + "\n".join(f"{letter}. Candidate {u}-{i} (1995; Action)" for i, letter in enumerate(letters))
               + "\nAnswer:" for u in range(16)]
    t = time.perf_counter()
    engine = VLLMEngine.from_model(model_dir(), dtype=dtype)
    start = time.perf_counter() - t
    engine.score_choices(prompts[:2], letters)
    runs = []
    for _ in range(2):
        t = time.perf_counter()
        engine.score_choices(prompts, letters)
        runs.append(time.perf_counter() - t)
    print(json.dumps({"dtype": dtype, "start_s": round(start, 1), "score16_s": [round(r, 2) for r in runs]}), flush=True)
    engine.close()


if __name__ == "__main__":
    main()
