"""The item head pooled with the sequential models in logit space (issue #9): the stage's sequential source as
one product of experts, ``min-max((6 · lstm+text + 3 · sasrec) / 9 + gamma · head)``, instead of the head as a
separately min-max normalised source.

    python scripts/logit_pool.py [--seed 0] [--choose-on 400]

Reads the validation arrays ``scripts/learned_blend.py`` caches (``runs/blend/val.npz``: test-like, the committed
test-like head ``f0afd07af37c``; no test target read). All three models are trained with a full softmax over the
catalogue, so their logits add as a product of their next-item distributions.

Rule (stated in docs/RESULTS.md before the run): ``gamma`` in {0.25, 0.5, 1, 2} and the source's weight ``w`` in
{0.5, 1, 2, 4, 8, 16} over the memory stage, chosen on the seeded ``--choose-on`` users; read once on the OTHER
users against ``fixed+llm`` (the stage with the mix, plus the head min-max normalised, its weights chosen on the
same users as in learned_blend.py). Worth taking into the harness only if it wins with bootstrap and Wilcoxon
p < 0.05. Writes ``docs/results/logit-pool.json``.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
from learned_blend import blend_reader, mm, ndcg_of_ranks, ranks_of  # noqa: E402

from eval import paired_test  # noqa: E402

GAMMA = (0.25, 0.5, 1.0, 2.0)
WEIGHTS = (0.5, 1.0, 2.0, 4.0, 8.0)
POOL_WEIGHTS = (*WEIGHTS, 16.0)
MIX = (("lstm+text", 6.0), ("sasrec", 3.0))  # eval.RETRIEVER_MIX


def main() -> None:
    args, d, users, pick = blend_reader(__doc__, "logit-pool.json")
    targets, finite = d["targets"], np.isfinite(d["memory"])
    n = {k: mm(d[k], finite) for k in ("memory", "lstm+text", "sasrec", "llm")}
    total = sum(w for _, w in MIX)
    mix = mm(sum(w * n[k] for k, w in MIX) / total, finite)

    def chosen(options: dict) -> tuple:
        nd = {k: ndcg_of_ranks(ranks_of(x, targets)) for k, x in options.items()}
        best = max(nd, key=lambda k: nd[k][pick].mean())
        return best, nd[best], {str(k): round(float(v[pick].mean()), 4) for k, v in nd.items()}

    w_seq, _, _ = chosen({w: n["memory"] + w * mix for w in WEIGHTS})
    stage = n["memory"] + w_seq * mix
    w_llm, ref, _ = chosen({w: stage + w * n["llm"] for w in WEIGHTS})
    pooled = sum(w * d[k].astype(np.float64) for k, w in MIX) / total
    options = {(g, w): n["memory"] + w * mm(pooled + g * d["llm"], finite)
               for g, w in itertools.product(GAMMA, POOL_WEIGHTS)}
    best, nd, grid = chosen(options)
    test = paired_test(nd[~pick], ref[~pick], seed=args.seed).to_dict()
    report = {"command": " ".join(sys.argv), "users": len(users), "choose_on": int(pick.sum()),
              "read_on": int((~pick).sum()), "fixed+llm": {"w_seq": w_seq, "w_llm": w_llm},
              "pool_grid_choose": grid, "chosen": {"gamma": best[0], "w": best[1]},
              "read": {"pool": round(float(nd[~pick].mean()), 4), "fixed+llm": round(float(ref[~pick].mean()), 4),
                       "pool_vs_fixed+llm": test},
              "adopt": bool(test["mean_diff"] > 0 and max(test["p_bootstrap"], test["p_wilcoxon"]) < 0.05)}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("fixed+llm", "chosen", "read", "adopt")}, indent=1, default=str))


if __name__ == "__main__":
    main()
