"""`tide graph` and `tide feedback` on a small real store (no engine); bad input: one line, nothing written."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memory import MemoryStore, read_graph
from tide.cli import app

runner = CliRunner()


def test_graph_user_and_population(store, tmp_path):
    out = tmp_path / "ann.graphml"
    result = runner.invoke(app, ["graph", "--user", "ann", "--out", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    g = read_graph(out)
    assert g.nodes["tag:Sci-Fi"]["kind"] == "tag" and g.has_edge("user:ann", "tag:Comedy")
    png = tmp_path / "ann.png"
    assert runner.invoke(app, ["graph", "--user", "ann", "--out", str(png), "--store", str(store)]).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    pop = tmp_path / "pop.json"
    result = runner.invoke(app, ["graph", "--population", "--out", str(pop), "--store", str(store)])
    assert result.exit_code == 0, result.output
    data = json.loads(pop.read_text())
    assert data["graph"]["n_users"] == 3 and {n["id"] for n in data["nodes"]} >= {"Sci-Fi", "Drama", "Action"}
    assert runner.invoke(app, ["graph", "--out", str(pop), "--store", str(store)]).exit_code == 2
    missing = runner.invoke(app, ["graph", "--user", "zed", "--out", str(out), "--store", str(store)])
    assert missing.exit_code == 1 and "zed" in missing.output


def test_feedback_round_trip_and_bad_input(store, items_file):
    base = ["feedback", "--user", "ann", "--item", "m12", "--store", str(store), "--catalog", str(items_file)]
    ok = runner.invoke(app, [*base, "--signal", "dislike", "--at", "1997-11-05T09:00:00+00:00",
                             "--place", "48.2082,16.3738", "--json"])
    assert ok.exit_code == 0, ok.output
    stored = json.loads(ok.stdout)
    assert stored["action"] == "feedback-dislike" and stored["weight"] == 0.0 and stored["location"]["lat"] == 48.2082
    with MemoryStore.open(store) as st:
        n = st.count("ann")
    for extra, code in ((["--signal", "love"], 1), (["--signal", "like", "--at", "1997-11-05T09:00:00"], 1),
                        (["--signal", "like", "--place", "91,0"], 1), (["--signal", "like", "--place", "north"], 2),
                        (["--signal", "like", "--at", "yesterday"], 2)):
        bad = runner.invoke(app, [*base, *extra])
        assert bad.exit_code == code, (extra, bad.output)
    unknown = runner.invoke(app, ["feedback", "--user", "ann", "--item", "nope", "--signal", "like", "--store",
                                  str(store), "--catalog", str(items_file)])
    assert unknown.exit_code == 1 and "nope" in unknown.output
    with MemoryStore.open(store) as st:
        assert st.count("ann") == n
