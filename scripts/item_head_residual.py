"""Residual item head (issue #9): train the LLM's item head on what SASRec lacks, then measure it on validation.

    python scripts/item_head_residual.py train [--budget-minutes M] [--epochs 1] [--scorer sasrec|mix]
    python scripts/item_head_residual.py validate [--seed 0] [--choose-on 400] [--logit-sum]
    python scripts/item_head_residual.py validate --scorer mix [--seed 0] [--choose-on 400]

Both read the test-like split only for fitting (``leave_one_out(without_last(ds))``: each user's last training
item removed; its targets are forbidden pairs) and the real validation targets only for measuring; no test
target is read.

``train``: two SASRec models are fitted on the users of one half each (users sorted, alternating); during the
item head's training the SASRec logits of the model fitted WITHOUT the window's user are added to the head's
logits at every position (``ItemHeadConfig.residual = "sasrec-crossfit2"``), so the head learns what SASRec does
not already predict. The head is cached under ``$TIDE_HOME/models`` like any item head (key = base + data +
config).

``--scorer mix`` (rule of 2026-12-04 in docs/RESULTS.md): the fixed scorer is the harness's whole sequential
mix instead, ``(6 · lstm+text + 3 · sasrec) / 9`` in logit space (each model cross-fitted as above;
``ItemHeadConfig.residual = "mix-crossfit2"``). Its ``validate`` reads the arrays ``scripts/learned_blend.py``
caches (memory stage, both sequential models and the standard head, test-like) and scores only the residual
head: the stage is ``fixed`` there (memory + w_seq · the min-max mix), each head's weight is chosen on the
seeded users and read on the others, and so is the logit-sum reading (the stage's sequential source =
min-max(the pooled logits + the residual head's)). Writes ``docs/results/item-head-residual-mix.json``.

``validate``: every validation user, after their whole real training sequence: the memory candidate stage
(w_co 1, 10-minute short half-life; as scripts/item_head_catalogue.py), SASRec fitted on the test-like split
(the harness's ``--validation auto``), and two heads trained on the test-like split: the standard one
(committed, ``f0afd07af37c``) and the residual one. Choices are made on the seeded ``--choose-on`` users
(``w_seq`` for the stage, then each head's weight), and the comparison is read on the OTHER users with those
choices fixed (paired bootstrap and Wilcoxon). Writes ``docs/results/item-head-residual.json``. With
``--logit-sum``, also the combination the residual head was trained for: the stage's sequential source is
min-max(SASRec's logits + the head's), its weight chosen on the same users
(``docs/results/item-head-residual-logit-sum.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402

from agent import ItemHeadConfig, tune_item_head  # noqa: E402
from eval import (  # noqa: E402
    build_sequential,
    forbidden_pairs,
    leave_one_out,
    load_ml100k,
    paired_test,
    sample_users,
    without_last,
)
from eval._tune import tune_items  # noqa: E402  (scripts may use the harness's parts)

WORK = ROOT / "runs" / "residual"
RESIDUAL = {"sasrec": "sasrec-crossfit2", "mix": "mix-crossfit2"}
MIX = (("lstm+text", 6.0), ("sasrec", 3.0))  # eval.RETRIEVER_MIX
STANDARD = ROOT / "models" / "gemma-3-270m-item-head-f0afd07af37c"
WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _fitted(split, users: set[str] | None, name: str, model_name: str = "sasrec"):  # noqa: ANN001, ANN202
    """A sequential model (SASRec by default) fitted on ``split`` restricted to ``users`` (None: all), saved
    under runs/residual/ and reused."""
    from eval._lstm import LSTMPredictor  # scripts may use the harness's parts
    from eval._sasrec import SASRecPredictor

    folder = WORK / name
    if (folder / "config.json").exists():
        cls = SASRecPredictor if model_name.startswith("sasrec") else LSTMPredictor
        return cls.load(folder, device="cpu")
    sub = split if users is None else dataclasses.replace(
        split, train={u: s for u, s in split.train.items() if u in users},
        train_timestamps={u: s for u, s in split.train_timestamps.items() if u in users},
        val={u: t for u, t in split.val.items() if u in users}, test={u: t for u, t in split.test.items() if u in users})
    t0 = time.perf_counter()
    model = build_sequential(model_name, split.dataset, seed=0)
    model.fit(sub)
    model.save(folder)
    print(f"{name}: fitted on {len(sub.train)} users in {time.perf_counter() - t0:.0f} s "
          f"(best epoch {model.best_epoch})", file=sys.stderr, flush=True)
    return model


def _history_scores(model, histories: list[list[str]], cols: np.ndarray) -> np.ndarray:  # noqa: ANN001
    reqs = [SimpleNamespace(history=h) for h in histories]
    return model.score_all(reqs)[:, cols]


def train(args: argparse.Namespace) -> None:
    ds_tl = without_last(load_ml100k())
    split = leave_one_out(ds_tl)
    items = tune_items(split.dataset)
    users = sorted(split.train)
    fold = {u: i % 2 for i, u in enumerate(users)}
    # model k was fitted without fold k's users: it scores them
    parts = MIX if args.scorer == "mix" else (("sasrec", 1.0),)
    total = sum(w for _, w in parts)
    models = {name: [_fitted(split, {u for u in users if fold[u] != k}, f"{name.replace('+', '-')}-without-fold{k}",
                             name) for k in (0, 1)] for name, _ in parts}
    ids = [it.item_id for it in items]
    cols = {name: np.array([m[0]._index[i] for i in ids]) for name, m in models.items()}  # one index per dataset

    def offsets(user: str, seq: list[int]) -> np.ndarray:
        prefixes = [[ids[j] for j in seq[:k + 1]] for k in range(len(seq))]
        return sum((w / total) * _history_scores(models[name][fold[user]], prefixes, cols[name]) for name, w in parts)

    config = ItemHeadConfig(epochs=args.epochs, residual=RESIDUAL[args.scorer])
    WORK.mkdir(parents=True, exist_ok=True)
    folder = tune_item_head(split.train, items, forbidden_pairs(split), config, offsets=offsets,
                            log_file=WORK / "train.log",
                            time_budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes,
                            extra={"dataset": split.dataset.name,
                                   "split": "loo of without_last (training sequences only)",
                                   "residual": {"scorer": ("(6 lstm+text + 3 sasrec) / 9, logits" if args.scorer == "mix"
                                                     else "sasrec") + " (eval default configs, seed 0)", "folds": 2,
                                                "fold": "users sorted by id, alternating"}})
    print(folder)


def validate(args: argparse.Namespace) -> None:
    from _validation import catalogue_logits, memory_stage, validation_setup

    from agent import find_item_head

    ds_tl = without_last(load_ml100k())
    split_tl = leave_one_out(ds_tl)
    items = tune_items(split_tl.dataset)
    residual = find_item_head(split_tl.train, items, forbidden_pairs(split_tl),
                              ItemHeadConfig(epochs=args.epochs, residual=RESIDUAL["sasrec"]))
    if residual is None:
        sys.exit("no residual head for this config: run `train` first")
    stage_sasrec = _fitted(split_tl, None, "sasrec-all")
    v = validation_setup("all", args.seed, engine=False)
    chosen = set(sample_users(v.split, args.choose_on, args.seed))
    pick = np.array([u in chosen for u in v.users])
    st = memory_stage(v)
    memory, finite, targets, mm = st.memory, st.finite, st.targets, st.mm

    def ndcg(scores: np.ndarray) -> np.ndarray:
        t = scores[np.arange(len(targets)), targets][:, None]
        ranks = 1 + (scores > t).sum(axis=1)
        return np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0.0)

    cat_ids = [it.item_id for it in v.catalog.items]
    raw = _history_scores(stage_sasrec, v.kw["histories"], np.array([stage_sasrec._index[i] for i in cat_ids]))
    seq = mm(raw)
    base = mm(memory)
    report: dict = {"command": " ".join(sys.argv), "users": len(v.users), "choose_on": int(pick.sum()),
                    "read_on": int((~pick).sum()), "residual_head": residual.name, "standard_head": STANDARD.name}
    grid = {w: ndcg(base + w * seq) for w in WEIGHTS}
    w_seq = max(WEIGHTS, key=lambda w: grid[w][pick].mean())
    stage = base + w_seq * seq
    stage_nd = grid[w_seq]
    report["stage"] = {"w_seq_grid_choose": {str(w): round(float(grid[w][pick].mean()), 4) for w in WEIGHTS},
                       "w_seq": w_seq, "memory_alone": {"choose": round(float(ndcg(base)[pick].mean()), 4),
                                                         "read": round(float(ndcg(base)[~pick].mean()), 4)},
                       "choose": round(float(stage_nd[pick].mean()), 4), "read": round(float(stage_nd[~pick].mean()), 4)}
    best = {}
    for name, folder in (("standard", STANDARD), ("residual", residual)):
        t0 = time.perf_counter()
        logits = catalogue_logits(folder, {it.item_id: it.title for it in v.catalog.items}, v.kw["histories"],
                                  cat_ids, label=name, dtype=memory.dtype)[1]
        alone = ndcg(np.where(finite, logits, -np.inf))
        g = {w: ndcg(stage + w * mm(logits)) for w in WEIGHTS}
        w = max(WEIGHTS, key=lambda x: g[x][pick].mean())
        best[name] = g[w]
        report[name] = {"alone": {"choose": round(float(alone[pick].mean()), 4), "read": round(float(alone[~pick].mean()), 4)},
                        "weight_grid_choose": {str(x): round(float(g[x][pick].mean()), 4) for x in WEIGHTS},
                        "weight": w, "choose": round(float(g[w][pick].mean()), 4), "read": round(float(g[w][~pick].mean()), 4),
                        "read_vs_stage": paired_test(g[w][~pick], stage_nd[~pick], seed=args.seed).to_dict(),
                        "seconds_per_user": round((time.perf_counter() - t0) / len(v.users), 3)}
        print(json.dumps({name: {k: report[name][k] for k in ("alone", "weight", "choose", "read")}}), flush=True)
        if name == "residual" and args.logit_sum:  # the correction as trained: SASRec's logits + the head's
            summed = mm(raw + logits)
            g = {x: ndcg(base + x * summed) for x in WEIGHTS}
            w = max(WEIGHTS, key=lambda x: g[x][pick].mean())
            best["logit_sum"] = g[w]
            report["logit_sum"] = {
                "weight_grid_choose": {str(x): round(float(g[x][pick].mean()), 4) for x in WEIGHTS}, "w_seq": w,
                "choose": round(float(g[w][pick].mean()), 4), "read": round(float(g[w][~pick].mean()), 4),
                "read_vs_stage": paired_test(g[w][~pick], stage_nd[~pick], seed=args.seed).to_dict(),
                "read_vs_standard": paired_test(g[w][~pick], best["standard"][~pick], seed=args.seed).to_dict()}
            print(json.dumps({"logit_sum": {k: report["logit_sum"][k] for k in ("w_seq", "choose", "read")}}),
                  flush=True)
    report["read_residual_vs_standard"] = paired_test(best["residual"][~pick], best["standard"][~pick],
                                                      seed=args.seed).to_dict()
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("stage", "read_residual_vs_standard")}, indent=1, default=str))


def validate_mix(args: argparse.Namespace) -> None:
    """The residual head trained against the whole sequential mix, read over the harness-like stage (the
    arrays of scripts/learned_blend.py; see the module docstring)."""
    from _validation import cached_arrays, catalogue_logits
    from learned_blend import blend_arrays, fixed_stage, mm, ndcg_of_ranks, ranks_of

    from agent import find_item_head

    d, users, pick = blend_arrays(ROOT / "runs" / "blend" / "val.npz", args.choose_on, args.seed)
    ds = load_ml100k()
    split = leave_one_out(ds)
    split_tl = leave_one_out(without_last(ds))
    items = tune_items(split_tl.dataset)
    residual = find_item_head(split_tl.train, items, forbidden_pairs(split_tl),
                              ItemHeadConfig(epochs=args.epochs, residual=RESIDUAL["mix"]))
    if residual is None:
        sys.exit("no residual head for this config: run `train --scorer mix` first")
    cat_ids = list(split.item_ids)

    def head_logits() -> dict[str, np.ndarray]:
        titles = {it.item_id: it.title for it in items}  # with year, as tuned
        out = catalogue_logits(residual, titles, [split.train[u] for u in users], cat_ids, label="residual head")[1]
        return {"residual": out, "users": np.array(users)}

    r = cached_arrays(WORK / f"mix-val-{residual.name}.npz", head_logits)
    assert [str(u) for u in r["users"]] == users
    fs = fixed_stage(d, pick)
    targets, finite, n, chosen = fs.targets, fs.finite, fs.n, fs.chosen
    w_seq, stage_nd, grid, stage = fs.w_seq, fs.stage_nd, fs.grid, fs.stage
    total = sum(w for _, w in MIX)
    report: dict = {"command": " ".join(sys.argv), "users": len(users), "choose_on": int(pick.sum()),
                    "read_on": int((~pick).sum()), "residual_head": residual.name, "standard_head": STANDARD.name,
                    "stage": {"w_seq_grid_choose": grid, "w_seq": w_seq, "read": round(float(stage_nd[~pick].mean()), 4)}}
    pooled = sum(w * d[k].astype(np.float64) for k, w in MIX) / total + r["residual"]
    readings = {"standard": {w: stage + w * n["llm"] for w in WEIGHTS},
                "residual": {w: stage + w * mm(r["residual"], finite) for w in WEIGHTS},
                "logit_sum": {w: n["memory"] + w * mm(pooled, finite) for w in WEIGHTS}}
    best = {}
    for name, options in readings.items():
        w, nd, grid = chosen(options)
        best[name] = nd
        alone = ndcg_of_ranks(ranks_of(np.where(finite, r["residual"] if name == "residual" else d["llm"], -np.inf),
                                       targets))
        report[name] = {"weight_grid_choose": grid, "weight": w, "read": round(float(nd[~pick].mean()), 4),
                        "read_vs_stage": paired_test(nd[~pick], stage_nd[~pick], seed=args.seed).to_dict()}
        if name != "logit_sum":
            report[name]["alone_read"] = round(float(alone[~pick].mean()), 4)
    for name in ("residual", "logit_sum"):
        t = paired_test(best[name][~pick], best["standard"][~pick], seed=args.seed).to_dict()
        report[f"{name}_vs_standard"] = t
        report[f"{name}_wins"] = bool(t["mean_diff"] > 0 and max(t["p_bootstrap"], t["p_wilcoxon"]) < 0.025)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=1, default=str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["train", "validate"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--scorer", choices=["sasrec", "mix"], default="sasrec",
                   help="the fixed scorer the head is trained against: SASRec, or the harness's lstm+text/sasrec mix")
    p.add_argument("--budget-minutes", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--choose-on", type=int, default=400)
    p.add_argument("--logit-sum", action="store_true", help="validate: also read SASRec's logits + the residual "
                   "head's as the stage's sequential source (the combination it was trained for)")
    p.add_argument("--out", type=Path, default=None, help="default: docs/results/item-head-residual[-logit-sum].json")
    args = p.parse_args()
    suffix = "-mix" if args.scorer == "mix" else "-logit-sum" if args.logit_sum else ""
    args.out = args.out or ROOT / "docs" / "results" / f"item-head-residual{suffix}.json"
    if args.cmd == "train":
        train(args)
    elif args.scorer == "mix":
        validate_mix(args)
    else:
        validate(args)


if __name__ == "__main__":
    main()
