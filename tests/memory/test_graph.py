"""Interest graphs: grounded tags, decayed strengths and trends, time and place ties, export round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from memory import (
    Behavior,
    GraphConfig,
    InvalidQueryError,
    Location,
    interest_graph,
    population_graph,
    read_graph,
    tags_by_part_of_day,
    write_graph,
)

WORK = Location(lat=48.2082, lon=16.3738, place="office")
HOME = Location(lat=48.2500, lon=16.4500, place="home")
START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


def _history(user: str = "g") -> list[Behavior]:
    """Eight weeks of evening dramas at home that give way to morning news at work in the last two weeks."""
    out = []
    for day in range(56):
        d = START + timedelta(days=day)
        if day < 42:
            out.append(Behavior(user_id=user, item_id=f"d{day}", action="watch", timestamp=d + timedelta(hours=20),
                                text=f"a drama {day}", location=HOME,
                                attributes={"genres": ["Drama"], "year": 1994, "tags": ["slow burn"]}))
        elif d.weekday() < 5:
            out.append(Behavior(user_id=user, item_id=f"n{day}", action="read", timestamp=d + timedelta(hours=8),
                                text=f"news {day}", location=WORK, attributes={"categories": ["News"]}))
    return out


NOW = START + timedelta(days=56)


@pytest.fixture
def stored(store):
    store.add(_history())
    return store.recent("g", k=store.count("g"))


def test_graph_nodes_edges_and_grounding(stored):
    g = interest_graph("g", stored, NOW)
    kinds = nx.get_node_attributes(g, "kind")
    assert kinds["user:g"] == "user"
    tags = {n: d for n, d in g.nodes(data=True) if d["kind"] == "tag"}
    assert set(tags) == {"tag:Drama", "tag:News", "tag:slow burn", "tag:1990s"}
    assert tags["tag:Drama"]["source"] == "category" and tags["tag:slow burn"]["source"] == "free"
    assert sum(d["strength"] for d in tags.values()) == pytest.approx(1.0)
    # every tag is grounded in behaviors that carry it
    by_id = {b.id: b for b in stored}
    for d in tags.values():
        ids = [int(i) for i in d["evidence"].split()]
        assert ids and d["n_behaviors"] >= len(ids)
        label = d["label"]
        for i in ids:
            a = by_id[i].attributes
            assert label in (*a.get("genres", []), *a.get("categories", []), *a.get("tags", []), "1990s")
    # the recent habit is rising and strong now; the old one fading
    assert tags["tag:News"]["trend"] == "rising" and tags["tag:Drama"]["trend"] == "fading"
    assert tags["tag:News"]["strength"] > tags["tag:Drama"]["strength"] / 2
    # time and place ties
    assert g.has_edge("tag:News", "time:Mon-morning") and g.has_edge("tag:News", "place:office")
    assert not g.has_edge("tag:News", "place:home") and g.has_edge("tag:Drama", "time:Mon-evening")
    assert g.nodes["place:office"]["lat"] == pytest.approx(48.2082)
    assert g.has_edge("item:d0", "tag:Drama") and g.degree("item:n53") == 1 and "item:n55" not in g  # n55: a Sunday
    assert g.number_of_nodes() == 1 + 4 + len(stored) + len({n for n in g if n.startswith(("time:", "place:"))})


def test_graph_ignores_the_future_and_decays(stored):
    early = interest_graph("g", stored, START + timedelta(days=30))
    assert "tag:News" not in early and early.nodes["user:g"]["n_behaviors"] == 30
    slow = interest_graph("g", stored, NOW, GraphConfig(half_life_days=1000.0))
    fast = interest_graph("g", stored, NOW, GraphConfig(half_life_days=2.0))
    assert fast.nodes["tag:News"]["strength"] > slow.nodes["tag:News"]["strength"]
    empty = interest_graph("nobody", stored, NOW)
    assert list(empty.nodes) == ["user:nobody"]


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_export_round_trip(stored, tmp_path, suffix):
    g = interest_graph("g", stored, NOW)
    path = write_graph(g, tmp_path / f"user{suffix}")
    back = read_graph(path)
    assert set(back.nodes) == set(g.nodes)
    assert {frozenset(e) for e in back.edges} == {frozenset(e) for e in g.edges}
    for n, d in g.nodes(data=True):
        for key, value in d.items():
            assert back.nodes[n][key] == (pytest.approx(value) if isinstance(value, float) else value), (n, key)
    for a, b, d in g.edges(data=True):
        assert back[a][b]["weight"] == pytest.approx(d["weight"])
    assert back.graph["user_id"] == "g"


def test_pictures_and_bad_suffix(stored, tmp_path):
    g = interest_graph("g", stored, NOW)
    png = write_graph(g, tmp_path / "u.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pop = population_graph([g])
    assert write_graph(pop, tmp_path / "pop.png", population=True).stat().st_size > 10_000
    with pytest.raises(InvalidQueryError):
        write_graph(g, tmp_path / "u.txt")
    with pytest.raises(InvalidQueryError):
        read_graph(tmp_path / "u.png")
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def _user(uid: str, genres: list[str], hour: int) -> nx.Graph:
    rows = [Behavior(user_id=uid, item_id=f"{uid}{i}", action="view", text="x", attributes={"genres": [g]},
                     timestamp=START + timedelta(days=i, hours=hour)) for i, g in enumerate(genres)]
    return interest_graph(uid, rows, NOW)


def test_population_co_occurrence_and_time_of_day():
    gs = [_user("a", ["Drama", "Crime"], 8), _user("b", ["Drama", "Crime", "Comedy"], 8), _user("c", ["Comedy"], 21)]
    pop = population_graph(gs)
    assert pop.nodes["Drama"]["users"] == 2 and pop.nodes["Comedy"]["users"] == 2
    assert pop["Drama"]["Crime"]["users"] == 2 and pop["Comedy"]["Drama"]["users"] == 1
    assert not pop.has_edge("Comedy", "Crime") or pop["Comedy"]["Crime"]["users"] == 1
    parts = tags_by_part_of_day(gs)
    assert [t for t, _ in parts["evening"]] == ["Comedy"] and parts["night"] == []
    assert {t for t, _ in parts["morning"]} == {"Drama", "Crime", "Comedy"}
    assert sum(s for _, s in parts["morning"]) == pytest.approx(1.0)
