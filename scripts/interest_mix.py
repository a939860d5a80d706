"""Interests from a mixture of next-item distributions (issue #9, the interest bar): do the sequential models'
next-item distributions, mixed with the item head's, pick the next film's genres better than the head alone?

    python scripts/interest_mix.py [--seed 0] [--choose-on 400]

Reads the validation arrays ``scripts/learned_blend.py`` caches (``runs/blend/val.npz``: test-like, every
user's validation target after their whole training sequence; the committed test-like head ``f0afd07af37c``;
``lstm+text`` and ``sasrec`` refitted without each user's last training item). No test target is read.

Per user, the next-item distribution is ``alpha · head + (1 - alpha) · (lstm+text + sasrec) / 2``: the head's
softmax at the agent's temperature (``AgentConfig.item_head_temperature`` 0.7), each sequential model's softmax
of its logits at ``t_seq``; consumed items get 0; then ``recent`` of the mass goes to the last 10 training
films in equal parts (the agent's ``item_head_recent_mix``), and the labels are the set of at most 3 genres with
the highest expected F1 over the 300 likeliest films (``agent.best_f1_set``, as the agent's ``expected-f1``
rule). Scored by F1 against the validation film's genres (the harness's interest F1).

Rule (stated in docs/RESULTS.md before the run): ``alpha`` in {0, 0.25, 0.5, 0.75, 1}, ``t_seq`` in {0.5, 1, 2},
``recent`` in {0, 0.15, 0.3}, chosen on the seeded ``--choose-on`` users; read once on the OTHER users against
the head alone at the agent's defaults (alpha 1, recent 0). Worth taking into the agent only if the chosen
mixture beats that with bootstrap and Wilcoxon p < 0.05. Writes ``docs/results/interest-mix.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
from learned_blend import blend_reader  # noqa: E402

from agent import best_f1_set  # noqa: E402
from eval import leave_one_out, load_ml100k, paired_test  # noqa: E402

ALPHA = (0.0, 0.25, 0.5, 0.75, 1.0)
T_SEQ = (0.5, 1.0, 2.0)
RECENT = (0.0, 0.15, 0.3)
HEAD_T = 0.7
TOP_ITEMS = 300
MAX_LABELS = 3


def softmax(x: np.ndarray, finite: np.ndarray, t: float) -> np.ndarray:
    s = np.where(finite, x.astype(np.float64) / t, -np.inf)
    s -= s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def f1(labels: list[str], truth: frozenset[str]) -> float:
    hits = len(set(labels) & truth)
    return 2 * hits / (len(labels) + len(truth)) if labels and truth else 0.0


def main() -> None:
    args, d, users, pick = blend_reader(__doc__, "interest-mix.json")
    ds = load_ml100k()
    split = leave_one_out(ds)
    ids = list(split.item_ids)
    genres = [frozenset(ds.items[i].genres) for i in ids]
    index = {i: k for k, i in enumerate(ids)}
    truth = [genres[t] for t in d["targets"]]
    recent_rows = [[genres[index[i]] for i in split.train[u][-10:] if genres[index[i]]] for u in users]
    finite = np.isfinite(d["memory"])
    head = softmax(d["llm"], finite, HEAD_T)
    seq = {t: (softmax(d["lstm+text"], finite, t) + softmax(d["sasrec"], finite, t)) / 2 for t in T_SEQ}

    def scores(alpha: float, t_seq: float, recent: float, rows_mask: np.ndarray) -> np.ndarray:
        dist = alpha * head + (1 - alpha) * seq[t_seq] if alpha < 1 else head
        out = np.full(len(users), np.nan)
        for u in np.flatnonzero(rows_mask):
            top = np.argsort(-dist[u])[:TOP_ITEMS]
            rows = [genres[j] for j in top if genres[j]]
            w = np.array([dist[u, j] for j in top if genres[j]])
            w = w / w.sum() * (1 - recent if recent_rows[u] and recent > 0 else 1)
            weights = list(w)
            if recent > 0 and recent_rows[u]:
                rows += recent_rows[u]
                weights += [recent / len(recent_rows[u])] * len(recent_rows[u])
            out[u] = f1(best_f1_set(rows, weights, MAX_LABELS)[0], truth[u])
        return out

    grid = {}
    for a, t, r in itertools.product(ALPHA, T_SEQ, RECENT):
        if a == 1.0 and t != T_SEQ[0]:
            continue  # t_seq does not matter without the sequential models
        grid[(a, t, r)] = float(np.nanmean(scores(a, t, r, pick)))
        print(f"alpha {a} t_seq {t} recent {r}: choose F1 {grid[(a, t, r)]:.4f}", file=sys.stderr, flush=True)
    best = max(grid, key=lambda k: grid[k])
    ref = (1.0, T_SEQ[0], 0.0)
    read_best, read_ref = scores(*best, ~pick)[~pick], scores(*ref, ~pick)[~pick]
    test = paired_test(read_best, read_ref, seed=args.seed).to_dict()
    report = {"command": " ".join(sys.argv), "users": len(users), "choose_on": int(pick.sum()),
              "read_on": int((~pick).sum()), "head_temperature": HEAD_T,
              "choose_grid": {f"alpha {a} t_seq {t} recent {r}": round(v, 4) for (a, t, r), v in grid.items()},
              "chosen": {"alpha": best[0], "t_seq": best[1], "recent": best[2]},
              "read": {"chosen": round(float(read_best.mean()), 4), "head_alone": round(float(read_ref.mean()), 4),
                       "chosen_vs_head_alone": test},
              "adopt": bool(best != ref and test["mean_diff"] > 0
                            and max(test["p_bootstrap"], test["p_wilcoxon"]) < 0.05)}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("chosen", "read", "adopt")}, indent=1, default=str))


if __name__ == "__main__":
    main()
