"""How feedback moves the next 10 items: a tag's share after N dislikes (and after N likes) on synthetic users.

    python scripts/feedback_eval.py --users 100 --out docs/results/feedback

For each synthetic user (whole history in memory, prediction an hour after the newest behavior), the
memory-only ranking (the agent's retrieval stage, no LLM) gives the top 10. Then, separately for N in
``--n``:

- dislikes: the user dislikes the N best-ranked items of the top-10's most common category T; we record
  T's share of the next top 10, whether any disliked item comes back anywhere in the ranking, and T's share
  when the same prediction is made 14 and 60 days later (the demotion fades; half-life 14 days);
- likes: the user likes the N best-ranked items of a category L absent from the top 10 (the first such
  category in catalogue order with at least 10 unconsumed items); we record L's share of the next top 10.

Feedback is forgotten (``store.forget``) after each measurement, so every run starts from the same memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agent import AgentConfig, InterestAgent
from eval import catalog_from_dataset, dataset_behaviors, make_synthetic
from memory import MemoryStore, SentenceTransformerEmbedder


def ranking(agent: InterestAgent, user: str, now: Any) -> list[str]:
    [s] = agent.score_candidates([user], [now])
    return [agent.catalog.items[i].item_id for i in s.top(len(agent.catalog))]


def share(agent: InterestAgent, items: list[str], tag: str) -> float:
    return sum(tag in agent.catalog.get(i).categories for i in items) / max(len(items), 1)


def one_user(agent: InterestAgent, user: str, ns: list[int]) -> dict[str, Any]:
    now = agent.store.recent(user, k=1)[0].timestamp + timedelta(hours=1)
    full = ranking(agent, user, now)
    top = full[:10]
    cats = Counter(agent.catalog.get(i).categories[0] for i in top)
    t = cats.most_common(1)[0][0]
    left = Counter(agent.catalog.get(i).categories[0] for i in full)  # unconsumed items per category
    absent = [c for c in agent.catalog.taxonomy if cats[c] == 0 and left[c] >= 10]
    like_tag = absent[0] if absent else None
    out: dict[str, Any] = {"user": user, "dislike_tag": t, "like_tag": like_tag,
                           "base_dislike_share": share(agent, top, t), "dislikes": {}, "likes": {}}
    for n in ns:
        chosen = [i for i in full if t in agent.catalog.get(i).categories][:n]
        ids = [agent.feedback(user, item, "dislike", at=now + timedelta(seconds=j)).id for j, item in enumerate(chosen)]
        when = now + timedelta(minutes=1)
        after = ranking(agent, user, when)
        out["dislikes"][n] = {
            "share": share(agent, after[:10], t),
            "returned": len(set(chosen) & set(after)),
            "share_14d": share(agent, ranking(agent, user, when + timedelta(days=14))[:10], t),
            "share_60d": share(agent, ranking(agent, user, when + timedelta(days=60))[:10], t),
        }
        agent.store.forget(user, ids=ids)
        if like_tag is not None:
            chosen = [i for i in full if like_tag in agent.catalog.get(i).categories][:n]
            ids = [agent.feedback(user, item, "like", at=now + timedelta(seconds=j)).id for j, item in enumerate(chosen)]
            out["likes"][n] = {"share": share(agent, ranking(agent, user, when)[:10], like_tag)}
            agent.store.forget(user, ids=ids)
    assert ranking(agent, user, now)[:10] == top, "forgetting the feedback must restore the prediction"
    return out


def summarise(rows: list[dict[str, Any]], ns: list[int]) -> dict[str, Any]:
    res: dict[str, Any] = {"n_users": len(rows), "base_dislike_share": float(np.mean([r["base_dislike_share"] for r in rows]))}
    for n in ns:
        d = [r["dislikes"][n] for r in rows]
        like_rows = [r["likes"][n]["share"] for r in rows if n in r["likes"]]
        res[str(n)] = {
            "dislike_share": float(np.mean([x["share"] for x in d])),
            "dislike_share_14d": float(np.mean([x["share_14d"] for x in d])),
            "dislike_share_60d": float(np.mean([x["share_60d"] for x in d])),
            "users_share_dropped": float(np.mean([x["share"] < r["base_dislike_share"] for x, r in zip(d, rows, strict=True)])),
            "disliked_returned": int(sum(x["returned"] for x in d)),
            "like_share": float(np.mean(like_rows)) if like_rows else None,
            "like_users": len(like_rows),
            "users_like_share_rose": float(np.mean([s > 0 for s in like_rows])) if like_rows else None,
        }
    return res


def markdown(summary: dict[str, Any], command: str, config: dict[str, Any]) -> str:
    lines = ["# Feedback: how a tag's share of the next 10 items moves", "", f"Command: `{command}`", "",
             f"{summary['n_users']} synthetic users (`make_synthetic(seed=0)`), memory-only ranking (the agent's "
             "retrieval stage, no LLM), prediction 1 h after the newest behavior. Feedback config: "
             f"`{json.dumps(config)}`.", "",
             f"Before any feedback the top-10's most common tag T holds {100 * summary['base_dislike_share']:.1f}% "
             "of the 10 items; a tag L absent from the top 10 holds 0%.", "",
             "| N | T share after N dislikes | users whose T share dropped | disliked items back in the ranking | "
             "T share 14 d later | T share 60 d later | L share after N likes | users whose L share rose |",
             "|---|---|---|---|---|---|---|---|"]
    for key, v in summary.items():
        if not key.isdigit():
            continue
        like = "–" if v["like_share"] is None else f"{100 * v['like_share']:.1f}%"
        rose = "–" if v["users_like_share_rose"] is None else f"{100 * v['users_like_share_rose']:.0f}%"
        lines.append(f"| {key} | {100 * v['dislike_share']:.1f}% | {100 * v['users_share_dropped']:.0f}% | "
                     f"{v['disliked_returned']} | {100 * v['dislike_share_14d']:.1f}% | {100 * v['dislike_share_60d']:.1f}% "
                     f"| {like} | {rose} |")
    lines += ["", "Every run's feedback was forgotten afterwards and the original top 10 came back exactly "
              "(asserted per user).", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--n", default="1,3,5", help="numbers of dislikes/likes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/results/feedback")
    args = ap.parse_args()
    ns = [int(x) for x in args.n.split(",")]
    t0 = time.perf_counter()
    ds, _ = make_synthetic(n_users=args.users, seed=args.seed)
    embedder = SentenceTransformerEmbedder.from_package()
    with tempfile.TemporaryDirectory(prefix="tide-feedback-") as tmp, MemoryStore.open(Path(tmp), embedder=embedder) as st:
        st.add(dataset_behaviors(ds))
        agent = InterestAgent(st, catalog_from_dataset(ds, embedder), None, AgentConfig())
        rows = []
        for n, u in enumerate(ds.user_ids):
            rows.append(one_user(agent, u, ns))
            if n % 20 == 0:
                print(f"{n + 1}/{len(ds.user_ids)} users", file=sys.stderr, flush=True)
        config = agent.config.feedback.model_dump()
    summary = summarise(rows, ns)
    command = "python scripts/feedback_eval.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "config": config, "summary": summary,
                                                    "users": rows, "seconds": time.perf_counter() - t0}, indent=1))
    out.with_suffix(".md").write_text(markdown(summary, command, config))
    print(markdown(summary, command, config))


if __name__ == "__main__":
    main()
