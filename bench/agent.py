"""Benchmark of the agent on the embedded engine: predict_many users/s, per-user latency p50/p95, Tide's
overhead against the raw engine doing the same requests in the same run, valid-output rate, and how
throughput grows with batch size.

Overhead: Tide's path (memory reads, candidate scoring, prompt rendering, parsing, validation, retries) is
timed against ``vllm.LLM.generate`` called directly with the very prompts and sampling parameters Tide sent
(choice scoring + the interest JSON). Runs alternate A B A B after one warm-up, so vLLM's prefix cache is
equally warm for both; the median ratio is printed.

Usage (from the repository root): python -m bench.agent [--users 32] [--reps 3] [--out runs/bench/agent.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench._harness import median_ratio


def build(n_users: int, store_dir: Path):
    from agent import AgentConfig, InterestAgent, TransitionIndex, VLLMEngine
    from eval import catalog_from_dataset, dataset_behaviors, leave_one_out, load_ml100k
    from memory import MemoryStore, SentenceTransformerEmbedder

    ds = load_ml100k()
    split = leave_one_out(ds)
    users = split.test_users[:n_users]
    shutil.rmtree(store_dir, ignore_errors=True)
    emb = SentenceTransformerEmbedder.from_package()
    store = MemoryStore.open(store_dir, embedder=emb)
    t = time.perf_counter()
    for u in users:  # memory = everything before the test item
        store.add(dataset_behaviors(ds, u)[:-1])
    ingest_s = time.perf_counter() - t
    catalog = catalog_from_dataset(ds, emb)
    engine = VLLMEngine.from_defaults()
    agent = InterestAgent(store, catalog, engine, AgentConfig(),
                          transitions=TransitionIndex.fit(split.train, catalog.index))
    return agent, users, ingest_s


def raw_requests(agent, users):
    """The exact prompts/params Tide sends for these users, for vllm.LLM.generate."""
    from vllm import SamplingParams

    from agent import CHOICE_LABELS, choice_orders, schema_for

    scored = agent.score_candidates(users)
    eng = agent.engine
    choice = []
    for s in scored:  # as the agent's re-ranker: warm users with more than one candidate, in every order
        n = len(s.candidates)
        if s.context.cold or n < 2:
            continue
        ids = eng.label_token_ids(CHOICE_LABELS[:n])
        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(ids), logprob_token_ids=ids)
        choice += [(agent.choice_prompt(s, order), params) for order in choice_orders(n, agent.config.choice_orders)]
    gen = []
    for _, model, req in agent.interest_requests(scored):  # per-user grounded schemas, as Tide sends them
        req = req.model_copy(update={"json_schema": schema_for(model)})
        gen.append((req.prompt, eng.sampling_params(req)))
    return choice, gen


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="runs/bench/agent.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load0 = os.getloadavg()[0]
    agent, users, ingest_s = build(args.users, Path(args.out).parent / "agent_store")
    try:
        results = {"users": len(users), "ingest_s": ingest_s, "load_start": load0, **measure(agent, users, args.reps)}
        print("\n== bench.agent (embedded engine:", json.dumps(agent.engine.description), ")")
    finally:
        agent.store.close()
        agent.close()
    report(results, args.reps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")


def measure(agent, users: list[str], reps: int) -> dict[str, Any]:
    """Tide against raw vLLM on the same requests, per-user latency, throughput by batch size."""
    llm = agent.engine.llm  # the raw vllm.LLM inside Tide's engine: what Tide is measured against
    results: dict[str, Any] = {}

    # warm-up (engine kernels, prefix cache)
    agent.predict_many(users, progress=False, fallback=True)
    choice, gen = raw_requests(agent, users)
    tide_s, raw_s = [], []
    preds = []
    for _ in range(reps):
        t = time.perf_counter()
        preds = agent.predict_many(users, progress=False, fallback=True)
        tide_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        llm.generate([p for p, _ in choice], [s for _, s in choice], use_tqdm=False)
        llm.generate([p for p, _ in gen], [s for _, s in gen], use_tqdm=False)
        raw_s.append(time.perf_counter() - t)
    ratio, _ = median_ratio(tide_s, raw_s)
    results["predict_many_s"] = tide_s
    results["raw_engine_s"] = raw_s
    results["overhead_ratio_median"] = ratio
    results["users_per_s"] = len(users) / statistics.median(tide_s)
    first_try = sum(1 for p in preds if p.provenance.attempts == 1 and not p.provenance.fallback)
    valid = sum(1 for p in preds if not p.provenance.fallback)
    results["valid_first_attempt"] = first_try / len(preds)
    results["valid_within_retries"] = valid / len(preds)

    # per-user latency, one user per call
    lat = []
    for u in users[:16]:
        t = time.perf_counter()
        agent.predict(u, fallback=True)
        lat.append(1000 * (time.perf_counter() - t))
    lat.sort()
    results["latency_ms_p50"] = statistics.median(lat)
    results["latency_ms_p95"] = lat[max(0, int(round(0.95 * len(lat))) - 1)]

    # throughput vs batch size
    scaling = {}
    for bs in (1, 8, 32):
        batched = agent.with_config(batch_size=bs)  # shares the store and the engine
        t = time.perf_counter()
        batched.predict_many(users, progress=False, fallback=True)
        scaling[bs] = len(users) / (time.perf_counter() - t)
    results["users_per_s_by_batch"] = scaling
    results["load_end"] = os.getloadavg()[0]
    return results


def report(results: dict[str, Any], reps: int) -> None:
    tide_s, raw_s, ratio = results["predict_many_s"], results["raw_engine_s"], results["overhead_ratio_median"]
    scaling = results["users_per_s_by_batch"]
    print(f"users {results['users']}; load average {results['load_start']:.2f} -> {results['load_end']:.2f} on "
          f"{os.cpu_count()} cores")
    print(f"predict_many: {results['users_per_s']:.2f} users/s (median of {reps}: "
          f"{', '.join(f'{x:.1f}' for x in tide_s)} s)")
    print(f"raw vllm.LLM.generate, same requests: {', '.join(f'{x:.1f}' for x in raw_s)} s")
    print(f"Tide / raw time, median of interleaved runs: {ratio:.3f}  (overhead {100 * (ratio - 1):+.1f}%, target <= +10%)")
    print(f"per-user latency (batch of 1): p50 {results['latency_ms_p50']:.0f} ms, p95 {results['latency_ms_p95']:.0f} ms")
    print(f"valid structured output: first attempt {100 * results['valid_first_attempt']:.1f}%, "
          f"within retries {100 * results['valid_within_retries']:.1f}%")
    print("users/s by batch size: " + ", ".join(f"{k}: {v:.2f}" for k, v in scaling.items()))


if __name__ == "__main__":
    main()
