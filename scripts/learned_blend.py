"""A learned blend of the candidate stage's sources (issue #9): does the LLM's item head earn its place when the
sources are combined by a ranker fitted on validation instead of fixed weights?

    python scripts/learned_blend.py [--seed 0] [--choose-on 400] [--top 100]

Validation only, test-like (as the harness's ``--validation auto``): every user's memory holds their whole
training sequence and the target is their VALIDATION item; the two sequential models (``lstm+text``,
``sasrec``) are fitted on ``leave_one_out(without_last(ds))`` (each user's last training item removed) and the
item head is the committed test-like one (``f0afd07af37c``), so no source has trained on the history's newest
item. No test target is read. Per user and catalogue item (npz cache under ``runs/blend/``): the memory stage
(profile + w_co 1 transitions, 10-minute short half-life; consumed items -inf), both sequential models' scores,
the head's logits, the item's training popularity and the user's history length.

Rule (stated in docs/RESULTS.md before the run). Everything is chosen on the seeded ``--choose-on`` validation
users and read once on the OTHER users:

- ``fixed``: the harness's stage, memory + w_seq · (6·lstm+text + 3·sasrec)/9 (each min-max normalised),
  w_seq from {0.5, 1, 2, 4, 8}; ``fixed+llm``: that + w_llm · head, w_llm from {0.5, 1, 2, 4, 8}.
- ``blend`` / ``blend-llm``: a conditional logit (softmax over the ``fixed`` stage's top ``--top`` items per
  user; the target's log-likelihood, L2) over, per source, its score z-scored within the user's list and the
  same times the user's standardised log history length, plus the item's log popularity (z-scored) and
  -log(rank in ``fixed``); ``blend-llm`` without the head's two features. L2 from {1e-3, 1e-2, 0.1, 1, 10}
  by 5-fold cross-validation (NDCG@10) on the choose users only, then fitted on all of them. Only the top
  ``--top`` are reordered, so items below keep their places (NDCG@10 reads the first ten).
- Read: ``blend`` vs ``fixed+llm`` and ``blend`` vs ``blend-llm`` (paired bootstrap and Wilcoxon). The
  learned blend is worth taking into the harness only if ``blend`` beats ``fixed+llm`` with both p < 0.05;
  the head earns its place under it only if ``blend`` beats ``blend-llm`` with both p < 0.05.

Writes ``docs/results/learned-blend.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402

from eval import RETRIEVER_MIX, paired_test  # noqa: E402

HEAD = ROOT / "models" / "gemma-3-270m-item-head-f0afd07af37c"
WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)
L2 = (1e-3, 1e-2, 0.1, 1.0, 10.0)
SOURCES = ("memory", "lstm+text", "sasrec", "llm")


def compute(args: argparse.Namespace) -> dict[str, np.ndarray]:
    from _validation import catalogue_logits, memory_stage, testlike_scores, validation_setup

    v = validation_setup("all", args.seed, engine=False)
    st = memory_stage(v)
    cat_ids = [it.item_id for it in v.catalog.items]
    assert list(v.split.item_ids) == cat_ids, "catalogue order differs"
    out = {"memory": st.memory.astype(np.float32), "targets": st.targets, "users": np.array(v.users),
           "hist_len": np.array([len(h) for h in v.kw["histories"]])}
    pop = np.zeros(len(cat_ids))
    for seq in v.split.train.values():
        for i in seq:
            pop[v.catalog.index[i]] += 1
    out["popularity"] = pop
    out.update(testlike_scores(v.ds, v.users, args.seed))
    out["llm"] = catalogue_logits(HEAD, {it.item_id: it.title for it in v.catalog.items}, v.kw["histories"],
                                  cat_ids)[1]
    return out


def blend_arrays(cache: Path, choose_on: int, seed: int) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    """The arrays this script caches (the scripts reading them after it: interest_mix.py, logit_pool.py,
    item_head_residual.py), their users, and the mask of the seeded ``choose_on`` users among them."""
    from eval import leave_one_out, load_ml100k, sample_users

    if not cache.exists():
        sys.exit(f"{cache} missing: run scripts/learned_blend.py first")
    d = dict(np.load(cache))
    users = [str(u) for u in d["users"]]
    seeded = set(sample_users(leave_one_out(load_ml100k()), choose_on, seed))
    return d, users, np.array([u in seeded for u in users])


def blend_reader(doc: str, out: str) -> tuple[argparse.Namespace, dict[str, np.ndarray], list[str], np.ndarray]:
    """A script reading this one's arrays: its arguments (``--seed``, ``--choose-on``, ``--cache``, ``--out``,
    default ``docs/results/<out>``) and :func:`blend_arrays`' answer for them."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--choose-on", type=int, default=400)
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "blend" / "val.npz")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / out)
    args = p.parse_args()
    return (args, *blend_arrays(args.cache, args.choose_on, args.seed))


def mm(x: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Min-max over each user's unconsumed items (consumed: -inf)."""
    lo = np.where(finite, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, x, -np.inf).max(axis=1, keepdims=True)
    return np.where(finite, (x - lo) / np.where(hi > lo, hi - lo, 1.0), -np.inf)


def ndcg_of_ranks(ranks: np.ndarray) -> np.ndarray:
    return np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0.0)


def ranks_of(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    t = scores[np.arange(len(targets)), targets][:, None]
    return 1 + (scores > t).sum(axis=1)


def fixed_stage(d: dict[str, np.ndarray], pick: np.ndarray) -> SimpleNamespace:
    """The harness-like stage on this script's arrays: memory + w_seq · min-max of the sequential mix
    (``eval.RETRIEVER_MIX``), w_seq chosen on the ``pick`` users. Gives ``n`` (each source min-max normalised),
    ``finite``, ``targets``, ``mix``, ``w_seq``, ``stage`` (scores), ``stage_nd`` (per-user NDCG@10), ``grid``
    (the choice's means on ``pick``) and ``chosen(options)``: the best of ``{weight: scores}`` on ``pick`` as
    ``(weight, per-user NDCG@10, grid)``."""
    targets, finite = d["targets"], np.isfinite(d["memory"])
    n = {k: mm(d[k], finite) for k in SOURCES}
    total = sum(w for _, w in RETRIEVER_MIX)
    mix = mm(sum(w * n[k] for k, w in RETRIEVER_MIX) / total, finite)

    def chosen(options: dict[float, np.ndarray]) -> tuple[float, np.ndarray, dict[str, float]]:
        nd = {w: ndcg_of_ranks(ranks_of(x, targets)) for w, x in options.items()}
        w = max(nd, key=lambda x: nd[x][pick].mean())
        return w, nd[w], {str(x): round(float(v[pick].mean()), 4) for x, v in nd.items()}

    w_seq, stage_nd, grid = chosen({w: n["memory"] + w * mix for w in WEIGHTS})
    return SimpleNamespace(n=n, finite=finite, targets=targets, mix=mix, w_seq=w_seq, stage=n["memory"] + w_seq * mix,
                           stage_nd=stage_nd, grid=grid, chosen=chosen)


def features(d: dict[str, np.ndarray], top: np.ndarray, h: np.ndarray, llm: bool) -> np.ndarray:
    """users x K x F: per source its score z-scored in the list and that times ``h``; log popularity; -log rank."""
    rows = np.arange(len(top))[:, None]
    cols = []
    for s in SOURCES:
        if s == "llm" and not llm:
            continue
        x = d[s][rows, top].astype(np.float64)
        z = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)
        cols += [z, z * h[:, None]]
    lp = np.log1p(d["popularity"])
    cols.append(((lp - lp.mean()) / lp.std())[top])
    cols.append(np.broadcast_to(-np.log(np.arange(1, top.shape[1] + 1)), top.shape))
    return np.stack(cols, axis=2)


def fit_logit(x: np.ndarray, pos: np.ndarray, l2: float) -> np.ndarray:
    """Conditional logit: maximise sum log softmax(x @ b)[pos] - l2/2 |b|^2 over lists whose target is in them."""
    from scipy.optimize import minimize

    keep = pos >= 0
    x, pos = x[keep], pos[keep]
    n = len(pos)

    def f(b: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ b
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        ll = np.log(p[np.arange(n), pos] + 1e-300).sum()
        grad = x[np.arange(n), pos].sum(axis=0) - np.einsum("uk,ukf->f", p, x)
        return -(ll - 0.5 * l2 * b @ b) / n, -(grad - l2 * b) / n

    return minimize(f, np.zeros(x.shape[2]), jac=True, method="L-BFGS-B").x


def blend_ndcg(x: np.ndarray, pos: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NDCG@10 when the lists are reordered by ``x @ b`` (targets outside the list: 0)."""
    s = x @ b
    n = len(pos)
    p = np.maximum(pos, 0)[:, None]
    t = s[np.arange(n), p[:, 0]][:, None]
    r = 1 + (s > t).sum(axis=1) + ((s == t) & (np.arange(s.shape[1]) < p)).sum(axis=1)  # ties keep list order
    return np.where(pos >= 0, ndcg_of_ranks(r), 0.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--choose-on", type=int, default=400)
    p.add_argument("--top", type=int, default=100)
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "blend" / "val.npz")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "learned-blend.json")
    args = p.parse_args()
    from _validation import cached_arrays

    from eval import leave_one_out, load_ml100k, sample_users

    d = cached_arrays(args.cache, lambda: compute(args))
    users = [str(u) for u in d["users"]]
    chosen = set(sample_users(leave_one_out(load_ml100k()), args.choose_on, args.seed))
    pick = np.array([u in chosen for u in users])
    fs = fixed_stage(d, pick)
    targets, n, w_seq, fixed, nd_fixed = fs.targets, fs.n, fs.w_seq, fs.stage, fs.stage_nd
    g2 = {w: ranks_of(fixed + w * n["llm"], targets) for w in WEIGHTS}
    w_llm = max(WEIGHTS, key=lambda w: ndcg_of_ranks(g2[w])[pick].mean())
    nd_fixed_llm = ndcg_of_ranks(g2[w_llm])

    top = np.argsort(-fixed, axis=1, kind="stable")[:, :args.top]
    hit = top == targets[:, None]
    pos = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    lh = np.log(d["hist_len"])
    h = (lh - lh[pick].mean()) / lh[pick].std()
    report: dict = {"command": " ".join(sys.argv), "users": len(users), "choose_on": int(pick.sum()),
                    "read_on": int((~pick).sum()), "head": HEAD.name, "top": args.top,
                    "target_in_top_choose": round(float((pos[pick] >= 0).mean()), 4),
                    "fixed": {"w_seq_grid_choose": fs.grid, "w_seq": w_seq},
                    "fixed+llm": {"w_llm_grid_choose": {str(w): round(float(ndcg_of_ranks(g2[w])[pick].mean()), 4)
                                                        for w in WEIGHTS}, "w_llm": w_llm}}
    nd = {"fixed": nd_fixed, "fixed+llm": nd_fixed_llm}
    idx = np.flatnonzero(pick)
    folds = np.arange(len(idx)) % 5
    np.random.default_rng(args.seed).shuffle(folds)
    for name, llm in (("blend", True), ("blend-llm", False)):
        x = features(d, top, h, llm)
        cv = {}
        for l2 in L2:
            scores = np.zeros(len(idx))
            for k in range(5):
                tr, te = idx[folds != k], idx[folds == k]
                scores[folds == k] = blend_ndcg(x[te], pos[te], fit_logit(x[tr], pos[tr], l2))
            cv[l2] = float(scores.mean())
        l2 = max(L2, key=lambda v: cv[v])
        b = fit_logit(x[pick], pos[pick], l2)
        nd[name] = blend_ndcg(x, pos, b)
        report[name] = {"cv_ndcg_choose": {str(k): round(v, 4) for k, v in cv.items()}, "l2": l2,
                        "coefficients": [round(float(c), 4) for c in b]}
        print(json.dumps({name: report[name]}), flush=True)
    report["choose"] = {k: round(float(v[pick].mean()), 4) for k, v in nd.items()}
    report["read"] = {k: round(float(v[~pick].mean()), 4) for k, v in nd.items()}
    report["read_tests"] = {
        f"{a} vs {b}": paired_test(nd[a][~pick], nd[b][~pick], seed=args.seed).to_dict()
        for a, b in (("blend", "fixed+llm"), ("blend", "blend-llm"), ("blend-llm", "fixed"), ("fixed+llm", "fixed"))}
    t1, t2 = report["read_tests"]["blend vs fixed+llm"], report["read_tests"]["blend vs blend-llm"]
    report["verdict"] = {
        "blend_beats_fixed_llm": bool(t1["mean_diff"] > 0 and max(t1["p_bootstrap"], t1["p_wilcoxon"]) < 0.05),
        "head_earns_place_in_blend": bool(t2["mean_diff"] > 0 and max(t2["p_bootstrap"], t2["p_wilcoxon"]) < 0.05)}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("choose", "read", "verdict")}, indent=1))
    print(json.dumps(report["read_tests"], indent=1, default=str))


if __name__ == "__main__":
    main()
