"""Summaries of sampled ML-100k users as the embedded model writes them: how many are the LLM's (the rest are
rendered from the facts and flagged), tries per summary, why tries were rejected, seconds.

    python scripts/summary_check.py [--users 40] [--seed 1] [--out docs/results/summary-check.json]

Each sampled user's memory holds their training sequence (up to their validation item); one summary per
user, one user at a time, through the embedded vLLM engine.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import AgentConfig, InterestAgent, VLLMEngine  # noqa: E402
from eval import leave_one_out, load_ml100k, sample_users, to_datetime  # noqa: E402
from eval._tide import MemorySync, catalog_from_dataset  # noqa: E402  (scripts may use the harness's parts)
from memory import MemoryStore, SentenceTransformerEmbedder  # noqa: E402

#: the kinds of rejection (agent._summary's reasons, category names left out)
KINDS = (("names none", "names no fact"), ("rising, which", "misstates a rise"),
         ("fading, which", "misstates a fall"), ("a favourite", "misstates a favourite"),
         ("most popular", "'most popular' of nothing"), ("weekend", "misstates the weekend"),
         ("twice", "lists one twice"), ("repeats", "repeats a sentence"), ("not in the facts", "names foreign"),
         ("leads with", "leads with a non-leader"), ("'lately'", "'lately' names a non-leader"),
         ("no complete sentence", "no complete sentence"))


def _kind(reason: str) -> str:
    return next((kind for key, kind in KINDS if key in reason), reason)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "summary-check.json")
    args = p.parse_args()
    ds = load_ml100k()
    split = leave_one_out(ds)
    emb = SentenceTransformerEmbedder.from_package()
    store = MemoryStore.open(Path(tempfile.mkdtemp()) / "memory", embedder=emb)
    store.reconfigure(short_half_life_days=1 / 144)  # the main job's validation choice
    catalog = catalog_from_dataset(ds, emb)
    users = [u for u in sample_users(split, args.users, args.seed) if u in split.val]
    requests = [split.request(u, "val") for u in users]
    MemorySync(store, ds, progress=False).sync(requests)
    engine = VLLMEngine.from_defaults()
    try:
        agent = InterestAgent(store, catalog, engine, AgentConfig())
        t0 = time.perf_counter()
        rows = []
        for u, r in zip(users, requests, strict=True):
            [s] = agent.summarize_many([u], to_datetime(int(r.now)))
            rows.append({"user": u, "generated_by": s.generated_by, "attempts": s.provenance.attempts,
                         "text": s.text, "reasons": s.provenance.reasons,
                         "facts": {"rising": s.facts.rising, "fading": s.facts.fading,
                                   "long_top": [n for n, _ in s.facts.long_top]}})
            print(f"{len(rows)}/{len(users)} {s.generated_by}: {s.text}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t0
    finally:
        engine.close()
    reasons = collections.Counter(_kind(r) for row in rows for r in row["reasons"])
    report = {"command": " ".join(sys.argv), "users": len(rows), "seed": args.seed,
              "llm": sum(r["generated_by"] == "llm" for r in rows),
              "mean_attempts": round(sum(r["attempts"] for r in rows) / len(rows), 2),
              "seconds": round(seconds, 1), "rejections": dict(reasons.most_common()), "rows": rows}
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
