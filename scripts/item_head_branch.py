"""The item head with SASRec as a sequence branch, trained jointly (issue #9; ``agent.ItemHeadConfig.branch``).

    python scripts/item_head_branch.py train [--testlike] [--budget-minutes M] [--config JSON]

SASRec (the harness's default config, seed 0) is fitted on the split's training sequences (early stopping on the
split's own validation targets: on the test-like split those are each user's last real training item, no real
validation target), kept under runs/branch/, and becomes the branch: its state after each position, projected
(from zero), is added to the LLM's standardised state before the head's cosine, and SASRec, the LoRA and the head
train together from there, so the loss rewards the LLM for what SASRec's state lacks. The head is cached under
``$TIDE_HOME/models`` like any item head (key = base + data + config, whose ``branch`` names SASRec's config and
the split's validation targets; the fitted weights' sha256 is in the manifest). Read it like any head:
``scripts/item_head_catalogue.py --models <folder>`` builds the branch from the manifest.
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
sys.path.insert(0, str(ROOT / "scripts"))

from _branch import fitted, wrap  # noqa: E402

from agent import ItemHeadConfig, tune_item_head  # noqa: E402
from eval import forbidden_pairs, leave_one_out, load_ml100k, without_last  # noqa: E402
from eval._tune import tune_items  # noqa: E402  (scripts may use the harness's parts)

WORK = ROOT / "runs" / "branch"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["train"])
    p.add_argument("--testlike", action="store_true", help="fit both on the training sequences without their "
                   "last item (eval.without_last), as scripts/item_head.py --testlike")
    p.add_argument("--config", default="{}", help="ItemHeadConfig overrides as JSON (the branch is set here)")
    p.add_argument("--budget-minutes", type=float, default=None)
    args = p.parse_args()
    ds = load_ml100k()
    split = leave_one_out(without_last(ds)) if args.testlike else leave_one_out(ds)
    items = tune_items(split.dataset)
    t0 = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    model, record = fitted(split, WORK / f"sasrec-{'testlike' if args.testlike else 'loo'}")
    print(f"SASRec: best epoch {record['best_epoch']}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    config = ItemHeadConfig.model_validate(json.loads(args.config) | {"branch": record["name"]})
    branch = wrap(model._net, record["item_ids"], [it.item_id for it in items])
    folder = tune_item_head(split.train, items, forbidden_pairs(split), config, branch=branch,
                            log_file=WORK / "train.log",
                            time_budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes,
                            extra={"dataset": split.dataset.name,
                                   "split": f"{'loo of without_last' if args.testlike else 'loo'} (training "
                                            "sequences only)", "branch": record})
    print(folder)


if __name__ == "__main__":
    main()
