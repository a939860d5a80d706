"""Tune the embedded LLM as an item-head sequential recommender on ML-100k, then measure it on validation.

    python scripts/item_head.py train [--budget-minutes M] [--config JSON] [--device cuda]  # resumable; by key
    python scripts/item_head.py validate [--users all] [--config JSON]      # the LLM alone vs retrieval
    ... --testlike   # trained without each user's last training item (eval.without_last), validated on the
                     # real validation targets: test-like, as the model stands at the real test targets

Training reads the leave-one-out split's training sequences only (validation and test targets are
forbidden pairs, which the window builder refuses); see ``agent._itemhead``. Validation reads validation
targets only: the example retriever's top 20 after the whole training sequence (users it misses left out),
the tuned model's target rank among them against the retrieval order's (paired), and on the same users the
model's own full-catalogue NDCG@10. The metrics go into the model's manifest and
``docs/results/item-head-validation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import ItemHeadConfig, model_dir, record_metrics  # noqa: E402
from eval import (  # noqa: E402
    item_head_on_split,
    leave_one_out,
    load_ml100k,
    sample_users,
    validate_item_head,
    without_last,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["train", "validate"])
    p.add_argument("--config", default="{}", help='ItemHeadConfig overrides as JSON, e.g. {"rank": 8}')
    p.add_argument("--budget-minutes", type=float, default=None)
    p.add_argument("--base", default=None, help="a prepared model's name under $TIDE_HOME/models (default: the "
                   "embedded model), e.g. qwen2.5-coder-0.5b-instruct ('tide model prepare --model NAME')")
    p.add_argument("--device", default=None, help="where training runs: cpu, cuda, cuda:1… (default: CUDA when "
                   "torch sees it, else the CPU)")
    p.add_argument("--users", default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: docs/results/item-head-validation[-testlike].json")
    p.add_argument("--testlike", action="store_true", help="train on the training sequences without their last "
                   "item (eval.without_last); validate on the real validation targets")
    args = p.parse_args()
    ds = load_ml100k()
    split = leave_one_out(ds)
    tuned_on = leave_one_out(without_last(ds)) if args.testlike else split
    args.out = args.out or str(ROOT / "docs" / "results" / f"item-head-validation{'-testlike' if args.testlike else ''}.json")
    config = ItemHeadConfig.model_validate(json.loads(args.config))
    base = None if args.base is None else model_dir(name=args.base)
    if args.cmd == "train":
        log = ROOT / "runs" / "itemhead" / "train.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        budget = None if args.budget_minutes is None else 60 * args.budget_minutes
        print(item_head_on_split(tuned_on, config, log_file=log, time_budget_s=budget, base=base, device=args.device))
        return
    folder = item_head_on_split(tuned_on, config, train=False, base=base)
    if folder is None:
        sys.exit("no item-head model for this config is cached or committed: run `train` first")
    users = sample_users(split, "all" if args.users == "all" else int(args.users), args.seed)
    report = validate_item_head(split, folder, users)
    report["command"] = " ".join(sys.argv)
    m = report["models"]
    record_metrics(folder, {"validation": {
        "users_in_candidates": report["n"], "rank": {k: m[k]["rank"]["mean"] for k in m},
        "ndcg@10_in_candidates": {k: m[k]["ndcg@10"]["mean"] for k in m},
        "full_ndcg@10_same_users": report["full_ndcg@10_same_users"]["mean"]}})
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: {"rank": v["rank"]["mean"], "ndcg@10": v["ndcg@10"]["mean"]} for k, v in m.items()}
                     | {"paired": report["paired"], "full_ndcg@10_same_users": report["full_ndcg@10_same_users"]}, indent=1, default=str))


if __name__ == "__main__":
    main()
