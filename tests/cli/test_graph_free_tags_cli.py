"""`tide graph --free-tags`: the LLM's grounded tags join the written graph (a scripted engine stands in for the
LLM's answers; the store and the graph are real). Without the flag no engine starts."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import agent
from agent import Completion
from memory import read_graph
from tide.cli import app

runner = CliRunner()
ANSWER = json.dumps({"tags": [{"label": "Late Night", "evidence": [1, 2]}, {"label": "uncited", "evidence": []}]})


class _Engine:
    """Answers every request with ANSWER; a context manager like the real engines."""

    model_name = "scripted"
    description = {"engine": "scripted"}

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, requests):
        self.prompts += [r.prompt for r in requests]
        return [Completion(text=ANSWER, finish_reason="stop", prompt_tokens=1, completion_tokens=9) for _ in requests]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_graph_with_free_tags(store, tmp_path, monkeypatch):
    engine = _Engine()
    monkeypatch.setattr(agent, "make_engine", lambda url=None, **kw: engine)
    out = tmp_path / "ann.graphml"
    plain = runner.invoke(app, ["graph", "--user", "ann", "--out", str(out), "--store", str(store)])
    assert plain.exit_code == 0, plain.output
    assert not engine.prompts and "tag:late night" not in read_graph(out)
    result = runner.invoke(app, ["graph", "--user", "ann", "--free-tags", "--out", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    g = read_graph(out)
    node = g.nodes["tag:late night"]
    assert node["origin"] == "proposed" and node["source"] == "free" and node["n_behaviors"] == 2
    assert "tag:uncited" not in g and len(engine.prompts) == 1
    pop = tmp_path / "pop.json"
    result = runner.invoke(app, ["graph", "--population", "--free-tags", "--out", str(pop), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert len(engine.prompts) == 1 + 3  # one batched request per user
    assert "late night" in {n["id"] for n in json.loads(pop.read_text())["nodes"]}
