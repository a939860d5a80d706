"""Options are checked while the command line is parsed: a bad value is exit 2 before any work starts."""

from __future__ import annotations

import pytest
from cli_testkit import run_tide
from typer.testing import CliRunner

from tide.cli import app

runner = CliRunner()


@pytest.mark.parametrize("bad", [
    ["--models", "pop,gpt"], ["--models", ","], ["--models", "pop,pop"], ["--users", "0"], ["--users", "many"],
    ["--split", "random"], ["--show-user", "two users"], ["--show-user", ""], ["--n-bootstrap", "-1"],
    ["--tune-alpha", "0"], ["--tune-alpha", "1.5"], ["--validation", "test"],
])
def test_a_bad_eval_option_fails_fast_with_exit_2(tmp_path, bad):
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--out", str(out), *bad])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert not out.exists()  # nothing was loaded, trained or written


def test_ingest_needs_exactly_one_source_before_opening_a_store(tmp_path):
    result = runner.invoke(app, ["ingest", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert not (tmp_path / "s").exists()


def _tiny_ml100k(folder, n_users: int = 8):
    """The real ML-100k restricted to its ``n_users`` shortest histories (RecBole atomic files)."""
    from eval import ml100k_default_path

    src = ml100k_default_path()
    inter = (src / "ml-100k.inter").read_text().splitlines()
    counts: dict[str, int] = {}
    for row in inter[1:]:
        counts[row.split("\t")[0]] = counts.get(row.split("\t")[0], 0) + 1
    keep = set(sorted(counts, key=lambda u: (counts[u], int(u)))[:n_users])
    rows = [r for r in inter[1:] if r.split("\t")[0] in keep]
    items = {r.split("\t")[1] for r in rows}
    item_rows = (src / "ml-100k.item").read_text().splitlines()
    folder.mkdir()
    (folder / "ml-100k.inter").write_text("\n".join([inter[0], *rows]) + "\n")
    (folder / "ml-100k.item").write_text("\n".join([item_rows[0], *(r for r in item_rows[1:]
                                                                   if r.split("\t")[0] in items)]) + "\n")
    return folder


@pytest.mark.slow
def test_eval_show_user_none_shows_no_user(tmp_path, tide_env):
    data = _tiny_ml100k(tmp_path / "ml")
    out = tmp_path / "run"
    proc = run_tide(["eval", "--dataset", str(data), "--models", "pop,memory", "--users", "all",
                     "--show-user", "none", "--n-bootstrap", "20", "--out", str(out)], tide_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "summary.json").exists()
    assert not list(out.glob("user_*_interests.png"))  # 'auto' or a user id would draw this user's timeline
