"""How high can a user's stated genres score against their next film? Validation targets only (ML-100k).

    python scripts/interest_ceiling.py [--out docs/results/interest-ceiling.json]

For every user: the set of 1–3 genres (from their 8 most frequent) with the highest mean F1 over the genres
of their last N training films (N = 10, 20, 50, all), scored against the validation film's genres (interest
F1 as the harness computes it; a predictor that reads training data only). And a hindsight ceiling: the
same set fitted on the whole training sequence, scored on those same films (in-sample): what the best fixed
set per user reaches against films it was fitted on. No model; seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from agent import best_f1_set  # noqa: E402
from eval import bootstrap_ci, interest_prf, leave_one_out, load_ml100k, paired_test  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "results" / "interest-ceiling.json"))
    args = p.parse_args()
    ds = load_ml100k()
    split = leave_one_out(ds)
    users = sorted(split.val)
    genres = {u: ds.items[split.val[u].item_id].genres for u in users}
    f1: dict[str, np.ndarray] = {}
    hindsight = []
    for n in (10, 20, 50, None):
        name = f"last {n}" if n else "all"
        scores = []
        for u in users:
            history = split.train[u][-n:] if n else split.train[u]
            rows = [g for g in (frozenset(ds.items[i].genres) for i in history) if g]
            labels, in_sample = best_f1_set(rows, [1.0] * len(rows), 3)
            if n is None:
                hindsight.append(in_sample)
            scores.append(interest_prf(labels, genres[u])[2])
        f1[name] = np.asarray(scores)
    report = {"users": len(users),
              "validation_f1": {k: bootstrap_ci(v).to_dict() for k, v in f1.items()},
              "hindsight_in_sample_f1": bootstrap_ci(np.asarray(hindsight)).to_dict(),
              "paired_vs_last_10": {k: paired_test(v, f1["last 10"]).to_dict() for k, v in f1.items()
                                    if k != "last 10"},
              "command": " ".join(sys.argv)}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: round(v["mean"], 4) for k, v in report["validation_f1"].items()}
                     | {"hindsight": round(report["hindsight_in_sample_f1"]["mean"], 4)}))


if __name__ == "__main__":
    main()
