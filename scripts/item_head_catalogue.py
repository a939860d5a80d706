"""Validation only: the item-head model over the whole catalogue, alone and as a source of the memory
candidate stage (``RetrievalConfig.w_llm``), against the memory candidate stage alone.

    python scripts/item_head_catalogue.py [--users 200] [--models DIR ...]
    python scripts/item_head_catalogue.py --rest-of 400 --ensemble --models A B   # users outside that sample
    python scripts/item_head_catalogue.py --users all --models C --pair-with R.json   # C against R's models

Each sampled user's memory holds their training sequence; the target is their VALIDATION item (no test
target is read). Reports NDCG@10 and recall@N (N = 15, 20, 30, 50: what a re-ranker of the top N could reach)
over the whole catalogue (consumed items excluded) for: the memory candidate stage (w_co 1, 10-minute
short half-life: the memory model's validation choice in the main job), each model alone, and the stage
with each model at several weights; paired against memory (bootstrap and Wilcoxon) and, with two or more
models, every model against every other (each user's NDCG@10 is kept in the report for later pairings; with
``--pair-with``, every model read here against every model of an earlier report on the same users, whose stored
numbers stand in for a re-read once its memory stage's per-user numbers are checked equal to this run's). With
``--ensemble``, the mean of the models' logits is scored as one more model and paired against each of them.
Default models: the committed ones under models/ (every config). With ``--sequential sasrec`` (or lstm+text),
that harness model, fitted on the test-like split (``leave_one_out(without_last(ds))``, as the harness's
``--validation auto``; seed ``--seed``), is read on the same users like one more model, for context.
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

import numpy as np  # noqa: E402
from _validation import catalogue_logits, memory_stage, validation_setup  # noqa: E402

from eval import branch_from_manifest, paired_test  # noqa: E402

WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)
NS = (15, 20, 30, 50)


def _ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    t = scores[np.arange(len(targets)), targets][:, None]
    return 1 + (scores > t).sum(axis=1)


def _summary(ranks: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    ndcg = np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0.0)
    return ndcg, {"ndcg@10": round(float(ndcg.mean()), 4),
                  **{f"recall@{n}": round(float((ranks <= n).mean()), 4) for n in NS}}


def _pair_with(path: Path, users: list[str], base_ndcg: np.ndarray, per_model: dict[str, np.ndarray],
               seed: int) -> dict[str, dict]:
    """Each model read here minus each model of the stored report ``path``, paired on the same users; refuses a
    report on other users or whose memory stage scored them differently (then the runs are not comparable)."""
    stored = json.loads(path.read_text())["per_user_ndcg@10"]
    if stored["users"] != users:
        raise SystemExit(f"{path}: another set or order of users; it cannot be paired with this run")
    if not np.allclose(np.asarray(stored["memory"]), base_ndcg, rtol=0, atol=1e-6):
        raise SystemExit(f"{path}: its memory stage scored these users differently; re-read its models instead")
    old = {k: np.asarray(a) for k, a in stored.items() if k not in ("users", "memory") and k not in per_model}
    return {f"{b} - {a}": paired_test(per_model[b], old[a], seed=seed).to_dict() for a in old for b in per_model}


def _testlike(v, name: str, seed: int) -> np.ndarray:  # noqa: ANN001
    """Harness model ``name`` fitted on the test-like split, its scores after each user's whole training sequence
    (users x catalogue, in the catalogue's order)."""
    from eval import build_sequential, leave_one_out, without_last

    split2 = leave_one_out(without_last(v.ds))
    requests = [split2.request(str(u), "test") for u in v.users]  # split2's test target: the real validation item
    for r, hist in zip(requests, v.kw["histories"], strict=True):
        assert list(r.history) == hist
    model = build_sequential(name, split2.dataset, seed=seed)
    model.fit(split2)
    cols = np.array([model._index[it.item_id] for it in v.catalog.items])
    return np.asarray(model.score_all(requests), dtype=np.float32)[:, cols]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="200", help="a seeded sample size or 'all'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="*", type=Path,
                   default=sorted(d for d in (ROOT / "models").glob("*-item-head-*") if d.is_dir()))
    p.add_argument("--rest-of", type=int, default=None, metavar="N",
                   help="score the validation users OUTSIDE the seeded sample of N instead of --users")
    p.add_argument("--ensemble", action="store_true", help="also score the mean of the models' logits")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "item-head-catalogue.json")
    p.add_argument("--sequential", nargs="*", default=[], metavar="NAME",
                   help="also read these harness sequential models, fitted on the test-like split")
    p.add_argument("--pair-with", type=Path, default=None, metavar="REPORT",
                   help="an earlier report of this script on the same users: pair the models read here with its")
    args = p.parse_args()
    if args.ensemble and len(args.models) < 2:
        p.error("--ensemble needs two or more --models")
    if args.rest_of is not None:
        v = validation_setup(args.rest_of, args.seed, engine=False, rest=True)
    else:
        v = validation_setup(args.users if args.users == "all" else int(args.users), args.seed, engine=False)
    st = memory_stage(v)
    memory, finite, targets, mm = st.memory, st.finite, st.targets, st.mm

    base_ndcg, base = _summary(_ranks(memory, targets))
    sample = f"outside the seeded {args.rest_of}" if args.rest_of is not None else f"seeded {args.users}"
    report = {"users": len(v.users), "sample": sample, "seed": args.seed, "command": " ".join(sys.argv),
              "memory": base, "models": {}}
    per_model, all_logits = {}, []
    for folder in [*args.models, *(["ensemble"] if args.ensemble else []), *(f"seq:{n}" for n in args.sequential)]:
        t0 = time.perf_counter()
        if isinstance(folder, str) and folder.startswith("seq:"):
            name, logits = f"{folder[4:]} (test-like)", _testlike(v, folder[4:], args.seed)
            entry = {"fitted_on": "leave_one_out(without_last(ds))", "seed": args.seed,
                     "seconds_fit_and_read": round(time.perf_counter() - t0, 1)}
        elif folder == "ensemble":  # every model read, its logits averaged
            name, logits = "ensemble", np.mean(all_logits, axis=0)
            entry: dict = {"members": [f.name for f in args.models]}
        else:
            scorer, logits = catalogue_logits(folder, {it.item_id: it.title for it in v.catalog.items},
                                              v.kw["histories"], [it.item_id for it in v.catalog.items],
                                              label=folder.name, every=50, dtype=memory.dtype,
                                              branch=branch_from_manifest(folder))
            name = folder.name
            all_logits.append(logits)
            entry = {"config": scorer.manifest["config"], "windows": scorer.manifest["train"]["windows"],
                     "seconds_per_user": round((time.perf_counter() - t0) / len(v.users), 3)}
        alone_ndcg, alone = _summary(_ranks(np.where(finite, logits, -np.inf), targets))
        entry.update({"alone": {**alone, "vs_memory": paired_test(alone_ndcg, base_ndcg, seed=args.seed).to_dict()},
                      "memory+llm": {}})
        if name == "ensemble":
            entry["vs_members"] = {m: paired_test(alone_ndcg, per_model[m], seed=args.seed).to_dict()
                                   for m in per_model}
        per_model[name] = alone_ndcg
        for w in WEIGHTS:
            nd, s = _summary(_ranks(mm(memory) + w * mm(logits), targets))
            entry["memory+llm"][str(w)] = {**s, "vs_memory": paired_test(nd, base_ndcg, seed=args.seed).to_dict()}
        report["models"][name] = entry
        print(json.dumps({name: {"alone": alone, **{w: e["ndcg@10"] for w, e in entry["memory+llm"].items()}}}),
              flush=True)
    names = [f.name for f in args.models]
    if len(names) >= 2:  # every pair, later model minus earlier, on the same users
        report["model_vs_model"] = {f"{b} - {a}": paired_test(per_model[b], per_model[a], seed=args.seed).to_dict()
                                    for i, a in enumerate(names) for b in names[i + 1:]}
    seqs = [f"{n} (test-like)" for n in args.sequential]
    if seqs:  # each head against each sequential model read here
        report["model_vs_sequential"] = {f"{b} - {a}": paired_test(per_model[b], per_model[a], seed=args.seed)
                                         .to_dict() for a in seqs for b in names}
    if args.pair_with is not None:
        report["paired_with"] = str(args.pair_with)
        report["model_vs_stored"] = _pair_with(args.pair_with, [str(u) for u in v.users], base_ndcg, per_model,
                                               args.seed)
    # each user's NDCG@10 (in v.users order), so that later pairings need no re-read
    report["per_user_ndcg@10"] = {"users": [str(u) for u in v.users], "memory": base_ndcg.round(6).tolist(),
                                  **{k: a.round(6).tolist() for k, a in per_model.items()}}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({"memory": base, **{k: v["alone"] for k, v in report["models"].items()},
                      **report.get("model_vs_model", {}), **report.get("model_vs_sequential", {}),
                      **report.get("model_vs_stored", {})}, indent=1,
                     default=str))


if __name__ == "__main__":
    main()
