"""A context-aware prediction and a feedback round trip on one synthetic habit user (memory-only, no LLM).

    python scripts/context_demo.py --out docs/results/context-demo.md

Prints the user's planted habits, the top 5 items with no context, on a weekday morning at work and in the
evening at home; then dislikes the best item of the top category, shows the next top 5, and forgets the
feedback again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

from agent import AgentConfig, InterestAgent, query_context
from eval import catalog_from_dataset, dataset_behaviors, make_synthetic
from memory import MemoryStore, SentenceTransformerEmbedder


def top(agent: InterestAgent, user: str, now, place=None, k: int = 5) -> list[str]:  # type: ignore[no-untyped-def]
    q = query_context(now, place) if place is not None else None
    [s] = agent.score_candidates([user], [now], queries=[q])
    return [agent.catalog.items[i].item_id for i in s.top(k)]


def line(agent: InterestAgent, items: list[str]) -> str:
    return ", ".join(f"{agent.catalog.get(i).title}" for i in items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--user", default="u0")
    ap.add_argument("--out", default="docs/results/context-demo.md")
    args = ap.parse_args()
    ds, truth = make_synthetic(n_users=50, seed=0, habits=True)
    plan = truth.users[args.user]
    emb = SentenceTransformerEmbedder.from_package()
    lines = ["# A context-aware prediction and a feedback round trip", "",
             f"Command: `python scripts/context_demo.py {' '.join(sys.argv[1:])}` (synthetic habits, "
             f"`make_synthetic(n_users=50, seed=0, habits=True)`, user {args.user}; the retrieval stage that "
             "`agent.predict(user, now=..., place=...)` re-ranks with the LLM, here alone).", "",
             "Planted: " + "; ".join(f"{h.slot} → {h.category} at {h.place.name} ({h.place.lat}, {h.place.lon})"
                                     for h in plan.habits) + f"; otherwise {plan.long_term} then {plan.drift_to}.", ""]
    with tempfile.TemporaryDirectory() as tmp, MemoryStore.open(Path(tmp), embedder=emb) as st:
        st.add(dataset_behaviors(ds, args.user))
        agent = InterestAgent(st, catalog_from_dataset(ds, emb), None, AgentConfig())
        last = st.recent(args.user, k=1)[0].timestamp
        day = (last + timedelta(days=1)).replace(minute=0, second=0)
        while day.weekday() != 0:
            day += timedelta(days=1)
        work = next(h for h in plan.habits if h.slot == "work").place
        home = next(h for h in plan.habits if h.slot == "evening").place
        morning, evening = day.replace(hour=9), day.replace(hour=21)
        lines += [f"- no context (as of {morning:%a %H:%M}): {line(agent, top(agent, args.user, morning))}",
                  f"- at {morning:%a %H:%M} UTC at work (`query_context(now, (lat, lon))`): "
                  f"{line(agent, top(agent, args.user, morning, (work.lat, work.lon)))}",
                  f"- at {evening:%a %H:%M} UTC at home: "
                  f"{line(agent, top(agent, args.user, evening, (home.lat, home.lon)))}", ""]
        before = top(agent, args.user, morning, k=10)
        tag = Counter(agent.catalog.get(i).categories[0] for i in before).most_common(1)[0][0]
        target = next(i for i in before if agent.catalog.get(i).categories[0] == tag)
        fb = agent.feedback(args.user, target, "dislike", at=morning - timedelta(minutes=5))
        after = top(agent, args.user, morning, k=10)
        share = [sum(agent.catalog.get(i).categories[0] == tag for i in x) for x in (before, after)]
        lines += [f"Feedback: `agent.feedback('{args.user}', '{target}', 'dislike')` stored behavior {fb.id} "
                  f"(action `{fb.action}`, weight {fb.weight:g}).",
                  f"- top 10 before: {line(agent, before)} ({share[0]}/10 {tag})",
                  f"- top 10 after: {line(agent, after)} ({share[1]}/10 {tag}; {target} gone: {target not in after})"]
        st.forget(args.user, ids=[fb.id])
        lines += [f"- after `store.forget(ids=[{fb.id}])` the top 10 is the original again: "
                  f"{top(agent, args.user, morning, k=10) == before}", ""]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
