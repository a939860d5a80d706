"""Benchmark of the agent on the embedded engine: predict_many users/s, per-user latency p50/p95, Tide's
overhead against the raw engine doing the same requests in the same run, valid-output rate, and how
throughput grows with batch size.

Overhead: Tide's path (memory reads, candidate scoring, prompt rendering, parsing, validation, retries) is
timed against ``vllm.LLM.generate`` called directly with the very prompts and sampling parameters Tide sent
(choice scoring + the interest JSON). Runs alternate A B A B after one warm-up, so vLLM's prefix cache is
equally warm for both; the median ratio is printed.

Usage: python bench/agent.py [--users 32] [--reps 3] [--out runs/bench/agent.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# This file is named agent.py (the issue names it), so running it puts bench/ first on sys.path, where
# "agent" would resolve to this script; drop that entry so "agent" is the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

def build(n_users: int, store_dir: Path):
    import shutil

    from agent import AgentConfig, InterestAgent, TransitionIndex, VLLMEngine
    from eval import leave_one_out, load_ml100k
    from eval._tide import catalog_from_dataset, dataset_behaviors
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

    from agent._agent import LABELS
    from agent._structured import schema_for

    ctxs = agent.contexts(users, [None] * len(users))
    scored = agent._score(ctxs)
    eng = agent.engine
    ids = eng.label_token_ids(LABELS)
    choice = [(agent.rank_prompt(s), SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(ids),
                                                    logprob_token_ids=ids)) for s in scored]
    gen = []
    for _, model, req in agent.interest_requests(scored):  # per-user grounded schemas, as Tide sends them
        req = req.model_copy(update={"json_schema": schema_for(model)})
        gen.append((req.prompt, eng.sampling_params(req)))
    return choice, gen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="runs/bench/agent.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load0 = os.getloadavg()[0]
    agent, users, ingest_s = build(args.users, Path(args.out).parent / "agent_store")
    llm = agent.engine._llm
    results: dict[str, object] = {"users": len(users), "ingest_s": ingest_s, "load_start": load0}

    # warm-up (engine kernels, prefix cache)
    agent.predict_many(users, progress=False, fallback=True)
    choice, gen = raw_requests(agent, users)
    tide_s, raw_s = [], []
    preds = []
    for _ in range(args.reps):
        t = time.perf_counter()
        preds = agent.predict_many(users, progress=False, fallback=True)
        tide_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        llm.generate([p for p, _ in choice], [s for _, s in choice], use_tqdm=False)
        llm.generate([p for p, _ in gen], [s for _, s in gen], use_tqdm=False)
        raw_s.append(time.perf_counter() - t)
    ratio = statistics.median(a / b for a, b in zip(tide_s, raw_s, strict=True))
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
        agent.config.batch_size = bs
        t = time.perf_counter()
        agent.predict_many(users, progress=False, fallback=True)
        scaling[bs] = len(users) / (time.perf_counter() - t)
    results["users_per_s_by_batch"] = scaling
    results["load_end"] = os.getloadavg()[0]

    print("\n== bench/agent.py (embedded engine:", json.dumps(agent.engine.description), ")")
    print(f"users {len(users)}; load average {load0:.2f} -> {results['load_end']:.2f} on 2 cores")
    print(f"predict_many: {results['users_per_s']:.2f} users/s (median of {args.reps}: "
          f"{', '.join(f'{x:.1f}' for x in tide_s)} s)")
    print(f"raw vllm.LLM.generate, same requests: {', '.join(f'{x:.1f}' for x in raw_s)} s")
    print(f"Tide / raw time, median of interleaved runs: {ratio:.3f}  (overhead {100 * (ratio - 1):+.1f}%, target <= +10%)")
    print(f"per-user latency (batch of 1): p50 {results['latency_ms_p50']:.0f} ms, p95 {results['latency_ms_p95']:.0f} ms")
    print(f"valid structured output: first attempt {100 * results['valid_first_attempt']:.1f}%, "
          f"within retries {100 * results['valid_within_retries']:.1f}%")
    print("users/s by batch size: " + ", ".join(f"{k}: {v:.2f}" for k, v in scaling.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")
    agent.store.close()
    agent.close()


if __name__ == "__main__":
    main()
