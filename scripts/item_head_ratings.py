"""Ratings in the item head's history (issue #9): does the LLM gain from reading how the person rated what they
watched — what the ID-based sequential models never see?

    python scripts/item_head_ratings.py train [--budget-minutes M]
    python scripts/learned_blend.py            # once: caches runs/blend/val.npz (memory stage, both
                                               # sequential models test-like, the plain head's logits)
    python scripts/item_head_ratings.py validate [--seed 0] [--choose-on 400]

Both read the test-like split only for fitting (``leave_one_out(without_last(ds))``: each user's last training
item removed; its targets are forbidden pairs) and the real validation targets only for measuring; no test
target is read.

``train``: the default config on ``--split`` (``testlike``: the committed ``f0afd07af37c``'s data and config, 2
epochs, LoRA r 16 on the top 6 layers, bfloat16; ``--epochs``/``--train-dtype`` change them) with
``ItemHeadConfig.ratings``: every history line is ``Title (year) ★4``. Cached under ``$TIDE_HOME/models`` like
any item head (key = base + data with the ratings + config). The plain head it is compared with has the same
split and config without ratings: committed, cached, or restored from the repository's history into
``runs/ratings/heads/`` (``git show``), e.g. the 2026-12-02 default ``8f664530a040`` (real split, one epoch,
float32) for ``--split real --epochs 1 --train-dtype float32``.

``validate`` (same ``--split``/``--epochs``/``--train-dtype``; rule of 2026-12-04, morning, in docs/RESULTS.md,
written before the run): every validation user, after their whole real training sequence (with its ratings for
the rated head):

1. the LLM alone over the catalogue (consumed items masked): NDCG@10 of the rated head against the plain one on
   all users, paired bootstrap and Wilcoxon; the rated head is better only if both p < 0.05;
2. in the candidate stage, memory + w_seq · min-max((6 · lstm+text + 3 · sasrec) / 9) + w · min-max(head)
   (test-like sequential models; ``scripts/learned_blend.py``'s ``fixed+llm``): w_seq, then each head's w,
   from {0.5, 1, 2, 4, 8} on the seeded ``--choose-on`` users; the two stages read on the OTHER users. Read only
   when ``scripts/learned_blend.py``'s cache exists.

Writes ``docs/results/item-head-ratings.json``.
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

from agent import ItemHeadConfig, ItemHeadScorer, find_item_head, tune_item_head  # noqa: E402
from eval import forbidden_pairs, leave_one_out, load_ml100k, paired_test, without_last  # noqa: E402
from eval._tune import COMMITTED_MODELS, tune_items  # noqa: E402  (scripts may use the harness's parts)

WORK = ROOT / "runs" / "ratings"
#: earlier heads restored from the repository's history (``git show``) for the plain side of the comparison
HEADS = WORK / "heads"
WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _config(args: argparse.Namespace, ratings: bool) -> ItemHeadConfig:
    return ItemHeadConfig(epochs=args.epochs, train_dtype=args.train_dtype, ratings=ratings)


def _split(args: argparse.Namespace):  # noqa: ANN202
    """The dataset and split the heads train on: ``testlike`` = leave_one_out(without_last(ds)), ``real`` =
    leave_one_out(ds) (its training sequences hold each user's last training item)."""
    ds = load_ml100k()
    ds = without_last(ds) if args.split == "testlike" else ds
    return ds, leave_one_out(ds)


def _ratings(ds, sequences: dict[str, list[str]]) -> dict[str, list[float]]:  # noqa: ANN001
    """Per user, the rating of each item of their sequence (ML-100k: one rating per user and item)."""
    rated = {(e.user_id, e.item_id): e.rating for e in ds.interactions}
    return {u: [rated[(u, i)] for i in seq] for u, seq in sequences.items()}


def train(args: argparse.Namespace) -> Path:
    ds2, split2 = _split(args)
    WORK.mkdir(parents=True, exist_ok=True)
    folder = tune_item_head(split2.train, tune_items(ds2), forbidden_pairs(split2), _config(args, True),
                            ratings=_ratings(ds2, split2.train), log_file=WORK / "train.jsonl",
                            time_budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes,
                            seeds=[COMMITTED_MODELS],
                            extra={"dataset": ds2.name, "split": f"loo ({args.split}; training sequences only), "
                                                                 "rated history lines"})
    print(folder)
    return folder


def plain_head(args: argparse.Namespace) -> Path:
    """The unrated head of the same split and config: committed, cached, or restored under runs/ratings/heads."""
    ds2, split2 = _split(args)
    found = find_item_head(split2.train, tune_items(ds2), forbidden_pairs(split2), _config(args, False),
                           seeds=[COMMITTED_MODELS, HEADS])
    if found is None:
        sys.exit("the plain head of this split and config is neither cached, committed nor under runs/ratings/heads")
    return found


def _ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    t = scores[np.arange(len(targets)), targets][:, None]
    return 1 + (scores > t).sum(axis=1)


def _ndcg(ranks: np.ndarray) -> np.ndarray:
    return np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0.0)


def _mm(x: np.ndarray, finite: np.ndarray) -> np.ndarray:
    lo = np.where(finite, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, x, -np.inf).max(axis=1, keepdims=True)
    return np.where(finite, (x - lo) / np.where(hi > lo, hi - lo, 1.0), -np.inf)


def _head_logits(folder: Path, users: list[str], rated: bool) -> np.ndarray:
    """A head's logits (users x catalogue, catalogue order) after each user's whole real training sequence
    (with its ratings for a rated head); cached under runs/ratings/."""
    cache = WORK / f"val-{folder.name}.npy"
    if cache.exists():
        return np.load(cache)
    ds = load_ml100k()
    split = leave_one_out(ds)
    items = tune_items(ds)
    scorer = ItemHeadScorer(folder, {it.item_id: it.title for it in items})
    histories = [list(split.train[u]) for u in users]
    rates = _ratings(ds, dict(zip(users, histories, strict=True))) if rated else None
    cols = np.array([scorer.index[i] for i in ds.item_ids])
    out = np.zeros((len(users), len(cols)), dtype=np.float32)
    t0 = time.perf_counter()
    for k, (u, hist) in enumerate(zip(users, histories, strict=True)):
        out[k] = scorer.scores([hist], **({"ratings": [rates[u]]} if rated else {}))[0][cols]
        if k % 100 == 0:
            print(f"{folder.name}: {k}/{len(users)} users, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                  flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


def _better(t: dict) -> bool:
    return bool(t["mean_diff"] > 0 and t["p_bootstrap"] < 0.05 and t["p_wilcoxon"] < 0.05)


def validate(args: argparse.Namespace) -> None:
    from eval import sample_users

    ds = load_ml100k()
    split = leave_one_out(ds)
    users = sorted(split.val)
    seeded = set(sample_users(split, args.choose_on, args.seed))
    pick = np.array([u in seeded for u in users])
    index = {i: j for j, i in enumerate(ds.item_ids)}
    targets = np.array([index[split.val[u].item_id] for u in users])
    finite = np.ones((len(users), len(index)), dtype=bool)
    for k, u in enumerate(users):
        finite[k, [index[i] for i in split.train[u]]] = False  # consumed items masked (Tide's protocol)

    rated_folder = train(argparse.Namespace(**{**vars(args), "budget_minutes": None}))  # cached: never twice
    plain_folder = plain_head(args)
    heads = {"plain": _head_logits(plain_folder, users, False), "rated": _head_logits(rated_folder, users, True)}

    # 1. the LLM alone over the catalogue, every validation user
    alone = {k: _ndcg(_ranks(np.where(finite, v, -np.inf), targets)) for k, v in heads.items()}
    report: dict = {"command": " ".join(sys.argv), "users": len(users), "split": args.split,
                    "plain": plain_folder.name, "rated": rated_folder.name,
                    "alone": {k: round(float(v.mean()), 4) for k, v in alone.items()},
                    "alone_rated_vs_plain": paired_test(alone["rated"], alone["plain"], seed=args.seed).to_dict()}
    report["alone_by_half"] = {name: {k: round(float(v[m].mean()), 4) for k, v in alone.items()}
                               for name, m in ((f"seeded {args.choose_on}", pick), ("the others", ~pick))}
    report["decision"] = {"alone_rated_better": _better(report["alone_rated_vs_plain"])}

    # 2. in the candidate stage (the blend's cached arrays: memory stage, test-like sequential models)
    if args.cache.exists():
        d = dict(np.load(args.cache))
        assert [str(u) for u in d["users"]] == users and (d["targets"] == targets).all()
        assert (np.isfinite(d["memory"]) == finite).all()
        n = {s: _mm(d[s], finite) for s in ("memory", "lstm+text", "sasrec")}
        mix = _mm((6 * n["lstm+text"] + 3 * n["sasrec"]) / 9, finite)
        grid = {w: _ndcg(_ranks(n["memory"] + w * mix, targets)) for w in WEIGHTS}
        w_seq = max(WEIGHTS, key=lambda w: grid[w][pick].mean())
        fixed = n["memory"] + w_seq * mix
        stage, chosen = {"fixed": grid[w_seq]}, {"w_seq": w_seq}
        for k, v in heads.items():
            g = {w: _ndcg(_ranks(fixed + w * _mm(v, finite), targets)) for w in WEIGHTS}
            chosen[f"w_{k}"] = max(WEIGHTS, key=lambda w: g[w][pick].mean())
            stage[f"fixed+{k}"] = g[chosen[f"w_{k}"]]
        read = ~pick
        report["stage"] = {"choose_on": int(pick.sum()), "read_on": int(read.sum()),
                           "chosen_on_choose_users": chosen,
                           "read": {k: round(float(v[read].mean()), 4) for k, v in stage.items()},
                           **{f"{a}_vs_{b}": paired_test(stage[f"fixed+{a}"][read], stage[
                               "fixed" if b == "fixed" else f"fixed+{b}"][read], seed=args.seed).to_dict()
                              for a, b in (("rated", "plain"), ("rated", "fixed"), ("plain", "fixed"))}}
        report["decision"]["stage_rated_better"] = _better(report["stage"]["rated_vs_plain"])
    else:
        report["stage"] = f"not read: {args.cache} missing (python scripts/learned_blend.py caches it)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=1, default=str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--budget-minutes", type=float, default=None, help="stop (checkpointed) after this long")
    v = sub.add_parser("validate")
    for q in (t, v):
        q.add_argument("--split", choices=("testlike", "real"), default="testlike")
        q.add_argument("--epochs", type=int, default=2)
        q.add_argument("--train-dtype", choices=("bfloat16", "float32"), default="bfloat16")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--choose-on", type=int, default=400)
    v.add_argument("--cache", type=Path, default=ROOT / "runs" / "blend" / "val.npz")
    v.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "item-head-ratings.json")
    args = p.parse_args()
    train(args) if args.cmd == "train" else validate(args)


if __name__ == "__main__":
    main()
