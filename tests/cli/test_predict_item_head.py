"""`tide predict --item-head`: a real tuned item-head model (tiny, trained here on the test catalogue) ranks and
states interests in a real `tide` process, and no engine is started for it."""

from __future__ import annotations

import json

import pytest
from cli_testkit import HISTORY, MOVIES, run_tide, stderr_lines


@pytest.fixture(scope="module")
def tiny_head(tmp_path_factory):
    from agent import CatalogItem, ItemHeadConfig, ensure_model, tune_item_head

    items = [CatalogItem(item_id=i, title=t, categories=g) for i, (t, g) in MOVIES.items()]
    seqs = {u: [i for uu, i, _ in HISTORY if uu == u] for u in ("ann", "bob")}
    config = ItemHeadConfig(rank=2, top_layers=1, window=5, min_history=1, windows_per_user=1, max_windows=2,
                            checkpoint_every=1)
    return tune_item_head(seqs, items, [], config, base=ensure_model(),
                          home=tmp_path_factory.mktemp("head-home"), progress=False)


def test_predict_with_an_item_head_ranks_and_states_interests_without_an_engine(tmp_path, behaviors_file,
                                                                                 items_file, tide_env, tiny_head):
    store = tmp_path / "store"
    assert run_tide(["ingest", str(behaviors_file), "--store", str(store)], tide_env).returncode == 0
    proc = run_tide(["predict", "--user", "ann", "--store", str(store), "--catalog", str(items_file), "--k", "5",
                     "--item-head", str(tiny_head), "--json"], tide_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = json.loads(proc.stdout)
    seen = {i for u, i, _ in HISTORY if u == "ann"}
    got = [it["item_id"] for it in pred["next_items"]]
    assert len(got) == 5 and not set(got) & seen and set(got) <= set(MOVIES)
    # the item head scored the candidates (a choice probability per item) and is named in the provenance
    assert all(it["llm_prob"] is not None for it in pred["next_items"])
    tuned = pred["provenance"]["tuned"]
    assert tuned["kind"] == "item-head" and tuned["key"] == tiny_head.name.rsplit("-", 1)[1]
    # no engine: none described, none named; the interests come from the model, over the catalogue's categories
    assert pred["provenance"]["engine"] == {} and pred["provenance"]["model"] is None
    categories = {g for _, gs in MOVIES.values() for g in gs}
    assert pred["interests"] and {i["label"] for i in pred["interests"]} <= categories
    # the ranking weights are the main job's validation choice with the committed model (tide._itemhead)
    assert pred["provenance"]["retrieval"]["fusion_weight"] == 0.0
    assert pred["provenance"]["retrieval"]["w_llm"] == 0.0


def test_predict_refuses_a_folder_that_is_not_an_item_head_model(tmp_path, items_file, tide_env):
    proc = run_tide(["predict", "--user", "ann", "--store", str(tmp_path / "store"), "--catalog", str(items_file),
                     "--item-head", str(tmp_path)], tide_env, timeout=300)
    assert proc.returncode == 2
    assert "not an item-head model folder" in " ".join(stderr_lines(proc.stderr))
    assert proc.stdout == ""
