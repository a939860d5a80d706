"""Train the sequential baselines over several seeds on ML-100k and write the 3-seed table.

Usage: python scripts/seq_models.py [--models pop,lstm,lstm+text,lstm+llm,sasrec,sasrec+text,sasrec+llm]
       [--seeds 0,1,2] [--out docs/results/seq-models] [--runs runs/seq-models] [--lock /tmp/tide-heavy.lock]

Protocol: leave-one-out, all 943 users, full ranking over the catalogue with consumed items excluded.
Per model and seed: NDCG@10 / HR@10 / MRR@10 / AUC (per-user 1 - (rank - 1)/(n_candidates - 1)) on the
test targets with 95% bootstrap CIs, NDCG@10 on users whose test item has < 10 training interactions
(cold/rare), and the retriever's recall@20/30/50 on the VALIDATION targets (what the agent's candidate
stage would see). Across seeds: mean and sd; paired tests (+text / +llm against the ID-only model, SASRec
against the LSTM) on per-user values averaged over the seeds. Consecutive fits share one hold of ``--lock``
(flock) of at most ~7 minutes plus a fit, then it is released so other heavy jobs run; finished
(model, seed) pairs are kept in ``<runs>/<model>-<seed>.npz`` and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _seqcli import HeavyLock, add_run_args, read_records

from eval import (
    ItemFeatures,
    LSTMConfig,
    LSTMPredictor,
    PopularityPredictor,
    SASRecConfig,
    SASRecPredictor,
    auc_from_rank,
    bootstrap_ci,
    leave_one_out,
    load_ml100k,
    metrics_from_ranks,
    paired_test,
)

COLD_BELOW = 10  # "cold/rare": the test item has fewer than this many training interactions
RECALL_AT = (20, 30, 50)
METRICS = ("ndcg@10", "hr@10", "mrr@10", "auc")
ALL_MODELS = "pop,lstm,lstm+text,lstm+llm,sasrec,sasrec+text,sasrec+llm"


def full_ranks(scores: np.ndarray, requests, targets, index) -> tuple[np.ndarray, np.ndarray]:
    """Exact 1-based target rank (ties: earlier catalogue column first) and number of candidates."""
    ranks, ncand = [], []
    for row, (req, target) in enumerate(zip(requests, targets, strict=True)):
        s = scores[row].astype(np.float64)
        s[[index[i] for i in req.exclude if i in index]] = -np.inf
        t = index[target]
        ranks.append(1 + int((s > s[t]).sum()) + int((s[:t] == s[t]).sum()))
        ncand.append(int(np.isfinite(s).sum()))
    return np.array(ranks, dtype=float), np.array(ncand)


SASREC_OVERRIDES: dict = {}  # the validation search's choice, when --sasrec-search names its records


def chosen_sasrec(path: Path, wait_for: int) -> dict:
    """The best setting (validation NDCG@10) of the search records, once ``wait_for`` of them exist."""
    while True:
        records = read_records(path)
        if len(records) >= wait_for:
            return max(records, key=lambda r: r["best_val_ndcg@10"])["setting"]
        time.sleep(20)


def build(name: str, seed: int, features: dict[str, ItemFeatures]):
    base, _, feat = name.partition("+")
    f = features.get(feat) if feat else None
    if base == "pop":
        return PopularityPredictor()
    if base == "lstm":
        return LSTMPredictor(LSTMConfig(seed=seed, progress=False), name=name, features=f)
    if base == "sasrec":
        return SASRecPredictor(SASRecConfig(**SASREC_OVERRIDES, seed=seed, progress=False), name=name, features=f)
    raise SystemExit(f"unknown model {name!r}")


def scores_of(model, requests) -> np.ndarray:
    return model.score_all(requests)  # every model here is a FullScorer (popularity included)


def run_one(name: str, seed: int, split, features, runs: Path, lock: HeavyLock) -> dict:
    path = runs / f"{name}-{seed}.npz"
    if path.exists():
        data = np.load(path)
        return {k: data[k] for k in data.files}
    model = build(name, seed, features)
    print(f"{name} seed {seed}: fitting", flush=True)
    lock.before_fit()
    t0 = time.perf_counter()
    model.fit(split)
    fit_s = time.perf_counter() - t0
    index = {item: i for i, item in enumerate(split.item_ids)}
    users = split.test_users
    test_req = split.requests(users, "test")
    test_ranks, ncand = full_ranks(scores_of(model, test_req), test_req,
                                   [split.test[u].item_id for u in users], index)
    val_users = [u for u in users if u in split.val]
    val_req = split.requests(val_users, "val")
    val_ranks, _ = full_ranks(scores_of(model, val_req), val_req,
                              [split.val[u].item_id for u in val_users], index)
    m = metrics_from_ranks(test_ranks, ["ndcg@10", "hr@10", "mrr@10"])
    out = {**m, "auc": np.array([auc_from_rank(r, n) for r, n in zip(test_ranks, ncand, strict=True)]),
           "test_rank": test_ranks, "val_rank": val_ranks, "fit_seconds": np.array(fit_s),
           "best_epoch": np.array(getattr(model, "best_epoch", None) or 0)}
    runs.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    print(f"{name} seed {seed}: NDCG@10 {m['ndcg@10'].mean():.4f} AUC {out['auc'].mean():.4f} "
          f"fit {fit_s:.0f}s best epoch {out['best_epoch']}", flush=True)
    return out


def load_features(names: list[str], dataset) -> dict[str, ItemFeatures]:
    feats: dict[str, ItemFeatures] = {}
    if any(n.endswith("+text") for n in names):
        from memory import SentenceTransformerEmbedder

        feats["text"] = ItemFeatures.from_embedder(dataset, SentenceTransformerEmbedder.from_package())
    if any(n.endswith("+llm") for n in names):
        t0 = time.perf_counter()
        feats["llm"] = ItemFeatures.from_llm(dataset)
        print(f"llm item vectors {feats['llm'].vectors.shape} in {time.perf_counter() - t0:.0f}s "
              f"{feats['llm'].info}", flush=True)
    return feats


def summarize(results: dict[str, list[dict]], cold: np.ndarray, seeds: list[int]) -> dict:
    summary: dict = {"models": {}, "paired": [], "n_users": int(len(cold)), "n_cold_users": int(cold.sum()),
                     "seeds": seeds, "cold_below": COLD_BELOW}
    for name, runs in results.items():
        entry: dict = {"seeds": len(runs)}
        for metric in (*METRICS, "cold_ndcg@10"):
            per_seed = [float(r["ndcg@10"][cold].mean()) if metric == "cold_ndcg@10" else float(r[metric].mean())
                        for r in runs]
            pooled = np.mean([r["ndcg@10"][cold] if metric == "cold_ndcg@10" else r[metric] for r in runs], axis=0)
            ci = bootstrap_ci(pooled)
            entry[metric] = {"per_seed": per_seed, "mean": float(np.mean(per_seed)),
                             "sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                             "ci_seed_avg": [ci.low, ci.high]}
        for n in RECALL_AT:
            vals = [float((r["val_rank"] <= n).mean()) for r in runs]
            entry[f"val_recall@{n}"] = {"per_seed": vals, "mean": float(np.mean(vals)),
                                        "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0}
        entry["fit_seconds"] = [float(r["fit_seconds"]) for r in runs]
        entry["best_epoch"] = [int(r["best_epoch"]) for r in runs]
        summary["models"][name] = entry
    pairs = [(f"{b}+{f}", b) for b in ("lstm", "sasrec") for f in ("text", "llm")]
    pairs += [("sasrec", "lstm"), ("lstm", "pop"), ("sasrec", "pop")]
    for a, b in pairs:
        if a in results and b in results:
            for metric in ("ndcg@10", "hr@10", "auc", "cold_ndcg@10"):
                def avg(runs, metric=metric):
                    return np.mean([r["ndcg@10"][cold] if metric == "cold_ndcg@10" else r[metric] for r in runs],
                                   axis=0)
                test = paired_test(avg(results[a]), avg(results[b]))
                summary["paired"].append({"model": a, "baseline": b, "metric": metric, **test.to_dict()})
    return summary


def table(summary: dict) -> str:
    lines = [f"ML-100k leave-one-out, {summary['n_users']} users, seeds {summary['seeds']}, full ranking, "
             f"consumed items excluded; mean ± sd over seeds [95% CI of the seed-averaged per-user mean]; "
             f"cold = test item with < {summary['cold_below']} training interactions "
             f"({summary['n_cold_users']} users)", "",
             "| model | NDCG@10 | HR@10 | MRR@10 | AUC | cold NDCG@10 | val R@20 | val R@30 | val R@50 | fit s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in summary["models"].items():
        cells = [f"{e[m]['mean']:.4f} ± {e[m]['sd']:.4f} [{e[m]['ci_seed_avg'][0]:.4f}, "
                 f"{e[m]['ci_seed_avg'][1]:.4f}]" for m in (*METRICS, "cold_ndcg@10")]
        cells += [f"{e[f'val_recall@{n}']['mean']:.4f}" for n in RECALL_AT]
        cells.append("/".join(f"{s:.0f}" for s in e["fit_seconds"]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| model | baseline | metric | mean diff [95% CI] | p (bootstrap) | p (Wilcoxon) | p (t) |",
              "|---|---|---|---|---|---|---|"]
    for p in summary["paired"]:
        lines.append(f"| {p['model']} | {p['baseline']} | {p['metric']} | {p['mean_diff']:+.4f} "
                     f"[{p['low']:+.4f}, {p['high']:+.4f}] | {p['p_bootstrap']:.3g} | {p['p_wilcoxon']:.3g} | "
                     f"{p['p_ttest']:.3g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=ALL_MODELS)
    parser.add_argument("--seeds", default="0,1,2")
    add_run_args(parser, runs="runs/seq-models", out="docs/results/seq-models")
    parser.add_argument("--summarize-only", action="store_true", help="table from the finished (model, seed) runs")
    parser.add_argument("--sasrec-search", default=None, help="records of scripts/sasrec_search.py: use the best")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 is several times faster than 2 when another job shares 2 cores)")
    parser.add_argument("--wait-search", type=int, default=0, help="wait until the search has this many records")
    args = parser.parse_args()
    names = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    dataset = load_ml100k()
    split = leave_one_out(dataset)
    counts: dict[str, int] = {}
    for seq in split.train.values():
        for item in seq:
            counts[item] = counts.get(item, 0) + 1
    cold = np.array([counts.get(split.test[u].item_id, 0) < COLD_BELOW for u in split.test_users])
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    if args.sasrec_search:
        SASREC_OVERRIDES.update(chosen_sasrec(Path(args.sasrec_search), args.wait_search))
        print("sasrec setting chosen on validation:", SASREC_OVERRIDES, flush=True)
    features: dict[str, ItemFeatures] = {}
    if args.summarize_only:
        results = {n: [dict(np.load(runs / f"{n}-{s}.npz")) for s in seeds if (runs / f"{n}-{s}.npz").exists()]
                   for n in names}
        results = {n: r for n, r in results.items() if r}
    else:
        lock = HeavyLock(args.lock or None)
        try:
            lock.before_fit()  # the text / LLM vectors are heavy too
            features = load_features(names, dataset)
            results = {n: [run_one(n, s, split, features, runs, lock)
                           for s in (seeds[:1] if n == "pop" else seeds)] for n in names}
        finally:
            lock.release()
    summary = summarize(results, cold, seeds)
    summary["features"] = {k: {"dim": v.dim, "fingerprint": v.fingerprint, "info": v.info} for k, v in features.items()}
    summary["configs"] = {"lstm": LSTMConfig().model_dump(mode="json"),
                          "sasrec": SASRecConfig(**SASREC_OVERRIDES).model_dump(mode="json")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str))
    text = table(summary)
    out.with_suffix(".txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
