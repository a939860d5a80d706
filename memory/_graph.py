"""Interest graphs: a user's interests as a weighted, time-decayed networkx graph, and a population view.

Pure functions over public memory data (a list of behaviors and a moment). Nodes (``kind`` attribute):

- ``user:<id>`` — the user;
- ``tag:<name>`` — an interest tag: a taxonomy category (the behavior's ``genres``/``categories``,
  ``source="category"``) or a short free tag (``source="free"``: the behavior's ``tags`` attribute, and the
  decade of its ``year``; or a tag proposed for the user, e.g. by the LLM: ``free_tags``). ``origin`` says
  where a tag came from: ``attributes`` or ``proposed``. Every tag is grounded: ``n_behaviors`` and
  ``evidence`` (behavior ids) name the behaviors that carry it, and a proposed tag is added only to the
  user's behaviors it cites (one that cites none of them is dropped);
- ``item:<id>`` — an item the user acted on;
- ``time:<Mon>-<part>`` — a weekday × part of day bucket (night 0–6, morning 6–12, afternoon 12–18,
  evening 18–24 UTC);
- ``place:<name>`` — a place (its name, or coordinates rounded to ~1 km).

Edges carry a ``weight``: the decayed mass ``Σ weight_b · 0.5 ** (age_b / half_life)`` of the behaviors
behind them (a behavior's mass is split equally over its tags). ``user–tag`` also has ``strength`` (the tag's
share of the user's tag mass now), tags carry ``short_share``/``long_share`` on two horizons and ``trend``
(``rising``/``fading``/``steady``). Behaviors with no positive weight (e.g. dislike feedback) add no mass.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from memory._models import Behavior
from memory._scoring import recency_decay
from memory._state import extract_tags
from memory._time import require_aware

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["PARTS_OF_DAY", "WEEKDAYS", "GraphConfig", "interest_graph", "part_of_day", "population_graph",
           "tags_by_part_of_day"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: (name, first hour) of each part of the day, UTC
PARTS_OF_DAY = (("night", 0), ("morning", 6), ("afternoon", 12), ("evening", 18))
# Coordinates without a place name are grouped on a 0.01° grid (~1 km), as in the profile.
_PLACE_DECIMALS = 2
_SECONDS_PER_HOUR = 3600.0
_HOURS_PER_DAY = 24.0
# A free tag is a short label, not a sentence.
MAX_FREE_TAG_CHARS = 32


class GraphConfig(BaseModel):
    """Settings of the interest graph.

    Attributes:
        half_life_days: Decay of edge weights and of the user–tag strength "now".
        short_half_life_days: Short horizon of the rising/fading trend.
        long_half_life_days: Long horizon of the trend.
        min_shift: Smallest share change (short − long) called rising or fading.
        category_keys: Attribute names holding taxonomy categories (the first present one is used).
        free_tag_keys: Attribute names holding free tags.
        year_decade: Add the decade of a ``year`` attribute as a free tag ("1990s").
        max_items: Keep at most this many item nodes (the heaviest).
        max_evidence: Behavior ids kept per tag as evidence.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    half_life_days: float = Field(30.0, gt=0)
    short_half_life_days: float = Field(7.0, gt=0)
    long_half_life_days: float = Field(180.0, gt=0)
    min_shift: float = Field(0.02, ge=0, le=1)
    category_keys: tuple[str, ...] = ("genres", "categories")
    free_tag_keys: tuple[str, ...] = ("tags",)
    year_decade: bool = True
    max_items: int = Field(200, ge=0)
    max_evidence: int = Field(10, ge=1, le=1000)


def part_of_day(hour: int) -> str:
    """The part of the day of a UTC hour (0–23)."""
    name = PARTS_OF_DAY[0][0]
    for part, start in PARTS_OF_DAY:
        if hour >= start:
            name = part
    return name


def _free_tags(b: Behavior, config: GraphConfig) -> list[str]:
    out: list[str] = []
    for key in config.free_tag_keys:
        out += [t for t in extract_tags(b.attributes, (key,)) if len(t) <= MAX_FREE_TAG_CHARS]
    year = b.attributes.get("year")
    if config.year_decade and isinstance(year, int) and not isinstance(year, bool) and 1800 <= year <= 2100:
        out.append(f"{year // 10 * 10}s")
    return list(dict.fromkeys(out))


def _place_key(b: Behavior) -> tuple[str, float | None, float | None] | None:
    loc = b.location
    if loc is None:
        return None
    if loc.place:
        return loc.place, loc.lat, loc.lon
    assert loc.lat is not None and loc.lon is not None
    return f"{loc.lat:.{_PLACE_DECIMALS}f},{loc.lon:.{_PLACE_DECIMALS}f}", loc.lat, loc.lon


def _decays(ages_h: np.ndarray, half_life_days: float) -> np.ndarray:
    # relative to the youngest behavior, so a short half-life on an old history cannot underflow
    if not len(ages_h):
        return ages_h
    return recency_decay(ages_h - ages_h.min(), half_life_days * _HOURS_PER_DAY)


def _shares(tag_lists: Sequence[Sequence[str]], mass: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for tags, m in zip(tag_lists, mass, strict=True):
        for t in tags:
            out[t] += float(m) / len(tags)
    total = sum(out.values())
    return {t: v / total for t, v in out.items()} if total > 0 else dict(out)


def _proposed(free_tags: Mapping[str, Iterable[int]] | None, ids: set[int]) -> dict[int, list[str]]:
    """behavior id -> the proposed tags that cite it (only ``ids``, the user's behaviors up to now)."""
    out: dict[int, list[str]] = defaultdict(list)
    for label, cited in (free_tags or {}).items():
        name = " ".join(str(label).split())
        if not name or len(name) > MAX_FREE_TAG_CHARS:
            continue
        for i in dict.fromkeys(int(c) for c in cited):
            if i in ids:
                out[i].append(name)
    return out


def interest_graph(user_id: str, behaviors: Iterable[Behavior], now: datetime,
                   config: GraphConfig | None = None,
                   free_tags: Mapping[str, Iterable[int]] | None = None) -> nx.Graph:
    """Build one user's interest graph as of ``now`` (later behaviors are ignored).

    Args:
        user_id: The user (behaviors of other users are ignored).
        behaviors: The user's behaviors (e.g. ``store.recent(u, k=store.count(u))``).
        now: The moment (tz-aware); ages and decays are measured from it.
        config: Settings; ``None`` means ``GraphConfig()``.
        free_tags: Proposed free tags (e.g. ``agent.InterestAgent.free_tags``): label -> ids of the behaviors
            that carry it. Ids that are not this user's behaviors up to ``now`` are ignored, and a tag left
            with none is not added. Each cited behavior carries the tag like an attribute tag (mass, time,
            place and item ties, decay).

    Returns:
        An undirected ``networkx.Graph`` (see the module docstring for nodes and attributes).
    """
    import networkx as nx

    cfg = config or GraphConfig()
    now = require_aware(now, "now")
    rows = sorted((b for b in behaviors if b.user_id == user_id and b.timestamp <= now),
                  key=lambda b: (b.timestamp, getattr(b, "id", 0)))
    g = nx.Graph(user_id=user_id, as_of=now.isoformat(), half_life_days=cfg.half_life_days)
    user = f"user:{user_id}"
    g.add_node(user, kind="user", label=user_id, n_behaviors=len(rows))
    if not rows:
        return g
    ages = np.array([(now - b.timestamp).total_seconds() / _SECONDS_PER_HOUR for b in rows])
    weights = np.array([b.weight for b in rows], dtype=np.float64)
    mass = weights * _decays(ages, cfg.half_life_days)
    short = weights * _decays(ages, cfg.short_half_life_days)
    long = weights * _decays(ages, cfg.long_half_life_days)
    cats = [extract_tags(b.attributes, cfg.category_keys) for b in rows]
    free = [_free_tags(b, cfg) for b in rows]
    tags = [[*c, *(f for f in fr if f not in c)] for c, fr in zip(cats, free, strict=True)]
    from_attributes = {t for ts in tags for t in ts}
    proposed = _proposed(free_tags, {int(b.id) for b in rows if hasattr(b, "id")})
    if proposed:
        tags = [[*ts, *(t for t in proposed.get(int(getattr(b, "id", -1)), []) if t not in ts)]
                for b, ts in zip(rows, tags, strict=True)]
    now_s, short_s, long_s = _shares(tags, mass), _shares(tags, short), _shares(tags, long)
    evidence: dict[str, list[int]] = defaultdict(list)
    count: dict[str, int] = defaultdict(int)
    source = {t: "category" for c in cats for t in c}
    for b, ts in zip(rows, tags, strict=True):
        for t in ts:
            count[t] += 1
            if hasattr(b, "id"):
                evidence[t].append(int(b.id))
    for t in now_s:
        delta = short_s.get(t, 0.0) - long_s.get(t, 0.0)
        trend = "rising" if delta > cfg.min_shift else "fading" if delta < -cfg.min_shift else "steady"
        g.add_node(f"tag:{t}", kind="tag", label=t, source=source.get(t, "free"),
                   origin="attributes" if t in from_attributes else "proposed", strength=now_s[t],
                   short_share=short_s.get(t, 0.0), long_share=long_s.get(t, 0.0), trend=trend, delta=delta,
                   n_behaviors=count[t], evidence=" ".join(map(str, evidence[t][-cfg.max_evidence:])))
        g.add_edge(user, f"tag:{t}", kind="interest", weight=now_s[t], strength=now_s[t])
    item_mass: dict[str, float] = defaultdict(float)
    for b, ts, m in zip(rows, tags, mass, strict=True):
        share = float(m) / len(ts) if ts else 0.0
        bucket = f"time:{WEEKDAYS[b.timestamp.weekday()]}-{part_of_day(b.timestamp.hour)}"
        if not g.has_node(bucket):
            g.add_node(bucket, kind="time", label=bucket[5:], weekday=WEEKDAYS[b.timestamp.weekday()],
                       part_of_day=part_of_day(b.timestamp.hour))
        place = _place_key(b)
        if place is not None and not g.has_node(f"place:{place[0]}"):
            attrs: dict[str, Any] = {"kind": "place", "label": place[0]}
            if place[1] is not None:
                attrs.update(lat=float(place[1]), lon=float(place[2]))
            g.add_node(f"place:{place[0]}", **attrs)
        if b.item_id:
            item_mass[b.item_id] += float(m)
        for t in ts:
            _bump(g, f"tag:{t}", bucket, "when", share)
            if place is not None:
                _bump(g, f"tag:{t}", f"place:{place[0]}", "where", share)
    kept = sorted(item_mass, key=lambda i: -item_mass[i])[: cfg.max_items]
    keep = set(kept)
    for b, ts in zip(rows, tags, strict=True):
        if b.item_id not in keep:
            continue
        node = f"item:{b.item_id}"
        g.add_node(node, kind="item", label=b.text[:80], weight=item_mass[b.item_id], last_seen=b.timestamp.isoformat())
        for t in ts:
            g.add_edge(node, f"tag:{t}", kind="carries", weight=1.0)
    return g


def _bump(g: nx.Graph, a: str, b: str, kind: str, w: float) -> None:
    if g.has_edge(a, b):
        g[a][b]["weight"] += w
    else:
        g.add_edge(a, b, kind=kind, weight=w)


def tags_by_part_of_day(graphs: Iterable[nx.Graph], top: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Across users: for each part of the day, the tags with the most decayed mass then, with their share.

    Args:
        graphs: Per-user interest graphs (:func:`interest_graph`).
        top: How many tags per part of the day.

    Returns:
        ``{part: [(tag, share), ...]}`` in :data:`PARTS_OF_DAY` order, shares of that part's mass.
    """
    mass: dict[str, dict[str, float]] = {p: defaultdict(float) for p, _ in PARTS_OF_DAY}
    for g in graphs:
        for a, b, d in g.edges(data=True):
            if d.get("kind") != "when":
                continue
            tag, bucket = (a, b) if g.nodes[a].get("kind") == "tag" else (b, a)
            mass[g.nodes[bucket]["part_of_day"]][g.nodes[tag]["label"]] += float(d["weight"])
    out = {}
    for part, tags in mass.items():
        total = sum(tags.values())
        ranked = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        out[part] = [(t, v / total) for t, v in ranked] if total > 0 else []
    return out


def population_graph(graphs: Iterable[nx.Graph], min_strength: float = 0.05) -> nx.Graph:
    """Tag–tag co-occurrence across users, for analysts.

    A tag *holds* for a user when its strength is at least ``min_strength``. Nodes are tags with ``users``
    (how many users it holds for) and ``strength`` (summed strength); an edge joins two tags that hold
    together for at least one user, with ``users`` (that count) and ``weight`` (``Σ min(strength_a,
    strength_b)`` over those users). Graph attributes: ``n_users`` and ``parts_of_day`` (a JSON text of
    :func:`tags_by_part_of_day`).

    Args:
        graphs: Per-user interest graphs.
        min_strength: Strength from which a tag counts as one of a user's interests.

    Returns:
        An undirected ``networkx.Graph``.
    """
    import json

    import networkx as nx

    graphs = list(graphs)
    pop = nx.Graph(n_users=len(graphs), min_strength=min_strength,
                   parts_of_day=json.dumps(tags_by_part_of_day(graphs)))
    for g in graphs:
        held = sorted((d["label"], float(d["strength"])) for _, d in g.nodes(data=True)
                      if d.get("kind") == "tag" and d["strength"] >= min_strength)
        for tag, s in held:
            if not pop.has_node(tag):
                pop.add_node(tag, kind="tag", label=tag, users=0, strength=0.0)
            pop.nodes[tag]["users"] += 1
            pop.nodes[tag]["strength"] += s
        for i, (a, sa) in enumerate(held):
            for b, sb in held[i + 1:]:
                if pop.has_edge(a, b):
                    pop[a][b]["users"] += 1
                    pop[a][b]["weight"] += min(sa, sb)
                else:
                    pop.add_edge(a, b, kind="co-occurs", users=1, weight=min(sa, sb))
    return pop
