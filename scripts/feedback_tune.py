"""Feedback strengths picked on validation synthetic users, then measured on fresh ones.

    python scripts/feedback_tune.py --out docs/results/feedback-tune     # ~5 min on 2 cores, no LLM

Each synthetic user's last ``--future`` events are held out: they are what the user really does next (F).
Memory holds everything before; predictions are made 1 h after the newest remembered behavior, with the
agent's retrieval stage alone (memory profile, no transitions, no LLM) over the whole catalogue.

- **Dislike scenario.** T = the most common category of the top 10 that F does not contain (the user has
  moved on from it, so a dislike is a true signal). The user dislikes the N best-ranked items of T.
- **Like scenario.** L = F's most frequent category that holds under 20 % of the top 10 (under-served). The
  user likes the N best-ranked items of L.

Measured on the next top 10: T's (L's) share; HR@10 (any item of F in the top 10); and the **future-interest
match** M = Σ_c min(p_top10(c), p_F(c)), the overlap of the top 10's category shares with F's (1: the top 10
mixes categories exactly as the user's next events do). M rewards moving the top 10 towards what the user
does next and penalises overshooting: a like that floods the top 10 with L scores only F's share of L.

**Criterion, fixed before any run:** for each strength alone (dislike_strength in the dislike scenario,
like_strength in the like scenario), with N = 1, on the validation users: the value with the highest mean M
among those whose mean HR@10 is not below the no-feedback HR@10; ties (M within 0.001) go to the smaller
strength. The chosen values become ``FeedbackConfig``'s defaults; then fresh users (another seed, never used
for choosing) are measured with the old defaults, the chosen ones and N = 1 and 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agent import AgentConfig, InterestAgent
from eval import catalog_from_dataset, dataset_behaviors, make_synthetic
from memory import MemoryStore, SentenceTransformerEmbedder

DISLIKE_GRID = [0.1, 0.2, 0.35, 0.5, 1.0, 2.0]
LIKE_GRID = [0.05, 0.1, 0.2, 0.35, 0.5, 1.0]
#: the strengths in force before this tuning (hand-set)
OLD = {"dislike_strength": 0.5, "like_strength": 0.5}
UNDER_SERVED = 0.2
TIE = 1e-3


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class Users:
    """One synthetic population: memory without each user's future, the scenarios' tags and items."""

    def __init__(self, n_users: int, seed: int, future: int, folder: Path, embedder: Any):
        ds, _ = make_synthetic(n_users=n_users, seed=seed)
        self.store = MemoryStore.open(folder, embedder=embedder)
        batch = []
        self.future: dict[str, list[str]] = {}
        for u in ds.user_ids:
            rows = dataset_behaviors(ds, u)
            batch += rows[:-future]
            self.future[u] = [r.item_id for r in rows[-future:]]
        self.store.add(batch)
        self.agent = InterestAgent(self.store, catalog_from_dataset(ds, embedder), None, AgentConfig())
        self.users = list(ds.user_ids)
        self.now = {u: self.store.recent(u, k=1)[0].timestamp + timedelta(hours=1) for u in self.users}

    def cat(self, item: str) -> str:
        return self.agent.catalog.get(item).categories[0]

    def rankings(self, agent: InterestAgent, users: list[str]) -> dict[str, list[str]]:
        scored = agent.score_candidates(users, [self.now[u] for u in users])
        return {u: [agent.catalog.items[i].item_id for i in s.top(len(agent.catalog))]
                for u, s in zip(users, scored, strict=True)}

    def measure(self, top: list[str], u: str, tag: str) -> dict[str, float]:
        f = Counter(self.cat(i) for i in self.future[u])
        t = Counter(self.cat(i) for i in top)
        return {"share": t[tag] / len(top), "hr": float(bool(set(top) & set(self.future[u]))),
                "match": sum(min(t[c] / len(top), f[c] / len(self.future[u])) for c in t)}

    def scenarios(self, base: dict[str, list[str]]) -> dict[str, dict[str, str]]:
        """Per user, the disliked tag T and the liked tag L (either may be missing)."""
        out: dict[str, dict[str, str]] = {}
        for u in self.users:
            top = base[u][:10]
            fcats = Counter(self.cat(i) for i in self.future[u])
            shares = Counter(self.cat(i) for i in top)
            t = [c for c, _ in shares.most_common() if c not in fcats]
            lk = [c for c, _ in fcats.most_common() if shares[c] / 10 < UNDER_SERVED]
            out[u] = {**({"dislike": t[0]} if t else {}), **({"like": lk[0]} if lk else {})}
        return out

    def run(self, signal: str, n: int, strengths: list[float], base: dict[str, list[str]],
            tags: dict[str, dict[str, str]]) -> dict[float, list[dict[str, float]]]:
        """Give every user of the scenario N signals, rank under each strength, forget the signals."""
        users = [u for u in self.users if signal in tags[u]]
        ids: dict[str, list[int]] = {}
        for u in users:
            tag = tags[u][signal]
            chosen = [i for i in base[u] if self.cat(i) == tag][:n]
            ids[u] = [self.agent.feedback(u, item, signal, at=self.now[u] - timedelta(minutes=30) + timedelta(seconds=j)).id
                      for j, item in enumerate(chosen)]
        key = f"{signal}_strength"
        out: dict[float, list[dict[str, float]]] = {}
        for s in strengths:
            agent = self.agent.with_config(feedback={key: s})
            ranked = self.rankings(agent, users)
            out[s] = [{"user": u, **self.measure(ranked[u][:10], u, tags[u][signal])} for u in users]  # type: ignore[dict-item]
        for u in users:
            self.store.forget(u, ids=ids[u])
        return out


def mean(rows: list[dict[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else float("nan")


def baseline(pop: Users, base: dict[str, list[str]], tags: dict[str, dict[str, str]], signal: str) -> list[dict[str, float]]:
    return [{"user": u, **pop.measure(base[u][:10], u, tags[u][signal])} for u in pop.users if signal in tags[u]]  # type: ignore[dict-item]


def choose(trials: dict[float, list[dict[str, float]]], base_hr: float) -> tuple[float, list[dict[str, Any]]]:
    table = [{"strength": s, "share": mean(r, "share"), "hr@10": mean(r, "hr"), "match": mean(r, "match"),
              "users": len(r)} for s, r in sorted(trials.items())]
    ok = [t for t in table if t["hr@10"] >= base_hr - 1e-12] or table
    best = max(t["match"] for t in ok)
    return min(t["strength"] for t in ok if t["match"] >= best - TIE), table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--future", type=int, default=10)
    ap.add_argument("--val-seed", type=int, default=10)
    ap.add_argument("--test-seed", type=int, default=11)
    ap.add_argument("--out", default="docs/results/feedback-tune")
    args = ap.parse_args()
    t0 = time.perf_counter()
    embedder = SentenceTransformerEmbedder.from_package()
    result: dict[str, Any] = {"command": "python scripts/feedback_tune.py " + " ".join(sys.argv[1:]),
                              "grid": {"dislike_strength": DISLIKE_GRID, "like_strength": LIKE_GRID}, "old": OLD}
    with tempfile.TemporaryDirectory(prefix="tide-fbtune-") as tmp:
        val = Users(args.users, args.val_seed, args.future, Path(tmp) / "val", embedder)
        base = val.rankings(val.agent, val.users)
        tags = val.scenarios(base)
        chosen: dict[str, float] = {}
        for signal in ("dislike", "like"):
            b = baseline(val, base, tags, signal)
            trials = val.run(signal, 1, DISLIKE_GRID if signal == "dislike" else LIKE_GRID, base, tags)
            pick, table = choose(trials, mean(b, "hr"))
            chosen[f"{signal}_strength"] = pick
            result[f"validation_{signal}"] = {"no_feedback": {"share": mean(b, "share"), "hr@10": mean(b, "hr"),
                                                              "match": mean(b, "match"), "users": len(b)},
                                              "trials": table, "chosen": pick}
            log(f"validation {signal}: chose {pick} ({len(b)} users)")
        val.store.close()
        result["chosen"] = chosen
        fresh = Users(args.users, args.test_seed, args.future, Path(tmp) / "test", embedder)
        base = fresh.rankings(fresh.agent, fresh.users)
        tags = fresh.scenarios(base)
        for signal in ("dislike", "like"):
            key = f"{signal}_strength"
            b = baseline(fresh, base, tags, signal)
            rows: dict[str, Any] = {"no_feedback": {"share": mean(b, "share"), "hr@10": mean(b, "hr"),
                                                    "match": mean(b, "match"), "users": len(b)}}
            for n in (1, 3):
                trials = fresh.run(signal, n, sorted({OLD[key], chosen[key]}), base, tags)
                rows[str(n)] = {f"{s:g}": {"share": mean(r, "share"), "hr@10": mean(r, "hr"),
                                           "match": mean(r, "match"), "users": len(r)} for s, r in trials.items()}
            result[f"fresh_{signal}"] = rows
            log(f"fresh {signal} done")
        fresh.store.close()
    result["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result, args))
    print(markdown(result, args))


def markdown(r: dict[str, Any], args: Any) -> str:
    lines = ["# Feedback strengths: picked on validation users, measured on fresh ones", "",
             f"Command: `{r['command']}` ({r['seconds']:.0f} s). Synthetic users `make_synthetic(n_users={args.users})`, "
             f"validation seed {args.val_seed}, fresh seed {args.test_seed}; each user's last {args.future} events "
             "held out as the future F. Memory-only ranking (no LLM), prediction 1 h after the newest remembered "
             "behavior. See the script's docstring for the scenarios and the criterion (highest future-interest "
             "match M with HR@10 not below no feedback; N = 1; ties to the smaller strength).", ""]
    for signal, tag in (("dislike", "T"), ("like", "L")):
        v = r[f"validation_{signal}"]
        nf = v["no_feedback"]
        lines += [f"## {signal.capitalize()} strength — validation ({nf['users']} users, N = 1)", "",
                  f"No feedback: {tag} share {100 * nf['share']:.1f}%, HR@10 {nf['hr@10']:.3f}, M {nf['match']:.4f}.",
                  "", f"| {signal}_strength | {tag} share | HR@10 | M |", "|---|---|---|---|"]
        for t in v["trials"]:
            mark = " **(chosen)**" if t["strength"] == v["chosen"] else ""
            lines.append(f"| {t['strength']:g}{mark} | {100 * t['share']:.1f}% | {t['hr@10']:.3f} | {t['match']:.4f} |")
        f = r[f"fresh_{signal}"]
        nf = f["no_feedback"]
        lines += ["", f"Fresh users ({nf['users']}): no feedback {tag} share {100 * nf['share']:.1f}%, HR@10 "
                  f"{nf['hr@10']:.3f}, M {nf['match']:.4f}.", "",
                  f"| N | {signal}_strength | {tag} share | HR@10 | M |", "|---|---|---|---|---|"]
        for n in ("1", "3"):
            for s, m in f[n].items():
                which = "old default" if float(s) == r["old"][f"{signal}_strength"] else ""
                which = (which + ", " if which else "") + "chosen" if float(s) == r["chosen"][f"{signal}_strength"] else which
                lines.append(f"| {n} | {s} ({which}) | {100 * m['share']:.1f}% | {m['hr@10']:.3f} | {m['match']:.4f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
