"""The interest-graph pictures under docs/: one MovieLens user, one synthetic habit user, the population view.

    python scripts/graph_pictures.py            # writes docs/graph-*.png and docs/results/graph-*.json

Graphs are built from the datasets' behaviors directly (the graph functions are pure over behaviors), as of
each user's newest behavior; ``tide graph`` builds the same graphs from a memory store.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval import dataset_behaviors, load_ml100k, make_synthetic
from memory import interest_graph, population_graph, tags_by_part_of_day, write_graph


def user_graph(dataset, user: str):  # type: ignore[no-untyped-def]
    rows = dataset_behaviors(dataset, user)
    return interest_graph(user, rows, rows[-1].timestamp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ml-user", default="307", help="a MovieLens user whose ratings span months (most rate in a day)")
    ap.add_argument("--synthetic-user", default="u0")
    ap.add_argument("--docs", default="docs")
    args = ap.parse_args()
    docs = Path(args.docs)
    ml = load_ml100k()
    g = user_graph(ml, args.ml_user)
    write_graph(g, docs / "graph-ml100k-user.png")
    write_graph(g, docs / "results" / "graph-ml100k-user.json")
    syn, truth = make_synthetic(n_users=50, seed=0, habits=True)
    s = user_graph(syn, args.synthetic_user)
    write_graph(s, docs / "graph-synthetic-user.png")
    write_graph(s, docs / "results" / "graph-synthetic-user.json")
    graphs = [user_graph(ml, u) for u in ml.user_ids]
    pop = population_graph(graphs)
    write_graph(pop, docs / "graph-population.png", population=True)
    parts = tags_by_part_of_day(graphs)
    top_pairs = sorted(pop.edges(data=True), key=lambda e: -e[2]["users"])[:10]
    summary = {
        "ml_user": args.ml_user, "synthetic_user": args.synthetic_user,
        "synthetic_truth": {"habits": [(h.slot, h.category, h.place.name) for h in truth.users[args.synthetic_user].habits],
                            "long_term": truth.users[args.synthetic_user].long_term,
                            "drift_to": truth.users[args.synthetic_user].drift_to},
        "ml_user_tags": sorted(((d["label"], round(d["strength"], 3), d["trend"]) for _, d in g.nodes(data=True)
                                if d["kind"] == "tag"), key=lambda t: -t[1])[:10],
        "synthetic_user_tags": sorted(((d["label"], round(d["strength"], 3), d["trend"]) for _, d in s.nodes(data=True)
                                       if d["kind"] == "tag"), key=lambda t: -t[1]),
        "population": {"n_users": len(graphs), "tags": pop.number_of_nodes(), "pairs": pop.number_of_edges(),
                       "top_pairs": [(a, b, d["users"]) for a, b, d in top_pairs],
                       "top_tags_by_part_of_day": {k: [(t, round(v, 3)) for t, v in vs] for k, vs in parts.items()}},
    }
    (docs / "results" / "graph-pictures.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
