"""The item head with SASRec as a sequence branch, trained jointly (issue #9; ``agent.ItemHeadConfig.branch``).

    python scripts/item_head_branch.py train [--testlike] [--budget-minutes M] [--config JSON]
    python scripts/item_head_branch.py stage --model DIR [--seed 0] [--choose-on 400] [--controls]

SASRec (the harness's default config, seed 0) is fitted on the split's training sequences (early stopping on the
split's own validation targets: on the test-like split those are each user's last real training item, no real
validation target), kept under runs/branch/, and becomes the branch: its state after each position, projected
(from zero), is added to the LLM's standardised state before the head's cosine, and SASRec, the LoRA and the head
train together from there, so the loss rewards the LLM for what SASRec's state lacks. The head is cached under
``$TIDE_HOME/models`` like any item head (key = base + data + config, whose ``branch`` names SASRec's config and
the split's validation targets; the fitted weights' sha256 is in the manifest). Read it like any head:
``scripts/item_head_catalogue.py --models <folder>`` builds the branch from the manifest.

``stage`` (validation only, test-like; no test target read): the branch head over the harness-like candidate
stage, as ``scripts/item_head_residual.py validate --scorer mix`` read the residual head: on the arrays
``scripts/learned_blend.py`` caches (computed here when missing: the memory stage, lstm+text and SASRec fitted on
the test-like split, the committed test-like head ``f0afd07af37c``), the stage is memory + w_seq · min-max((6 ·
lstm+text + 3 · sasrec) / 9) with w_seq chosen on the seeded ``--choose-on`` users; each head's weight on top of
it is chosen on the same users, and the heads are read and paired on the OTHER users. Writes
``docs/results/item-head-branch-stage.json``.
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

from agent import ItemHeadConfig, tune_item_head  # noqa: E402
from eval import (  # noqa: E402
    branch_from_manifest,
    fitted_branch,
    forbidden_pairs,
    leave_one_out,
    load_ml100k,
    without_last,
)
from eval._tune import tune_items  # noqa: E402  (scripts may use the harness's parts)

WORK = ROOT / "runs" / "branch"


def stage(args: argparse.Namespace) -> None:
    import numpy as np
    from _validation import cached_arrays, catalogue_logits
    from learned_blend import HEAD, WEIGHTS, blend_arrays, compute, fixed_stage, mm, ndcg_of_ranks, ranks_of

    from eval import paired_test

    cache = ROOT / "runs" / "blend" / "val.npz"
    cached_arrays(cache, lambda: compute(argparse.Namespace(seed=args.seed)))
    d, users, pick = blend_arrays(cache, args.choose_on, args.seed)
    split = leave_one_out(load_ml100k())
    cat_ids = list(split.item_ids)

    def head_logits() -> dict[str, np.ndarray]:
        from eval._tide import catalog_from_dataset  # the titles item_head_catalogue.py reads (scripts may)
        from memory import SentenceTransformerEmbedder

        catalog = catalog_from_dataset(split.dataset, SentenceTransformerEmbedder.from_package())
        titles = {it.item_id: it.title for it in catalog.items}
        out = catalogue_logits(args.model, titles, [split.train[u] for u in users], cat_ids, label="branch head",
                               every=100, branch=branch_from_manifest(args.model))[1]
        return {"branch": out, "users": np.array(users)}

    r = cached_arrays(WORK / f"stage-{args.model.name}.npz", head_logits)
    assert [str(u) for u in r["users"]] == users
    fs = fixed_stage(d, pick)
    targets, finite, chosen, stage_nd, fixed = fs.targets, fs.finite, fs.chosen, fs.stage_nd, fs.stage
    report: dict = {"command": " ".join(sys.argv), "users": len(users), "choose_on": int(pick.sum()),
                    "read_on": int((~pick).sum()), "branch_head": args.model.name, "standard_head": HEAD.name,
                    "stage": {"w_seq_grid_choose": fs.grid, "w_seq": fs.w_seq,
                              "read": round(float(stage_nd[~pick].mean()), 4)}}
    best = {}
    for name, logits in (("standard", d["llm"]), ("branch", r["branch"])):
        w, nd, grid = chosen({x: fixed + x * mm(logits, finite) for x in WEIGHTS})
        best[name] = nd
        alone = ndcg_of_ranks(ranks_of(np.where(finite, logits, -np.inf), targets))
        report[name] = {"alone_all": round(float(alone.mean()), 4),
                        "alone_read": round(float(alone[~pick].mean()), 4),
                        "weight_grid_choose": grid, "weight": w, "read": round(float(nd[~pick].mean()), 4),
                        "read_vs_stage": paired_test(nd[~pick], stage_nd[~pick], seed=args.seed).to_dict()}
    report["branch_vs_standard_read"] = paired_test(best["branch"][~pick], best["standard"][~pick],
                                                    seed=args.seed).to_dict()
    out = ROOT / "docs" / "results" / "item-head-branch-stage.json"
    if args.controls:  # is the branch head's gain sequential weight the stage could not reach?
        wider = (*WEIGHTS, 16.0, 32.0, 64.0)
        for name, options in (("w_seq_wider", {w: fs.n["memory"] + w * fs.mix for w in wider}),
                              ("sasrec_on_top", {x: fixed + x * fs.n["sasrec"] for x in WEIGHTS})):
            w, nd, grid = chosen(options)
            report.setdefault("controls", {})[name] = {
                "weight_grid_choose": grid, "weight": w, "read": round(float(nd[~pick].mean()), 4),
                "read_vs_stage": paired_test(nd[~pick], stage_nd[~pick], seed=args.seed).to_dict(),
                "branch_vs_control_read": paired_test(best["branch"][~pick], nd[~pick], seed=args.seed).to_dict()}
        out = out.with_name("item-head-branch-stage-controls.json")
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=1, default=str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["train", "stage"])
    p.add_argument("--model", type=Path, default=None, help="stage: the branch head's folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--choose-on", type=int, default=400)
    p.add_argument("--controls", action="store_true", help="stage: also read two controls (the stage's w_seq grid "
                   "up to 64; SASRec on top of the stage), each against the branch head")
    p.add_argument("--testlike", action="store_true", help="fit both on the training sequences without their "
                   "last item (eval.without_last), as scripts/item_head.py --testlike")
    p.add_argument("--config", default="{}", help="ItemHeadConfig overrides as JSON (the branch is set here)")
    p.add_argument("--budget-minutes", type=float, default=None)
    args = p.parse_args()
    if args.cmd == "stage":
        if args.model is None:
            p.error("stage needs --model")
        stage(args)
        return
    ds = load_ml100k()
    split = leave_one_out(without_last(ds)) if args.testlike else leave_one_out(ds)
    items = tune_items(split.dataset)
    t0 = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    branch, record = fitted_branch(split, [it.item_id for it in items],
                                   WORK / f"sasrec-{'testlike' if args.testlike else 'loo'}")
    print(f"SASRec: best epoch {record['best_epoch']}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    config = ItemHeadConfig.model_validate(json.loads(args.config) | {"branch": record["name"]})
    folder = tune_item_head(split.train, items, forbidden_pairs(split), config, branch=branch,
                            log_file=WORK / "train.log",
                            time_budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes,
                            extra={"dataset": split.dataset.name,
                                   "split": f"{'loo of without_last' if args.testlike else 'loo'} (training "
                                            "sequences only)", "branch": record})
    print(folder)


if __name__ == "__main__":
    main()
