"""Choose the agent's choice-prompt history length on ML-100k VALIDATION targets (never test).

    python scripts/prompt_check.py [--users 200] [--configs '[{"n_recent":8,"n_long":6},{"n_recent":6,"n_long":4}]']

Every sampled user's memory is filled up to their validation item; the memory candidate stage (w_co 1,
10-minute short half-life: the memory model's validation choice in the main job) gives 20 candidates;
users whose validation item is not among them are left out (no prompt can move it). Each configuration
(``AgentConfig`` updates: ``n_recent``, ``n_long``) renders the agent's own choice prompt for the same
users and candidates; the embedded LLM's letter probabilities alone rank the candidates. Reported: prompt
tokens and LLM seconds per configuration, mean target rank and NDCG@10 within the candidates (the retrieval
order beside them), paired tests against the first configuration. Rule (stated before the run): the
shortest prompt is kept unless it is significantly worse than the first (paired bootstrap p < 0.05).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from _validation import validation_setup  # noqa: E402

from eval import tune_validation  # noqa: E402

DEFAULT_CONFIGS = [{"n_recent": 8, "n_long": 6}, {"n_recent": 6, "n_long": 4}]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--configs", default=json.dumps(DEFAULT_CONFIGS))
    p.add_argument("--out", default="docs/results/prompt-check.json")
    args = p.parse_args()
    configs = json.loads(args.configs)

    v = validation_setup(args.users, args.seed)
    split, users, catalog, engine, base = v.split, v.users, v.catalog, v.engine, v.base
    nows, kw = v.nows, v.kw
    first = base.score_candidates(users, nows, **kw)
    keep = [i for i, s in enumerate(first) if catalog.index[split.val[users[i]].item_id] in s.candidates]
    targets = [first[i].candidates.index(catalog.index[split.val[users[i]].item_id]) for i in keep]
    print(f"{len(keep)} of {len(users)} users have their validation item among the candidates", file=sys.stderr)
    rankers: dict[str, np.ndarray] = {"retrieval": np.asarray(targets) + 1}
    info: dict[str, dict] = {}
    for cfg in configs:
        name = ",".join(f"{k}={v}" for k, v in cfg.items())
        agent = base.with_config(**cfg)
        scored = agent.score_candidates([users[i] for i in keep], [nows[i] for i in keep],
                                        **{k: [v[i] for i in keep] for k, v in kw.items()})
        if [s.candidates for s in scored] != [first[i].candidates for i in keep]:
            raise SystemExit(f"{name}: the candidates changed with the prompt settings")
        prompts_ = [agent.choice_prompt(s) for s in scored]
        tokens = [len(engine.tokenizer.encode(x)) for x in prompts_]
        t0 = time.perf_counter()
        probs = agent.choice_probs(scored)
        seconds = time.perf_counter() - t0
        ranks = [1 + int(np.sum(c.per_candidate() > c.per_candidate()[t])) for c, t in zip(probs, targets, strict=True)]
        rankers[name] = np.asarray(ranks)
        info[name] = {"config": cfg, "mean_prompt_tokens": float(np.mean(tokens)), "llm_seconds": seconds,
                      "seconds_per_prompt": seconds / max(1, len(keep))}
        print(f"{name}: {np.mean(tokens):.0f} tokens, {seconds:.0f} s, mean rank {np.mean(ranks):.2f}",
              file=sys.stderr, flush=True)
    report = tune_validation(rankers, reference=next(iter(info)))
    report.update({"users_looked_at": len(users), "configs": info, "command": " ".join(sys.argv),
                   "retrieval_mean_rank": float(np.mean(rankers["retrieval"]))})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: {"rank": v["rank"]["mean"], "ndcg@10": v["ndcg@10"]["mean"]}
                      for k, v in report["models"].items()}, indent=1))
    print(json.dumps(report["paired"], indent=1))
    engine.close()


if __name__ == "__main__":
    main()
