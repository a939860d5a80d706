"""scripts/item_head_ledger.py: the table of every item head read on all validation users, from the committed
catalogue files and from made-up ones (settings an older manifest lacked read at their old meaning)."""

from __future__ import annotations

import json

import pytest


def _file(folder, name, users, models, pairs=None):
    (folder / name).write_text(json.dumps({"users": users, "models": models, "model_vs_stored": pairs or {}}))


def test_absent_settings_mean_what_they_meant_and_only_changes_show(script):
    m = script("item_head_ledger")
    from agent import ItemHeadConfig

    today = ItemHeadConfig().model_dump(mode="json")
    assert m.differences(today) == {}
    # a manifest from before bfloat16 training and the standardised head: both absent, both old values
    old = {k: v for k, v in today.items() if k not in ("train_dtype", "standardize", "lora_dropout")}
    assert m.differences(old) == {"standardize": False, "train_dtype": "float32"}
    # a branch is named without its fit's hash; its rate shows only while a branch is on
    assert m.differences(today | {"branch": "sasrec-150512a53846", "branch_learning_rate": 5e-3}) == {
        "branch": "sasrec", "branch_learning_rate": 5e-3}
    assert m.differences(today | {"branch_learning_rate": 5e-3}) == {}
    assert m.differences(today | {"checkpoint_every": 7}) == {}


def test_rows_pair_each_head_with_what_its_file_compared_it_to(script, tmp_path):
    m = script("item_head_ledger")
    from agent import ItemHeadConfig

    cfg = ItemHeadConfig().model_dump(mode="json")
    alone = {"ndcg@10": 0.12, "recall@20": 0.3}
    _file(tmp_path, "item-head-catalogue-a.json", 943,
          {"gemma-3-270m-item-head-aaaaaaaaaaaa": {"config": cfg | {"rank": 8}, "windows": 10, "alone": alone},
           "sasrec (test-like)": {"alone": alone}},
          {"gemma-3-270m-item-head-aaaaaaaaaaaa - gemma-3-270m-item-head-bbbbbbbbbbbb":
           {"mean_diff": -0.01234, "p_bootstrap": 0.04, "p_wilcoxon": 0.03}})
    _file(tmp_path, "item-head-catalogue-b.json", 400,
          {"gemma-3-270m-item-head-cccccccccccc": {"config": cfg, "windows": 10, "alone": alone}})
    rows = m.rows(tmp_path, 943)
    assert [r["head"] for r in rows] == ["aaaaaaaaaaaa"]  # the 400-user file and the sequential model left out
    assert rows[0]["changes"] == {"rank": 8}
    assert rows[0]["vs"] == [{"other": "bbbbbbbbbbbb", "diff": -0.0123, "p_bootstrap": 0.04, "p_wilcoxon": 0.03}]
    assert "| `aaaaaaaaaaaa` | gemma-3-270m | rank=8 | 10 | 0.1200 | 0.300 | bbbbbbbbbbbb -0.0123" in m.markdown(rows)
    with pytest.raises(SystemExit):
        m.main(["--results", str(tmp_path), "--users", "5"])
    with pytest.raises(SystemExit):
        m.main(["--results", str(tmp_path / "nope")])


def test_the_committed_files_give_the_branch_head_and_the_default(script, capsys):
    m = script("item_head_ledger")
    m.main(["--json"])
    rows = json.loads(capsys.readouterr().out)
    by = {(r["head"], r["file"]): r for r in rows}
    branch = by[("b61c0ccc0b67", "item-head-catalogue-branch.json")]
    assert branch["changes"] == {"branch": "sasrec"} and branch["ndcg@10"] == 0.1281
    assert by[("f0afd07af37c", "item-head-catalogue-layers3.json")]["changes"] == {}
