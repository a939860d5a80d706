"""Choose how much the agent's choice prompt shows — history lines and candidates — on ML-100k VALIDATION
targets (never test), by the FUSED ranking the main job reports, and the LLM seconds each costs.

    python scripts/prompt_budget.py [--users 200] [--weight 0.5] [--configs JSON] [--out docs/results/prompt-budget.json]

Set-up as ``scripts/prompt_check.py``: every sampled user's memory is filled up to their validation item;
the memory candidate stage (w_co 1, 10-minute short half-life) ranks the catalogue; users whose validation
item is outside the top 20 are left out (no prompt setting can move it into the top 10; they score 0 under
every configuration). Each configuration (``AgentConfig`` updates: ``n_recent``, ``n_long``,
``retrieval.n_candidates``) renders the agent's own choice prompt; the LLM's letter probabilities are fused
with the retrieval scores at ``--weight`` (the main job's validation choice) exactly as the agent fuses
them (``InterestAgent.fuse``), and the target's rank in the fused list is scored (NDCG@10, mean rank).
Reported per configuration: prompt tokens, LLM seconds, fused and LLM-alone metrics, paired tests against
the first configuration (the current default).

With ``--interests N`` (run after the rule above had chosen, because the main job then showed that
interests depend on the history length): each configuration also writes the constrained interests of the
first N sampled validation users (all of them, whatever their candidates), scored by interest F1 against
the validation item's genres, paired against the first configuration.

Rule, stated before the run: the configuration with the fewest prompt tokens is kept unless its fused
NDCG@10 is significantly below the first configuration's (paired bootstrap p < 0.05) or more than 0.005
below it in mean; otherwise the next cheapest, and so on.
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

from agent import InterestAgent  # noqa: E402
from eval import (  # noqa: E402
    bootstrap_ci,
    interest_prf,
    paired_test,
    tune_validation,
)

DEFAULT_CONFIGS = [
    {"n_recent": 6, "n_long": 4},
    {"n_recent": 4, "n_long": 2},
    {"n_recent": 6, "n_long": 4, "retrieval": {"n_candidates": 15}},
    {"n_recent": 4, "n_long": 2, "retrieval": {"n_candidates": 15}},
]
MAX_CANDIDATES = 20
NDCG_MARGIN = 0.005


def config_name(cfg: dict) -> str:
    flat = {**{k: v for k, v in cfg.items() if k != "retrieval"}, **cfg.get("retrieval", {})}
    return ",".join(f"{k}={v}" for k, v in flat.items())


def choose(info: dict, report: dict, reference: str) -> str:
    """The rule of the module docstring."""
    paired = {p["model"]: p for p in report["paired"] if p["metric"] == "ndcg@10"}
    for name in sorted(info, key=lambda n: info[n]["mean_prompt_tokens"]):
        if name == reference:
            return name
        p = paired[f"fused {name}"]
        if not (p["mean_diff"] < 0 and p["p_bootstrap"] < 0.05) and p["mean_diff"] >= -NDCG_MARGIN:
            return name
    return reference


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weight", type=float, default=0.5)
    p.add_argument("--configs", default=json.dumps(DEFAULT_CONFIGS))
    p.add_argument("--out", default="docs/results/prompt-budget.json")
    p.add_argument("--interests", type=int, default=0, help="also score the interests of this many users")
    args = p.parse_args()
    configs = json.loads(args.configs)

    v = validation_setup(args.users, args.seed, {"n_candidates": MAX_CANDIDATES})
    ds, split, users, catalog, engine, base = v.ds, v.split, v.users, v.catalog, v.engine, v.base
    nows, kw = v.nows, v.kw
    first = base.score_candidates(users, nows, **kw)
    target_ids = [split.val[u].item_id for u in users]
    keep = [i for i, s in enumerate(first) if catalog.index[target_ids[i]] in s.candidates]
    print(f"{len(keep)} of {len(users)} users have their validation item in the top {MAX_CANDIDATES}",
          file=sys.stderr, flush=True)
    sub = {k: [v[i] for i in keep] for k, v in kw.items()}
    targets = [target_ids[i] for i in keep]

    def fused_rank(agent: InterestAgent, s, probs, target: str, weight: float) -> int:
        ranked = [x.item_id for x in agent.fuse(s, probs, MAX_CANDIDATES, weight=weight)]
        return ranked.index(target) + 1  # the target is in the top 20 of the retrieval, hence of any fusion

    if args.interests:
        interest_report(args, base, configs, users[:args.interests], nows, kw, split, ds)
        engine.close()
        return
    rankers: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {}
    for cfg in configs:
        name = config_name(cfg)
        agent = base.with_config(**cfg)
        scored = agent.score_candidates([users[i] for i in keep], [nows[i] for i in keep], **sub)
        tokens = [len(engine.tokenizer.encode(agent.choice_prompt(s))) for s in scored]
        t0 = time.perf_counter()
        probs = agent.choice_probs(scored)
        seconds = time.perf_counter() - t0
        if "retrieval" not in rankers:
            rankers["retrieval"] = np.asarray([fused_rank(agent, s, None, t, 0.0)
                                               for s, t in zip(scored, targets, strict=True)])
        rankers[f"fused {name}"] = np.asarray([fused_rank(agent, s, c, t, args.weight)
                                               for s, c, t in zip(scored, probs, targets, strict=True)])
        rankers[f"llm {name}"] = np.asarray([fused_rank(agent, s, c, t, 1.0)
                                             for s, c, t in zip(scored, probs, targets, strict=True)])
        info[name] = {"config": cfg, "mean_prompt_tokens": float(np.mean(tokens)), "llm_seconds": seconds,
                      "seconds_per_prompt": seconds / max(1, len(keep))}
        print(f"{name}: {np.mean(tokens):.0f} tokens, {seconds:.0f} s, fused NDCG@10 "
              f"{np.mean(np.where(rankers[f'fused {name}'] <= 10, 1 / np.log2(rankers[f'fused {name}'] + 1), 0)):.4f}",
              file=sys.stderr, flush=True)
    reference = config_name(configs[0])
    report = tune_validation(rankers, reference=f"fused {reference}")
    chosen = choose(info, report, reference)
    report.update({"users_looked_at": len(users), "users_scored": len(keep), "weight": args.weight,
                   "configs": info, "chosen": chosen, "rule": __doc__.split("Rule, stated before the run: ")[1].strip(),
                   "command": " ".join(sys.argv)})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: {"rank": v["rank"]["mean"], "ndcg@10": v["ndcg@10"]["mean"]}
                      for k, v in report["models"].items()}, indent=1))
    print(json.dumps([x for x in report["paired"] if x["metric"] == "ndcg@10"], indent=1))
    print("chosen:", chosen, info[chosen])
    engine.close()


def interest_report(args, base, configs, users, nows, kw, split, ds) -> None:
    """Interest F1 per configuration on ``users``' validation items (see the module docstring)."""
    f1: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {}
    n = len(users)
    for cfg in configs:
        name = config_name(cfg)
        agent = base.with_config(**cfg)
        scored = agent.score_candidates(users, nows[:n], **{k: v[:n] for k, v in kw.items()})
        t0 = time.perf_counter()
        agent.choice_probs(scored)  # as the agent does: the interest prompt reuses the choice prompt's prefix
        out = agent.llm_interests(scored)
        seconds = time.perf_counter() - t0
        vals = []
        for u, o in zip(users, out, strict=True):
            labels = list(dict.fromkeys(x.label for x in o.value.interests)) if hasattr(o, "value") else []
            vals.append(interest_prf(labels, ds.items[split.val[u].item_id].genres)[2])
        f1[name] = np.asarray(vals)
        info[name] = {"config": cfg, "seconds": seconds, "valid": sum(hasattr(o, "value") for o in out) / n,
                      "f1": bootstrap_ci(f1[name]).to_dict()}
        print(f"{name}: interest F1 {f1[name].mean():.3f}, {seconds:.0f} s", file=sys.stderr, flush=True)
    ref = config_name(configs[0])
    paired = [{"model": k, "baseline": ref, **paired_test(v, f1[ref]).to_dict()} for k, v in f1.items() if k != ref]
    report = {"users": n, "configs": info, "paired": paired, "command": " ".join(sys.argv)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
