"""Tune the embedded LLM as a re-ranker on ML-100k's training sequences, then measure it on validation.

    python scripts/tune_ml100k.py train [--max-steps N] [--threads 1] [--tune JSON] [--data JSON]  # long; resumable; cached
    python scripts/tune_ml100k.py validate --model DIR [--users all]    # vLLM: base vs tuned vs retrieval

Training sees only the leave-one-out split's training sequences (validation and test targets are passed
as forbidden pairs, which the builder refuses). Validation: every sampled user's validation item, the
example retriever's top 20 after the whole training sequence (users whose target it misses are left out),
the LLM's letter probabilities averaged over two candidate orders (as given and reversed); mean target
rank and NDCG@10 within the candidates, paired against the retrieval order. Never reads test targets.
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

from agent import TuneConfig, TuneDataConfig, model_dir, record_metrics  # noqa: E402
from eval import (  # noqa: E402
    leave_one_out,
    load_ml100k,
    sample_users,
    tune_on_split,
    validate_model,
    validation_report,
)

#: the configuration of the recorded run (docs/results/tune.md) = the library defaults
DATA = TuneDataConfig()
TUNE = TuneConfig()


def train(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    split = leave_one_out(load_ml100k())
    config = TuneConfig.model_validate({**TUNE.model_dump(), "max_steps": args.max_steps, **json.loads(args.tune)})
    data = TuneDataConfig.model_validate({**DATA.model_dump(), **json.loads(args.data)})
    log = ROOT / "runs" / "tune" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(tune_on_split(split, data, config, log_file=log, time_budget_s=None if args.budget_minutes is None else args.budget_minutes * 60))


def validate(args: argparse.Namespace) -> None:
    """Score one model (``--name base`` or a tuned folder) and keep its per-user probabilities; once both
    base and tuned are there, write the report."""
    split = leave_one_out(load_ml100k())
    users = sample_users(split, "all" if args.users == "all" else int(args.users), args.seed)
    runs_dir = ROOT / "runs" / "tune"
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir() if args.name == "base" else Path(args.model)
    run = validate_model(split, path, DATA, users)
    (runs_dir / f"val-{args.name}.json").write_text(json.dumps(run))
    print(f"{args.name}: {len(run['users'])} of {run['looked']} users, {run['seconds']} s", file=sys.stderr)
    names = [n for n in ("base", "tuned") if (runs_dir / f"val-{n}.json").exists()]
    runs = {n: json.loads((runs_dir / f"val-{n}.json").read_text()) for n in names}
    report = validation_report(runs)
    report.update({"data": DATA.model_dump(), "command": " ".join(sys.argv)})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    m = report["models"]
    if "tuned" in runs:
        record_metrics(Path(runs["tuned"]["model"]), {"validation": {
            k: {"rank": m[k]["rank"]["mean"], "ndcg@10": m[k]["ndcg@10"]["mean"]} for k in m},
            "validation_users": report["n"]})
    print(json.dumps({k: {"rank": v["rank"]["mean"], "ndcg@10": v["ndcg@10"]["mean"]} for k, v in m.items()},
                     indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--budget-minutes", type=float, default=None)
    t.add_argument("--tune", default="{}", help='TuneConfig overrides as JSON, e.g. {"dtype": "bfloat16"}')
    t.add_argument("--data", default="{}", help='TuneDataConfig overrides as JSON, e.g. {"positions_per_user": 8}')
    v = sub.add_parser("validate")
    v.add_argument("--name", choices=["base", "tuned"], required=True)
    v.add_argument("--model", help="the tuned model folder (with --name tuned)")
    v.add_argument("--users", default="600")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default=str(ROOT / "docs" / "results" / "tune-validation.json"))
    args = p.parse_args()
    train(args) if args.cmd == "train" else validate(args)


if __name__ == "__main__":
    main()
