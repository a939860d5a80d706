"""Fixtures for the CLI tests: small real input files, and the environment a `tide` subprocess runs in."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from cli_testkit import HISTORY, MOVIES, T0


@pytest.fixture
def behaviors_file(tmp_path) -> Path:
    """A JSONL behavior file in the `tide ingest` schema: three users, ten behaviors."""
    rows = [{"user_id": u, "item_id": i, "action": "rated", "timestamp": (T0 + timedelta(days=day)).isoformat(),
             "text": f'Rated "{MOVIES[i][0]}" ({", ".join(MOVIES[i][1])}) 5/5.',
             "attributes": {"genres": list(MOVIES[i][1])}, "weight": 5.0} for u, i, day in HISTORY]
    path = tmp_path / "behaviors.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def items_file(tmp_path) -> Path:
    """A JSONL item catalogue (item_id, title, text, categories)."""
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"item_id": i, "title": t, "text": f'Watched "{t}" ({", ".join(g)}).',
                                        "categories": list(g)}) + "\n" for i, (t, g) in MOVIES.items()))
    return path


@pytest.fixture
def tide_env(tmp_path) -> dict[str, str]:
    """Environment for a `tide` subprocess: its own $TIDE_HOME (catalog cache, store), the prepared model."""
    from agent import model_dir

    home = tmp_path / "home"
    home.mkdir()
    models = model_dir().parent
    if models.exists():  # the prepared embedded model is shared, not converted again
        (home / "models").symlink_to(models, target_is_directory=True)
    return dict(os.environ, TIDE_HOME=str(home), HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1",
                COLUMNS="200")



@pytest.fixture
def store(tmp_path, behaviors_file, monkeypatch) -> Path:
    """A store filled by a real ``tide ingest`` of ``behaviors_file`` (TIDE_HOME in tmp_path)."""
    from typer.testing import CliRunner

    from tide.cli import app

    monkeypatch.setenv("TIDE_HOME", str(tmp_path / "home"))
    path = tmp_path / "store"
    result = CliRunner().invoke(app, ["ingest", str(behaviors_file), "--store", str(path)])
    assert result.exit_code == 0, result.output
    return path
