"""Pictures of interest graphs (matplotlib, no pyplot state): one user, or the population view."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["TREND_COLOURS", "draw_interest_graph", "draw_population"]

TREND_COLOURS = {"rising": "#2e9e44", "fading": "#d1453b", "steady": "#5b7fa6"}
_TIME_COLOUR, _PLACE_COLOUR, _USER_COLOUR = "#f0b429", "#8e6bbf", "#333333"
# Enough tags to show a person's range, few enough to read their names.
MAX_TAGS_SHOWN = 12
MAX_TIMES_SHOWN = 8
MAX_PLACES_SHOWN = 5
# Node areas (points²) of a tag with strength 0 and 1.
_TAG_SIZE = (250.0, 4200.0)


def _arc(n: int, radius: float, start: float, end: float) -> list[tuple[float, float]]:
    if n == 1:
        a = (start + end) / 2
        return [(radius * math.cos(a), radius * math.sin(a))]
    return [(radius * math.cos(start + (end - start) * i / (n - 1)), radius * math.sin(start + (end - start) * i / (n - 1)))
            for i in range(n)]


def _top_neighbours(g: nx.Graph, tags: list[str], kind: str, n: int) -> list[str]:
    weight: dict[str, float] = {}
    for t in tags:
        for nb in g.neighbors(t):
            if g.nodes[nb].get("kind") == kind:
                weight[nb] = weight.get(nb, 0.0) + float(g[t][nb]["weight"])
    return sorted(weight, key=lambda x: (-weight[x], x))[:n]


def draw_interest_graph(g: nx.Graph, path: str | Path) -> None:
    """Draw one user's graph: tags sized by current strength and coloured by trend, tied to times and places.

    Items are not drawn (a long history has hundreds); the title says how many behaviors the graph rests on.
    """
    import networkx as nx
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    user = next((n for n, d in g.nodes(data=True) if d.get("kind") == "user"), None)
    tags = sorted((n for n, d in g.nodes(data=True) if d.get("kind") == "tag"),
                  key=lambda n: (-g.nodes[n]["strength"], n))[:MAX_TAGS_SHOWN]
    times = _top_neighbours(g, tags, "time", MAX_TIMES_SHOWN)
    places = _top_neighbours(g, tags, "place", MAX_PLACES_SHOWN)
    pos: dict[str, tuple[float, float]] = {}
    if user is not None:
        pos[user] = (0.0, 0.0)
    pos.update(zip(tags, _arc(len(tags), 1.0, 0.0, 2 * math.pi * (1 - 1 / max(len(tags), 1))), strict=True))
    pos.update(zip(times, _arc(len(times), 2.1, math.radians(160), math.radians(20)), strict=True))
    pos.update(zip(places, _arc(len(places), 2.1, math.radians(200), math.radians(340)), strict=True))
    fig = Figure(figsize=(10, 9), dpi=110)
    ax = fig.add_subplot()
    ax.set_axis_off()
    shown = g.subgraph(pos)
    for kind, colour, style in (("interest", "#999999", "solid"), ("when", _TIME_COLOUR, "solid"),
                                ("where", _PLACE_COLOUR, "dashed")):
        edges = [(a, b) for a, b, d in shown.edges(data=True) if d.get("kind") == kind]
        if not edges:
            continue
        ws = [float(shown[a][b]["weight"]) for a, b in edges]
        top = max(ws) or 1.0
        nx.draw_networkx_edges(shown, pos, edgelist=edges, ax=ax, edge_color=colour, style=style,
                               width=[0.5 + 5.0 * w / top for w in ws], alpha=0.55)
    lo, hi = _TAG_SIZE
    strength = {t: float(g.nodes[t]["strength"]) for t in tags}
    smax = max(strength.values(), default=1.0) or 1.0
    nx.draw_networkx_nodes(shown, pos, nodelist=tags, ax=ax, node_size=[lo + (hi - lo) * strength[t] / smax for t in tags],
                           node_color=[TREND_COLOURS[g.nodes[t]["trend"]] for t in tags], alpha=0.9)
    nx.draw_networkx_nodes(shown, pos, nodelist=times, ax=ax, node_shape="s", node_size=500, node_color=_TIME_COLOUR)
    nx.draw_networkx_nodes(shown, pos, nodelist=places, ax=ax, node_shape="D", node_size=500, node_color=_PLACE_COLOUR)
    if user is not None:
        nx.draw_networkx_nodes(shown, pos, nodelist=[user], ax=ax, node_size=900, node_color=_USER_COLOUR)
    labels = {t: f"{g.nodes[t]['label']}\n{100 * strength[t]:.0f}%" for t in tags}
    labels.update({n: g.nodes[n]["label"] for n in (*times, *places)})
    if user is not None:
        labels[user] = g.nodes[user]["label"]
    texts = nx.draw_networkx_labels(shown, pos, labels=labels, ax=ax, font_size=8)
    if user is not None:
        texts[user].set_color("white")
    n = g.nodes[user]["n_behaviors"] if user is not None else 0
    ax.set_title(f"Interests of user {g.graph.get('user_id', '?')} as of {str(g.graph.get('as_of', ''))[:16]} "
                 f"({n} behaviors; size = strength now, half-life {g.graph.get('half_life_days', '?')} d)", fontsize=10)
    legend = [Line2D([], [], marker="o", ls="", color=c, markersize=9, label=f"tag {k}") for k, c in TREND_COLOURS.items()]
    legend += [Line2D([], [], marker="s", ls="", color=_TIME_COLOUR, markersize=8, label="weekday × part of day"),
               Line2D([], [], marker="D", ls="", color=_PLACE_COLOUR, markersize=8, label="place")]
    ax.legend(handles=legend, loc="lower left", fontsize=8, frameon=False)
    ax.margins(0.12)
    fig.savefig(path, format=Path(path).suffix.lstrip(".") or "png", bbox_inches="tight")


def draw_population(pop: nx.Graph, path: str | Path, max_tags: int = 20) -> None:
    """The population view: tag co-occurrence across users (left), top tags by part of day (right)."""
    import networkx as nx
    from matplotlib.figure import Figure

    tags = sorted(pop.nodes, key=lambda n: (-pop.nodes[n]["users"], n))[:max_tags]
    sub = pop.subgraph(tags)
    fig = Figure(figsize=(15, 7.5), dpi=110)
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax.set_axis_off()
    pos: dict[Any, Any] = nx.circular_layout(sub) if len(sub) else {}
    users = max((pop.nodes[t]["users"] for t in tags), default=1)
    edges = list(sub.edges(data=True))
    if edges:
        top = max(float(d["users"]) for *_, d in edges)
        nx.draw_networkx_edges(sub, pos, ax=ax, edge_color="#5b7fa6", alpha=0.5,
                               width=[0.3 + 6.0 * float(d["users"]) / top for *_, d in edges])
    nx.draw_networkx_nodes(sub, pos, ax=ax, node_color="#f0b429",
                           node_size=[200 + 2500 * pop.nodes[t]["users"] / users for t in tags])
    nx.draw_networkx_labels(sub, pos, ax=ax, font_size=8,
                            labels={t: f"{t}\n{pop.nodes[t]['users']}" for t in tags})
    ax.set_title(f"Tags that co-occur across {pop.graph.get('n_users', '?')} users "
                 f"(node: users holding the tag; edge width: users holding both)", fontsize=10)
    parts = json.loads(pop.graph.get("parts_of_day", "{}"))
    names = list(parts)
    colours = {}
    palette = ["#5b7fa6", "#2e9e44", "#d1453b", "#f0b429", "#8e6bbf", "#2bb3c0", "#c06c2b", "#777777"]
    for i, part in enumerate(names):
        left = 0.0
        for tag, share in parts[part]:
            colour = colours.setdefault(tag, palette[len(colours) % len(palette)])
            bx.barh(i, share, left=left, color=colour, edgecolor="white")
            if share > 0.06:
                bx.text(left + share / 2, i, f"{tag}\n{100 * share:.0f}%", ha="center", va="center", fontsize=7)
            left += share
    bx.set_yticks(range(len(names)), [f"{p}" for p in names])
    bx.invert_yaxis()
    bx.set_xlim(0, 1)
    bx.set_xlabel("share of that part of the day's decayed interest mass (top tags)")
    bx.set_title("Top tags by time of day (UTC)", fontsize=10)
    fig.savefig(path, format=Path(path).suffix.lstrip(".") or "png", bbox_inches="tight")
