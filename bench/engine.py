"""Benchmark of the embedded LLM engine (``VLLMEngine`` on the CPU backend): start, speed, validity, overhead.

Usage (from the repository root)::

    .venv/bin/python -m bench.engine            # full run (~25 min on an otherwise idle 2-core machine)
    .venv/bin/python -m bench.engine --quick    # smaller run (~7 min idle): no compiled mode, smaller batches
    .venv/bin/python -m bench.engine --summarize runs/bench/engine.json   # the table of a finished run again

Every engine runs in its own worker subprocess (``bench._engine_worker``), started with a fresh
environment (``VLLM_CPU_KVCACHE_SPACE=2``, a temp ``VLLM_CACHE_ROOT``/``TORCHINDUCTOR_CACHE_DIR``), that
times its own start (import, engine construction, first answer, and for part 1 a first batch of 16
structured requests), then serves timed commands from this process. Other jobs may share this machine,
so each engine is compared with the default engine side by side in one run, in mirrored order
(A B B A), and the table prints RATIOS, which are far more robust to background load than absolute
numbers; it also prints CPU-seconds (the worker's whole process tree), which other jobs disturb much
less than wall time. The load average is printed at start and end. At most two engines are alive at
once (~7 GiB each); a worker whose engine is killed from outside is restarted once.

Parts (each in its own module: ``bench._start``, ``_pairs``, ``_batching``, ``_validity``, ``_overhead``):

1. Engine start: ``enforce_eager=True`` vs compiled (``enforce_eager=False``), each cold (fresh compile
   cache) and warm (second start, same cache); time to the first answers of a one-off CLI call.
2. dtype bfloat16 vs float32, ``cpu_threads`` "auto" (Tide binds all cores) vs "vllm" (vLLM's binding),
   and compiled vs eager steady-state throughput, on the same structured requests.
3. Batched structured generation with the agent's interest schema and prompts: batch 1, 8, 16, 32.
4. Valid-output rate over >= 200 distinct structured requests (``generate_structured``, the agent's attempts).
5. Choice scoring (``score_choices``) with the agent's rank prompt (20 candidates A-T).
6. Tide's overhead against raw ``vllm.LLM.generate`` on the same engine (interleaved, median ratio).
7. tcmalloc (``LD_PRELOAD``) vs glibc malloc on a structured batch of 32, where ``libtcmalloc`` is
   installed (Debian: ``apt-get install libgoogle-perftools4``); the bench installs nothing.

Prompts are synthetic MovieLens-like users (seeded, ``bench._workload``) rendered with the agent's public
prompt builders; the schema is the agent's interest schema over the 18 genres.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._batching import batch_rows, run_batch_one
from bench._harness import Report, Row, exit_on_sigterm, format_table, loadavg, say
from bench._overhead import choice_rows, overhead_rows, run_overhead
from bench._pairs import pair_rows, run_pairs
from bench._start import KV_GIB, Starter, run_starts, start_rows, verdict_rows
from bench._validity import run_validity, validity_rows
from bench._worker import Pool
from bench._workload import agent_defaults, choice_labels, predict_prompts, rank_prompts


def run(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """Run every part; ``result`` fills as parts finish (so a failed run still leaves what it measured)."""
    from agent import ensure_model

    quick = args.quick
    t_run = time.perf_counter()
    result.update({"quick": quick, "load_start": loadavg(), "cores": os.cpu_count(), "kv_cache_gib": int(KV_GIB),
                   "bindings": {}})
    say(f"bench.engine {'--quick ' if quick else ''}on {os.cpu_count()} cores; load average at start "
        f"{result['load_start']}")
    result["model"] = str(ensure_model())
    out_path = Path(args.out)
    logdir = out_path.parent / f"{out_path.stem}-logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix="tide-bench-engine-"))
    caches = {k: tmp / k for k in ("eager", "compiled", "other")}

    # workloads (seeded; every engine in a comparison answers the very same prompts)
    n_valid = 48 if quick else 208
    w: dict[str, Any] = {"first": predict_prompts(1, seed=1)[0],
                         "start": predict_prompts(16, seed=2),  # part 1: a one-off CLI call answering 16 users
                         "cmp": predict_prompts(8 if quick else 16, seed=3),  # part 2
                         "tc": predict_prompts(8 if quick else 32, seed=4),  # part 7 (and part 2 threads)
                         "bs1": predict_prompts(2 if quick else 3, seed=5), "ovh": predict_prompts(8, seed=6),
                         "score": rank_prompts(8 if quick else 16, seed=7), "valid": predict_prompts(n_valid, seed=8)}
    assert len(set(w["valid"])) == n_valid, "validity prompts must be distinct"
    pool = Pool()
    start = Starter(pool, logdir, first_prompt=w["first"], batch_prompts=w["start"], bindings=result["bindings"])
    try:
        default, starts = run_starts(start, pool, caches, quick)
        result["default"] = default.name
        result["starts"] = starts
        run_pairs(start, pool, default, caches, quick=quick, rounds=1 if quick else 2, cmp_prompts=w["cmp"],
                  tc_prompts=w["tc"], result=result)
        result["starts"] = {k: {x: y for x, y in v.items() if x != "description"} for k, v in starts.items()}
        result["bs1"] = run_batch_one(default, w["bs1"])
        result["overhead"] = run_overhead(default, w["ovh"], w["score"], list(choice_labels()),
                                          pairs=2 if quick else 3)
        result["validity"] = run_validity(default, w["valid"], agent_defaults().attempts)
        pool.stop(default)
    finally:
        pool.close()
        shutil.rmtree(tmp, ignore_errors=True)
        result["restarts"] = pool.restarts()
    result["load_end"] = loadavg()
    result["total_s"] = time.perf_counter() - t_run
    return result


def summarize(res: dict[str, Any]) -> tuple[list[Row], dict[str, Any]]:
    """Rows (section, metric, value) of the final table, and the summary numbers for the JSON."""
    rep = Report({"load_start": res["load_start"], "load_end": res["load_end"]})
    for part in (start_rows, pair_rows, batch_rows, validity_rows, choice_rows, overhead_rows, verdict_rows):
        part(res, rep)
    return rep.rows, rep.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run: no compiled mode, smaller batches")
    parser.add_argument("--out", default="runs/bench/engine.json", help="JSON results (logs go beside it)")
    parser.add_argument("--no-install", action="store_true",
                        help="accepted for old command lines; the bench never installs anything")
    parser.add_argument("--summarize", metavar="JSON", help="print the table of a finished run's JSON again")
    args = parser.parse_args()
    if args.summarize:
        rows, _ = summarize(json.loads(Path(args.summarize).read_text())["raw"])
        print(format_table(rows))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    exit_on_sigterm()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {}
    try:
        run(args, res)
    except BaseException:
        res["failed_at_load"] = loadavg()
        out.write_text(json.dumps({"summary": None, "partial": True, "raw": res}, indent=1, default=str))
        print(f"run failed; partial results in {out}", file=sys.stderr)
        raise
    rows, summ = summarize(res)
    table = format_table(rows)
    print()
    print(table)
    print(f"\nload average: start {res['load_start']}, end {res['load_end']} ({res['cores']} cores); "
          f"total {res['total_s'] / 60:.1f} min")
    if res.get("restarts"):
        print(f"workers restarted after dying mid-run: {res['restarts']}")
    out.write_text(json.dumps({"summary": summ, "table": table, "raw": res}, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
