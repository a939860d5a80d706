"""What effect can a paired comparison of a run detect? Reads a finished run's rankings; no model, seconds.

    python scripts/effect_size.py --run runs/all-943-branch --a agent --b memory [--stage test] [--metric ndcg@10]
                                  [--users 200,943] [--effect 0.0065]

From the per-user differences A - B (the run's ``rankings.jsonl``, users both models ranked), with the normal
approximation of a two-sided paired test at level ``--alpha``: the spread of the differences, the smallest mean
difference detected with ``--power`` for each user count (``--users``; default the run's own), and, for a
given ``--effect``, the power at each user count and the users it needs. What a bar such as "p < 0.05 on 200
users" asks of an effect, before any more runs are made to chase it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from eval import metrics_from_ranks  # noqa: E402


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _z_sum(power: float, alpha: float) -> float:
    """Standard errors between 0 and an effect a two-sided test at ``alpha`` finds with ``power``."""
    return _z(1 - alpha / 2) + _z(power)


def detectable_effect(sd: float, n: int, *, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest mean difference a two-sided paired test at ``alpha`` finds with ``power`` on ``n`` users."""
    if n < 2 or not sd >= 0:
        raise ValueError(f"need n >= 2 users and a spread >= 0, got n={n}, sd={sd}")
    return _z_sum(power, alpha) * sd / math.sqrt(n)


def power_at(effect: float, sd: float, n: int, *, alpha: float = 0.05) -> float:
    """Probability that a two-sided paired test at ``alpha`` on ``n`` users finds a true mean difference ``effect``."""
    from scipy.stats import norm

    if sd == 0:
        return 1.0 if effect != 0 else alpha
    shift = abs(effect) / (sd / math.sqrt(n))
    z = _z(1 - alpha / 2)
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def users_needed(effect: float, sd: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """Users a two-sided paired test at ``alpha`` needs to find ``effect`` with ``power``."""
    if effect == 0:
        raise ValueError("an effect of 0 cannot be detected")
    return math.ceil((_z_sum(power, alpha) * sd / abs(effect)) ** 2)


def paired_differences(rankings: Path, a: str, b: str, *, stage: str = "test", metric: str = "ndcg@10") -> np.ndarray:
    """Per-user metric of model ``a`` minus model ``b`` on the users both ranked at ``stage``."""
    ranks: dict[str, dict[str, float]] = {a: {}, b: {}}
    with rankings.open() as f:
        for line in f:
            row = json.loads(line)
            if row["stage"] == stage and row["model"] in ranks:
                r = row["target_rank"]
                ranks[row["model"]][row["user_id"]] = math.inf if r is None else float(r)
    users = sorted(set(ranks[a]) & set(ranks[b]))
    if not users:
        raise SystemExit(f"{rankings}: no user ranked by both {a!r} and {b!r} at stage {stage!r}")
    va = metrics_from_ranks([ranks[a][u] for u in users], [metric])[metric]
    vb = metrics_from_ranks([ranks[b][u] for u in users], [metric])[metric]
    return va - vb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a run's folder (holds rankings.jsonl)")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--stage", default="test")
    p.add_argument("--metric", default="ndcg@10")
    p.add_argument("--users", default=None, help="user counts, comma-separated (default: the run's)")
    p.add_argument("--effect", type=float, default=None)
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args()
    if not (args.run / "rankings.jsonl").is_file():
        p.error(f"{args.run} holds no rankings.jsonl (a run's folder: tide eval --out DIR)")
    try:
        counts = [int(x) for x in args.users.split(",")] if args.users else None
    except ValueError:
        p.error(f"--users takes user counts separated by commas, got {args.users!r}")
    if counts and min(counts) < 2:
        p.error(f"--users: every count must be at least 2, got {args.users!r}")
    d = paired_differences(args.run / "rankings.jsonl", args.a, args.b, stage=args.stage, metric=args.metric)
    sd = float(d.std(ddof=1))
    counts = counts or [len(d)]
    out = {"run": str(args.run), "pair": f"{args.a} - {args.b}", "stage": args.stage, "metric": args.metric,
           "users": len(d), "mean_diff": round(float(d.mean()), 5), "sd": round(sd, 5),
           "zero_share": round(float(np.mean(d == 0)), 3), "alpha": args.alpha, "power": args.power,
           "detectable": {n: round(detectable_effect(sd, n, power=args.power, alpha=args.alpha), 5)
                          for n in counts}}
    if args.effect is not None:
        out["effect"] = args.effect
        out["power_at_effect"] = {n: round(power_at(args.effect, sd, n, alpha=args.alpha), 3) for n in counts}
        out["users_needed"] = users_needed(args.effect, sd, power=args.power, alpha=args.alpha)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
