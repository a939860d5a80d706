"""eval._branch: SASRec as the item head's sequence branch — the index mapping, the architecture rebuilt from a
tuned head's manifest (real SASRec module, real JSON files), and the name the head's key holds."""

from __future__ import annotations

import json

import pytest

from eval import leave_one_out, without_last
from eval._synthetic import make_synthetic

torch = pytest.importorskip("torch")


def test_the_branch_reads_head_indices_as_sasrec_reads_its_own_and_is_rebuilt_from_the_manifest(tmp_path):
    import eval._branch as mod
    from eval._sasrec import SASRecConfig, _make_net

    cfg = SASRecConfig(dim=8, blocks=1, max_history=10, dropout=0.0, device="cpu", progress=False)
    sasrec_ids = ["c", "a", "d", "b"]
    head_ids = ["a", "b", "c", "d"]
    torch.manual_seed(0)
    net = _make_net(len(sasrec_ids), cfg, None).eval()
    branch = mod.wrap(net, sasrec_ids, head_ids)
    seq = torch.tensor([2, 0, 3])  # head order: c, a, d -> SASRec's indices 1, 2, 3 (0 is padding)
    with torch.no_grad():
        assert torch.equal(branch(seq), net(torch.tensor([[1, 2, 3]]))[0])
        assert branch(seq).shape == (3, cfg.dim)

    (tmp_path / "items.json").write_text(json.dumps(head_ids))
    manifest = {"config": {"branch": "sasrec-test"},
                "branch": {"kind": "sasrec", "config": cfg.model_dump(mode="json"), "item_ids": sasrec_ids}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    rebuilt = mod.branch_from_manifest(tmp_path)
    rebuilt.load_state_dict(branch.state_dict())  # the same architecture, the same mapping
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(seq), branch(seq))
    manifest["config"]["branch"] = None
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert mod.branch_from_manifest(tmp_path) is None
    manifest["config"]["branch"], manifest["branch"]["kind"] = "x", "gru"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="unknown kind 'gru'"):
        mod.branch_from_manifest(tmp_path)


def test_the_branch_is_named_by_what_its_fit_depends_on_and_fitted_under_that_name(tmp_path, monkeypatch):
    import eval._branch as mod
    import eval._seqmodels
    from agent import ItemHeadConfig

    ds, _ = make_synthetic(n_users=12, n_items=30, seed=3, min_events=8, max_events=10)
    split, tsplit = leave_one_out(ds), leave_one_out(without_last(ds))
    name = mod.branch_name(split)
    assert name.startswith("sasrec-") and len(name) == len("sasrec-") + 12
    assert mod.branch_name(tsplit) != name  # other validation targets stop the fit: another branch
    assert mod.resolve_branch(ItemHeadConfig(branch="sasrec"), split) == ItemHeadConfig(branch=name)
    for other in (None, ItemHeadConfig(), ItemHeadConfig(branch="sasrec-000000000000")):
        assert mod.resolve_branch(other, split) == other
    build = eval._seqmodels.build_sequential

    def built_with(**update):  # build_sequential, its SASRec config changed by ``update``
        def builder(name_, dataset, **kw):
            model = build(name_, dataset, **kw)
            model.config = model.config.model_copy(update=update)
            return model
        return builder

    monkeypatch.setattr(eval._seqmodels, "build_sequential", built_with(max_epochs=2, device="cpu", progress=False))
    quick = mod.branch_name(split)
    assert quick != name  # max_epochs is part of what is fitted ...
    monkeypatch.setattr(eval._seqmodels, "build_sequential", built_with(max_epochs=2))
    assert mod.branch_name(split) == quick  # ... where it runs and how visibly are not
    monkeypatch.setattr(eval._seqmodels, "build_sequential", built_with(max_epochs=2, device="cpu", progress=False))
    head_ids = sorted(split.item_ids)[::-1]
    branch, record = mod.fitted_branch(split, head_ids, tmp_path / "sasrec")
    assert record["name"] == quick and record["kind"] == "sasrec" and len(record["sha256"]) == 64
    again, record2 = mod.fitted_branch(split, head_ids, tmp_path / "sasrec")  # reloaded from the folder
    assert record2 == record
    seq = torch.tensor([0, 5, 7])
    with torch.no_grad():
        assert torch.equal(branch.eval()(seq), again.eval()(seq))


@pytest.mark.slow
def test_the_harness_trains_finds_and_reads_a_sasrec_branch_head(tmp_path, monkeypatch):
    """``item_head_config={"branch": "sasrec"}`` end to end on a synthetic split with the real base model: the
    harness fits SASRec on the split, trains the head with it as the branch (the manifest records what rebuilds
    it), finds the same folder again by key without fitting anything, and the ``llm`` model reads it through
    the branch rebuilt from the manifest, exactly as the scorer given the trained branch scores."""
    import numpy as np

    import eval._branch
    import eval._seqmodels
    from agent import ItemHeadConfig, ItemHeadScorer, ensure_model
    from eval import item_head_on_split, run_evaluation
    from eval._llm_alone import ItemHeadPredictor
    from eval._tune import tune_items

    build = eval._seqmodels.build_sequential

    def quick(name_, dataset, **kw):  # a two-epoch SASRec on the CPU
        model = build(name_, dataset, **kw)
        model.config = model.config.model_copy(update={"max_epochs": 2, "device": "cpu", "progress": False})
        return model

    monkeypatch.setattr(eval._seqmodels, "build_sequential", quick)
    ds = make_synthetic(n_users=6, n_items=200, seed=3)[0]
    split = leave_one_out(ds)
    tiny = ItemHeadConfig(rank=2, top_layers=1, window=6, min_history=2, windows_per_user=2, max_windows=4,
                          learning_rate=1e-2, head_learning_rate=1e-2, lr_decay="none", standardize=False,
                          branch="sasrec")
    kw = {"home": tmp_path, "base": ensure_model()}
    assert item_head_on_split(split, tiny, train=False, **kw) is None
    with pytest.raises(ValueError, match="only the 'sasrec' branch"):
        item_head_on_split(split, tiny.model_copy(update={"branch": "sasrec-000000000000"}), progress=False, **kw)
    folder = item_head_on_split(split, tiny, progress=False, **kw)
    manifest = json.loads((folder / "manifest.json").read_text())
    name = eval._branch.branch_name(split)
    assert manifest["config"]["branch"] == manifest["branch"]["name"] == name
    assert (folder / "branch.safetensors").is_file()

    def no_fit(*a, **k):  # finding the head needs its name only
        raise AssertionError("SASRec was fitted to find a head")

    monkeypatch.setattr(eval._branch, "fitted_branch", no_fit)
    assert item_head_on_split(split, tiny, progress=False, **kw) == folder
    assert item_head_on_split(split, tiny.model_copy(update={"branch": name}), train=False, **kw) == folder

    items = tune_items(ds)
    titles = {it.item_id: it.title for it in items}
    result = run_evaluation(ds, [ItemHeadPredictor(folder, titles)], split, users="all", seed=0,
                            out_dir=tmp_path / "run", n_bootstrap=10)
    with pytest.raises(ValueError, match="sequence branch"):
        ItemHeadScorer(folder, titles)
    scorer = ItemHeadScorer(folder, titles, branch=eval._branch.branch_from_manifest(folder))
    for r, ranking in zip(split.requests(result.users, "test"), result.rankings["llm"], strict=True):
        s = scorer.scores([list(r.history)])[0]
        allowed = [i for i in split.item_ids if i not in r.exclude]
        best = max(allowed, key=lambda i: (s[scorer.index[i]], -split.item_ids.index(i)))
        assert ranking.item_ids[0] == best
        np.testing.assert_allclose(ranking.scores[0], s[scorer.index[best]], rtol=1e-5)
