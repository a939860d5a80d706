"""The item-head model: training windows (no leakage), the cache key, and a tiny real tuning run scored
through the agent's re-ranking stage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent import (
    CatalogItem,
    CatalogScores,
    ItemHeadConfig,
    ItemHeadScorer,
    ModelPreparationError,
    TuneDataError,
    find_item_head,
    item_head_key,
    training_windows,
    tune_item_head,
)

GENRES = ("Action", "Comedy", "Drama", "Horror", "Sci-Fi")
ITEMS = [CatalogItem(item_id=f"m{i}", title=f"Film number {i} ({1980 + i})", categories=(GENRES[i % 5],))
         for i in range(24)]
INDEX = {it.item_id: j for j, it in enumerate(ITEMS)}
SEQS = {f"u{u}": [f"m{(u + 3 * k) % 24}" for k in range(9)] for u in range(4)}
TINY = ItemHeadConfig(rank=2, top_layers=1, window=6, min_history=2, windows_per_user=2, max_windows=3,
                      learning_rate=1e-2, head_learning_rate=1e-2, checkpoint_every=1, lr_decay="none",
                      standardize=False, train_dtype="float32")


def test_windows_are_newest_first_seeded_and_refuse_held_out_items():
    cfg = ItemHeadConfig(window=4, min_history=1, windows_per_user=2, epochs=1)
    wins = training_windows(SEQS, INDEX, cfg)
    # each epoch is every window once, in its own seeded order
    two = training_windows(SEQS, INDEX, cfg.model_copy(update={"epochs": 2}))
    assert two[:len(wins)] == wins and sorted(two[len(wins):]) == sorted(wins) and two[len(wins):] != wins
    per_user = {u: [w for uu, w in wins if uu == u] for u in SEQS}
    for u, seq in SEQS.items():
        idx = [INDEX[i] for i in seq]
        assert sorted(map(tuple, per_user[u])) == sorted([tuple(idx[-4:]), tuple(idx[-8:-4])])
    assert wins == training_windows(SEQS, INDEX, cfg)  # seeded
    assert wins != training_windows(SEQS, INDEX, cfg.model_copy(update={"seed": 1}))
    # a held-out (user, item) pair inside a training sequence is refused, so is an unknown item
    with pytest.raises(TuneDataError, match="forbidden"):
        training_windows(SEQS, INDEX, cfg, forbidden=[("u1", SEQS["u1"][-1])])
    training_windows(SEQS, INDEX, cfg, forbidden=[("u1", "m23")] if "m23" not in SEQS["u1"] else [])
    with pytest.raises(TuneDataError, match="not in the catalogue"):
        training_windows({"u9": ["m1", "nope"]}, INDEX, cfg)


def test_key_changes_with_base_data_and_config():
    k = item_head_key("b", "d", TINY)
    assert len(k) == 12 and k == item_head_key("b", "d", TINY)
    assert len({k, item_head_key("c", "d", TINY), item_head_key("b", "e", TINY),
                item_head_key("b", "d", TINY.model_copy(update={"rank": 4}))}) == 4
    # the learning-rate schedule is part of the key; a constant one keys as models trained before the field
    # existed (a committed model stays found)
    assert item_head_key("b", "d", TINY.model_copy(update={"lr_decay": "linear"})) != k
    import hashlib

    # likewise the standardised head: off keys as before the field existed, on is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"standardize": True})) != k
    # and the training dtype: float32 keys as before, bfloat16 is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"train_dtype": "bfloat16"})) != k
    # and residual training: none keys as before, a named offset is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"residual": "sasrec"})) != k
    # and rated history lines: off keys as before, on is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"ratings": True})) != k
    # and item ID vectors: off keys as before (their rate and scale with them), on is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"item_ids": True})) != k
    assert item_head_key("b", "d", TINY.model_copy(update={"id_scale": 8.0})) == k
    # and a sequence branch: off keys as before (its rate with it), on is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"branch": "sasrec-x"})) != k
    assert item_head_key("b", "d", TINY.model_copy(update={"branch_learning_rate": 1e-2})) == k
    # and LoRA dropout: none keys as before, any is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"lora_dropout": 0.1})) != k
    # and layer-wise learning-rate decay: 1 keys as before, any other is another model
    assert item_head_key("b", "d", TINY.model_copy(update={"lora_layer_decay": 0.8})) != k
    legacy = {k_: v for k_, v in TINY.model_dump(mode="json").items()
              if k_ not in ("lr_decay", "standardize", "train_dtype", "residual", "ratings", "item_ids",
                            "id_learning_rate", "id_scale", "branch", "branch_learning_rate", "lora_dropout",
                            "lora_layer_decay")}
    blob = json.dumps({"base": "b", "data": "d", "config": legacy, "kind": "item-head"}, sort_keys=True)
    assert k == hashlib.sha256(blob.encode()).hexdigest()[:12]


class _Dist:
    """Stands in for ItemHeadScorer (logic only): a fixed next-item distribution over ITEMS."""

    def __init__(self, probs):
        self.item_ids = [it.item_id for it in ITEMS]
        self.p = np.array([probs.get(i, 0.0) for i in self.item_ids])

    def next_item_probs(self, history, exclude=()):
        p = self.p.copy()
        p[[INDEX[i] for i in exclude]] = 0
        return p / p.sum()


class _Catalog:
    items = ITEMS
    index = INDEX


@pytest.mark.parametrize(("probs", "expected"), [
    ({"m1": 0.6, "m2": 0.4}, ["Comedy", "Drama"]),  # {Comedy} 0.6 < {Comedy, Drama} 0.6·2/3 + 0.4·2/3
    ({"m1": 0.9, "m2": 0.1}, ["Comedy"]),  # {Comedy} 0.9 > 0.9·2/3 + 0.1·2/3
    ({"m1": 0.4, "m2": 0.35, "m3": 0.25}, ["Comedy", "Drama"]),  # the third category does not pay its way
])
def test_expected_f1_picks_how_many_categories_to_state(probs, expected):
    from agent._itemhead_interests import expected_f1_labels

    got = expected_f1_labels(_Catalog(), _Dist(probs), [], [], 3)
    assert sorted(got) == sorted(expected)
    # what the set is worth, by hand: no other set of at most three of the five categories is worth more
    rows = [(p, set(ITEMS[INDEX[i]].categories)) for i, p in probs.items()]

    def worth(subset):
        return sum(p * 2 * len(set(subset) & g) / (len(subset) + len(g)) for p, g in rows)

    from itertools import combinations

    best = max(worth(c) for k in (1, 2, 3) for c in combinations(GENRES, k))
    assert worth(got) == pytest.approx(best)
    # consumed items carry no mass
    assert expected_f1_labels(_Catalog(), _Dist(probs), [], ["m1"], 3) != [] and "Comedy" not in \
        expected_f1_labels(_Catalog(), _Dist(probs), [], ["m1"], 3)


def test_expected_f1_temperature_and_the_recent_items_share():
    from agent._itemhead_interests import expected_f1_labels

    probs = {"m1": 0.45, "m2": 0.3, "m3": 0.25}  # Comedy, Drama, Horror
    assert sorted(expected_f1_labels(_Catalog(), _Dist(probs), [], [], 3)) == ["Comedy", "Drama"]
    # sharpened (p ** 5): Comedy carries ~0.85 of the mass, one label pays best
    assert expected_f1_labels(_Catalog(), _Dist(probs), [], [], 3, temperature=0.2) == ["Comedy"]
    # the model says Comedy for sure; the last items (m2, m7: Drama) take half the mass: both labels pay
    # (2/3 per row) over either alone (1/2); with 0.8 of the mass Drama alone pays best (0.8 > 2/3)
    sure = {"m1": 1.0}
    assert expected_f1_labels(_Catalog(), _Dist(sure), ["m4", "m2", "m7"], [], 3) == ["Comedy"]
    assert sorted(expected_f1_labels(_Catalog(), _Dist(sure), ["m4", "m2", "m7"], [], 3, recent_mix=0.5,
                                     recent_items=2)) == ["Comedy", "Drama"]
    assert expected_f1_labels(_Catalog(), _Dist(sure), ["m4", "m2", "m7"], [], 3, recent_mix=0.8,
                              recent_items=2) == ["Drama"]
    with pytest.raises(ValueError, match="temperature"):
        expected_f1_labels(_Catalog(), _Dist(sure), [], [], 3, temperature=0)


def test_tiny_real_run_is_cached_resumable_and_scores_the_agents_candidates(tmp_path, model_path):
    from agent import ScoredUser, UserContext
    from agent._rerank import Reranker

    # a budget of 0 s stops after the first window: that is the run with max_windows=1 (same folder)
    short = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False, time_budget_s=0)
    one = TINY.model_copy(update={"max_windows": 1})
    assert tune_item_head(SEQS, ITEMS, [], one, base=model_path, home=tmp_path, progress=False) == short

    folder = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False, device="cpu")
    assert folder != short and folder.name.startswith(f"{model_path.name}-item-head-")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "item-head" and manifest["train"]["windows"] == 3
    assert manifest["train"]["device"] == "cpu"
    assert manifest["config"]["rank"] == 2 and manifest["data"]["items"] == len(ITEMS)
    assert {"adapter_model.safetensors", "adapter_config.json", "item_head.safetensors", "items.json"} <= set(
        manifest["files"])
    created = manifest["created"]
    assert tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False) == folder
    assert json.loads((folder / "manifest.json").read_text())["created"] == created  # reused, not retrained

    # a committed copy (seed folder) is found for a fresh $TIDE_HOME; a damaged one is not
    fresh = tmp_path / "fresh"
    assert find_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=fresh) is None
    found = find_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=fresh, seeds=[folder.parent])
    assert found == fresh / "models" / folder.name and (found / "item_head.safetensors").exists()
    bad = tmp_path / "bad"
    (bad / folder.name).mkdir(parents=True)
    for f in folder.iterdir():
        (bad / folder.name / f.name).write_bytes(f.read_bytes())
    (bad / folder.name / "items.json").write_text("[]")
    assert find_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path / "fresh2", seeds=[bad]) is None

    scorer = ItemHeadScorer(folder, {it.item_id: it.title for it in ITEMS}, base=model_path)
    assert scorer.info["key"] == manifest["key"] and scorer.info["kind"] == "item-head"
    hist = SEQS["u0"][:5]
    s = scorer.scores([hist, []])
    assert s.shape == (2, len(ITEMS)) and np.isfinite(s).all()
    np.testing.assert_allclose(s[1], scorer.scores([["unknown"]])[0])  # nothing known: the popularity bias
    cands = ["m1", "m2", "m7", "zzz"]
    p = scorer.candidate_probs(hist, cands)
    assert p[-1] == 0 and p.sum() == pytest.approx(1.0)
    z = np.exp(s[0][[INDEX[c] for c in cands[:3]]] - s[0][[INDEX[c] for c in cands[:3]]].max())
    np.testing.assert_allclose(p[:3], z / z.sum(), rtol=1e-5)

    # as the candidate stage's source: the logits in a catalogue's own column order, unknown items lowest
    cols = ["m5", "new", "m0", "m23"]
    src = CatalogScores(scorer, cols).score_histories(["u0"], [hist], [None])
    assert src.shape == (1, 4)
    np.testing.assert_allclose(src[0, [0, 2, 3]], s[0][[5, 0, 23]])
    assert src[0, 1] == s[0].min()

    class _Cat:  # the re-ranking stage needs only the catalogue's items
        items = ITEMS

    # not cold: one recent behavior (the stage reads only the history and candidates)
    ctx = UserContext(user_id="u0", now=None, recent=[None], long_range=[], profile=None, history=hist)
    su = ScoredUser(context=ctx, candidates=[INDEX[c] for c in cands[:3]], retrieval=np.zeros(len(ITEMS)))
    [choice] = Reranker(_Cat(), None, item_head=scorer).choice_probs([su])
    np.testing.assert_allclose(choice.per_candidate(), p[:3] / p[:3].sum(), rtol=1e-6)


def test_a_decaying_schedule_publishes_only_at_its_end_and_resumes_to_the_same_model(tmp_path, model_path):
    from safetensors.numpy import load_file

    lin = TINY.model_copy(update={"lr_decay": "linear"})
    # a budget of 0 s stops after the first window: no model (it would not be any config's run), a checkpoint
    with pytest.raises(ModelPreparationError, match="run again to resume"):
        tune_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path, progress=False, time_budget_s=0)
    assert find_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path) is None
    resumed = tune_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path, progress=False)
    whole = tune_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path / "b", progress=False)
    assert resumed.name == whole.name
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert manifest["config"]["lr_decay"] == "linear"
    # the manifest counts both runs' training time, not only the resumed one's
    train = manifest["train"]
    assert train["runs"] == 2 and json.loads((whole / "manifest.json").read_text())["train"]["runs"] == 1
    assert train["seconds_all_runs"] > train["seconds_this_run"] > 0
    a, b = load_file(str(resumed / "item_head.safetensors")), load_file(str(whole / "item_head.safetensors"))
    for name in a:
        np.testing.assert_allclose(a[name].astype(np.float32), b[name].astype(np.float32), rtol=1e-3, atol=1e-3)
    # the schedule changes the weights: the constant run's head differs
    const = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    c = load_file(str(const / "item_head.safetensors"))
    assert any(not np.allclose(a[n].astype(np.float32), c[n].astype(np.float32), atol=1e-3) for n in a)


def test_lora_dropout_reaches_the_adapter_and_changes_the_trained_model(tmp_path, model_path):
    from safetensors.numpy import load_file

    with pytest.raises(ValueError):
        ItemHeadConfig(lora_dropout=1.0)
    drop = TINY.model_copy(update={"lora_dropout": 0.5})
    plain = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    dropped = tune_item_head(SEQS, ITEMS, [], drop, base=model_path, home=tmp_path, progress=False)
    assert dropped != plain
    assert json.loads((dropped / "adapter_config.json").read_text())["lora_dropout"] == 0.5
    assert json.loads((plain / "adapter_config.json").read_text())["lora_dropout"] == 0.0
    a, b = load_file(str(plain / "adapter_model.safetensors")), load_file(str(dropped / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert any(not np.allclose(a[n].astype(np.float32), b[n].astype(np.float32), atol=1e-6) for n in a)
    # inference reads the merged model: no dropout there, the same history scores the same twice
    scorer = ItemHeadScorer(dropped, {it.item_id: it.title for it in ITEMS}, base=model_path)
    hist = SEQS["u1"][:5]
    np.testing.assert_array_equal(scorer.scores([hist]), scorer.scores([hist]))


def test_layer_decay_slows_the_lower_layers_lora_only(tmp_path, model_path):
    import re

    from safetensors.numpy import load_file

    with pytest.raises(ValueError):
        ItemHeadConfig(lora_layer_decay=0.0)
    two = TINY.model_copy(update={"top_layers": 2})

    def moved(cfg):  # the largest LoRA B entry per tuned layer (B starts at zero)
        w = load_file(str(tune_item_head(SEQS, ITEMS, [], cfg, base=model_path, home=tmp_path, progress=False)
                          / "adapter_model.safetensors"))
        out: dict[int, float] = {}
        for n, a in w.items():
            if "lora_B" in n:
                i = int(re.search(r"\.layers\.(\d+)\.", n).group(1))
                out[i] = max(out.get(i, 0.0), float(np.abs(a.astype(np.float32)).max()))
        return out

    plain, decayed = moved(two), moved(two.model_copy(update={"lora_layer_decay": 1e-6}))
    low, top = sorted(plain)
    assert sorted(decayed) == [low, top]
    # one rate: both layers move; decay 1e-6: the top layer moves as before, the one below hardly at all
    assert plain[low] > 1e-3 and plain[top] > 1e-3
    assert decayed[top] > 1e-3 and decayed[low] < 1e-6
    assert decayed[top] == pytest.approx(plain[top], rel=0.5)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device (a lent GPU)")
def test_training_on_cuda_resumes_a_cpu_checkpoint_and_matches_the_cpu_run(tmp_path, model_path):
    """The GPU path: the device is not part of the key, a checkpoint written on the CPU resumes on CUDA, and
    the model equals the CPU run's up to rounding."""
    from safetensors.numpy import load_file

    lin = TINY.model_copy(update={"lr_decay": "linear"})
    with pytest.raises(ModelPreparationError, match="run again to resume"):
        tune_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path, progress=False, time_budget_s=0,
                       device="cpu")
    gpu = tune_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path, progress=False, device="cuda")
    cpu = tune_item_head(SEQS, ITEMS, [], lin, base=model_path, home=tmp_path / "b", progress=False, device="cpu")
    assert gpu.name == cpu.name
    assert json.loads((gpu / "manifest.json").read_text())["train"]["device"].startswith("cuda")
    a, b = load_file(str(gpu / "item_head.safetensors")), load_file(str(cpu / "item_head.safetensors"))
    for name in a:
        np.testing.assert_allclose(a[name].astype(np.float32), b[name].astype(np.float32), rtol=1e-2, atol=1e-2)


def test_a_standardised_head_scores_at_inference_as_it_trained(tmp_path, model_path):
    """The head's fixed centre and spread are stored with it, and the scorer applies them to the history's
    state: its logits equal the trained head's own on the same state (merged adapter, float32)."""
    import torch
    from safetensors.torch import load_file

    from agent._itemhead_tune import _head_module

    cfg = TINY.model_copy(update={"standardize": True})
    folder = tune_item_head(SEQS, ITEMS, [], cfg, base=model_path, home=tmp_path, progress=False)
    assert folder != tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    st = load_file(str(folder / "item_head.safetensors"))
    assert {"emb", "bias", "scale", "center", "inv_spread"} <= set(st)
    assert (st["inv_spread"].float() > 0).all()
    scorer = ItemHeadScorer(folder, {it.item_id: it.title for it in ITEMS}, base=model_path, dtype="float32")
    hist = SEQS["u1"][:6]
    s = scorer.scores([hist])[0]
    head = _head_module(torch.zeros(len(ITEMS), st["emb"].shape[1]), np.zeros(len(ITEMS)), standardize=True)
    head.load_state_dict({k: v.float() for k, v in st.items()})
    with torch.no_grad():
        h = scorer.backbone.states([INDEX[i] for i in hist])[-1]
        np.testing.assert_allclose(s, head(h[None])[0].numpy(), rtol=1e-4, atol=1e-4)
    # without the standardisation the same weights would score otherwise (the stored centre is used)
    plain = _head_module(torch.zeros(len(ITEMS), st["emb"].shape[1]), np.zeros(len(ITEMS)), standardize=False)
    plain.load_state_dict({k: v.float() for k, v in st.items() if k not in ("center", "inv_spread")})
    with torch.no_grad():
        assert not np.allclose(s, plain(h[None])[0].numpy(), atol=1e-3)


def test_the_scorer_in_bfloat16_computes_in_bfloat16_scores_alike_and_says_so(tmp_path, model_path):
    import torch

    from agent import default_dtype

    folder = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    titles = {it.item_id: it.title for it in ITEMS}
    f32 = ItemHeadScorer(folder, titles, base=model_path, dtype="float32")
    b16 = ItemHeadScorer(folder, titles, base=model_path, dtype="bfloat16")
    assert (f32.info["dtype"], b16.info["dtype"]) == ("float32", "bfloat16")
    # the default, "auto", is bfloat16 exactly where the CPU has it natively
    assert ItemHeadScorer(folder, titles, base=model_path).info["dtype"] == default_dtype("cpu")
    assert {p.dtype for p in b16.backbone.model.parameters()} == {torch.bfloat16}
    hist = SEQS["u1"][:6]
    a, b = f32.scores([hist])[0], b16.scores([hist])[0]
    assert b.dtype == np.float32 and np.isfinite(b).all()
    assert not np.array_equal(a, b)  # really computed in another precision
    assert np.corrcoef(a, b)[0, 1] > 0.99
    with pytest.raises(ValueError, match="dtype"):
        ItemHeadScorer(folder, titles, base=model_path, dtype="float16")


def test_the_scorer_averages_the_logits_of_its_short_views(tmp_path, model_path):
    """``short_views=(k,)`` scores a history as the mean of the full window's logits and those after its last
    ``k`` items; the default reads are the same scorer's; a view longer than the history reads it whole."""
    folder = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    titles = {it.item_id: it.title for it in ITEMS}
    one = ItemHeadScorer(folder, titles, base=model_path, dtype="float32", short_views=())
    two = ItemHeadScorer(folder, titles, base=model_path, dtype="float32", short_views=(2,))
    assert (one.info["short_views"], two.info["short_views"]) == ([], [2])
    hist = SEQS["u1"][:6]
    full, last2 = one.scores([hist])[0], one.scores([hist[-2:]])[0]
    assert not np.allclose(full, last2, atol=1e-3)  # the two reads really differ
    np.testing.assert_allclose(two.scores([hist])[0], (full + last2) / 2, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(two.scores([hist[:2]])[0], one.scores([hist[:2]])[0])  # 2 items: one read
    with pytest.raises(ValueError, match="short_views"):
        ItemHeadScorer(folder, titles, base=model_path, short_views=(0,))


def test_training_in_bfloat16_is_another_model_that_learns(tmp_path, model_path, monkeypatch, caplog):
    """``train_dtype="bfloat16"`` trains under autocast: its own key and folder, the dtype in the manifest's
    config, a finite loss, and an adapter that differs from the float32 run's on the same windows. On a CPU
    that only emulates bfloat16 (here: made to look like one) the bfloat16 run warns that float32 is faster;
    the float32 run does not."""
    import logging

    from safetensors.torch import load_file

    import agent._itemhead_tune as tune_mod

    monkeypatch.setattr(tune_mod, "default_dtype", lambda device="auto": "float32")
    with caplog.at_level(logging.WARNING, logger="agent._itemhead_tune"):
        f32 = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False, device="cpu")
        assert "no native bfloat16" not in caplog.text
        b16 = tune_item_head(SEQS, ITEMS, [], TINY.model_copy(update={"train_dtype": "bfloat16"}),
                             base=model_path, home=tmp_path, progress=False, device="cpu")
    assert "no native bfloat16" in caplog.text and "--train-dtype float32" in caplog.text
    assert b16 != f32
    manifest = json.loads((b16 / "manifest.json").read_text())
    assert manifest["config"]["train_dtype"] == "bfloat16" and np.isfinite(manifest["train"]["loss_last50"])
    a, b = (load_file(str(f / "adapter_model.safetensors")) for f in (f32, b16))
    assert a.keys() == b.keys() and any(not (a[k] == b[k]).all() for k in a)


def test_best_f1_set_weighs_set_size_against_hits():
    from agent import best_f1_set

    # one-genre films, all Drama: stating Drama alone scores F1 1 (a second label halves precision)
    labels, f1 = best_f1_set([frozenset({"Drama"})] * 3, [1.0, 1.0, 1.0], 3)
    assert (labels, f1) == (["Drama"], pytest.approx(1.0))
    # half Drama, half Comedy: {Drama, Comedy} scores 2/3 on each, one label only 1/2 on average
    labels, f1 = best_f1_set([frozenset({"Drama"}), frozenset({"Comedy"})], [1.0, 1.0], 3)
    assert sorted(labels) == ["Comedy", "Drama"] and f1 == pytest.approx(2 / 3)
    # weights count: a heavy Drama row makes Drama alone the best (0.9 vs 2/3)
    labels, f1 = best_f1_set([frozenset({"Drama"}), frozenset({"Comedy"})], [9.0, 1.0], 3)
    assert labels == ["Drama"] and f1 == pytest.approx(0.9)
    # at most max_labels, drawn from the top_categories heaviest
    rows = [frozenset({c}) for c in "ABCDE"]
    labels, _ = best_f1_set(rows, [5.0, 4.0, 3.0, 2.0, 1.0], 2, top_categories=3)
    assert len(labels) <= 2 and set(labels) <= {"A", "B", "C"}
    assert best_f1_set([], [], 3) == ([], 0.0)
    with pytest.raises(ValueError, match="weights"):
        best_f1_set([frozenset({"A"})], [], 3)


def test_residual_training_adds_the_callers_offsets_before_the_loss(tmp_path, model_path):
    """``config.residual`` with ``offsets``: the callable is asked for every window's prefixes (the user's own
    training items, no held-out item), its logits are added to the head's before the loss (an oracle offset
    on each true next item leaves nothing to learn: loss ~0), and the run is another model than a plain one.
    Either half without the other is refused."""
    residual = TINY.model_copy(update={"residual": "oracle"})
    with pytest.raises(ValueError, match="residual"):
        tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False,
                       offsets=lambda u, s: np.zeros((len(s), len(ITEMS))))
    with pytest.raises(ValueError, match="residual"):
        tune_item_head(SEQS, ITEMS, [], residual, base=model_path, home=tmp_path, progress=False)
    calls = []

    def oracle(user, seq):
        calls.append((user, list(seq)))
        own = [INDEX[i] for i in SEQS[user]]
        start = next(s for s in range(len(own)) if own[s:s + len(seq)] == list(seq))
        out = np.zeros((len(seq), len(ITEMS)))
        out[np.arange(len(seq)), own[start + 1:start + len(seq) + 1]] = 50.0
        return out

    plain = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    folder = tune_item_head(SEQS, ITEMS, [], residual, base=model_path, home=tmp_path,
                            progress=False, offsets=oracle)
    assert folder != plain and len(calls) == TINY.max_windows
    assert all(len(s) == TINY.window - 1 for _, s in calls)
    loss = {f: json.loads((f / "manifest.json").read_text())["train"]["loss_last50"] for f in (plain, folder)}
    assert loss[folder] < 0.01 < 1.0 < loss[plain]
    assert json.loads((folder / "manifest.json").read_text())["config"]["residual"] == "oracle"
    # found again by its key without the offsets (scoring never needs them)
    assert find_item_head(SEQS, ITEMS, [], residual, base=model_path, home=tmp_path) == folder
    with pytest.raises(ValueError, match="shape"):
        tune_item_head(SEQS, ITEMS, [], residual.model_copy(update={"seed": 1}), base=model_path, home=tmp_path,
                       progress=False, offsets=lambda u, s: np.zeros((len(s), 3)))


def test_the_heads_starting_vectors_are_computed_once_per_base_and_catalogue(tmp_path, model_path, monkeypatch):
    """Each title read alone by the base model starts the head; another config on the same base and catalogue
    reuses those vectors (kept under the models folder) instead of reading the catalogue again."""
    import torch

    from agent import _itemhead

    first = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    kept = list((tmp_path / "models" / ".item-head-init").glob("*.pt"))
    assert len(kept) == 1 and torch.load(kept[0]).shape[0] == len(ITEMS)

    def refuse(self, progress=False):
        raise AssertionError("the catalogue was read again")

    monkeypatch.setattr(_itemhead._Backbone, "init_head", refuse)
    second = tune_item_head(SEQS, ITEMS, [], TINY.model_copy(update={"seed": 1}), base=model_path, home=tmp_path,
                            progress=False)
    assert second != first and (second / "manifest.json").exists()
    renamed = [it.model_copy(update={"title": it.title + " II"}) for it in ITEMS]
    with pytest.raises(AssertionError, match="read again"):  # other titles: other vectors
        tune_item_head(SEQS, renamed, [], TINY, base=model_path, home=tmp_path, progress=False)


RATES = {u: [1 + (k * (int(u[1:]) + 2)) % 5 for k in range(len(seq))] for u, seq in SEQS.items()}


def test_rated_windows_carry_each_items_rating_and_refuse_a_mismatch():
    cfg = ItemHeadConfig(window=4, min_history=1, windows_per_user=2, epochs=1, ratings=True)
    wins = training_windows(SEQS, INDEX, cfg, ratings=RATES)
    plain = training_windows(SEQS, INDEX, cfg.model_copy(update={"ratings": False}))
    assert [(u, w) for u, w, _ in wins] == plain  # the same windows, in the same seeded order
    for u, seq in SEQS.items():  # each window's ratings are its own items' (newest first, back to back)
        idx = [INDEX[i] for i in seq]
        assert sorted((tuple(w), tuple(r)) for uu, w, r in wins if uu == u) == sorted(
            [(tuple(idx[-4:]), tuple(RATES[u][-4:])), (tuple(idx[-8:-4]), tuple(RATES[u][-8:-4]))])
    with pytest.raises(TuneDataError, match="needs every sequence's ratings"):
        training_windows(SEQS, INDEX, cfg)
    with pytest.raises(TuneDataError, match="without them"):
        training_windows(SEQS, INDEX, cfg.model_copy(update={"ratings": False}), ratings=RATES)
    with pytest.raises(TuneDataError, match="ratings for"):
        training_windows(SEQS, INDEX, cfg, ratings={**RATES, "u1": RATES["u1"][:-1]})
    with pytest.raises(TuneDataError, match="finite"):
        training_windows(SEQS, INDEX, cfg, ratings={**RATES, "u1": [float("nan")] * len(SEQS["u1"])})
    # held-out items are refused as for a plain head
    with pytest.raises(TuneDataError, match="forbidden"):
        training_windows(SEQS, INDEX, cfg, forbidden=[("u1", SEQS["u1"][-1])], ratings=RATES)


def test_rating_levels_round_and_clip_to_the_five_shown():
    from agent import rating_level

    assert [rating_level(x) for x in (0, 1, 2.4, 2.6, 5, 9)] == [1, 1, 2, 3, 5, 5]


def test_a_rated_head_reads_the_ratings_it_trained_on(tmp_path, model_path):
    """A tiny real run with ratings in the history lines: another model than the plain one (key and data
    fingerprint), whose scores move when only a rating changes; the scorer refuses a history without its
    ratings, and an unrated head refuses ratings."""
    rated = TINY.model_copy(update={"ratings": True})
    with pytest.raises(TuneDataError, match="ratings"):
        tune_item_head(SEQS, ITEMS, [], rated, base=model_path, home=tmp_path, progress=False)
    folder = tune_item_head(SEQS, ITEMS, [], rated, base=model_path, home=tmp_path, progress=False, ratings=RATES)
    plain = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    assert folder != plain
    m, mp = (json.loads((f / "manifest.json").read_text()) for f in (folder, plain))
    assert m["config"]["ratings"] is True and m["data"]["fingerprint"] != mp["data"]["fingerprint"]
    other = {u: [6 - r for r in rs] for u, rs in RATES.items()}  # same windows, other ratings: other data
    assert find_item_head(SEQS, ITEMS, [], rated, base=model_path, home=tmp_path, ratings=other) is None
    assert find_item_head(SEQS, ITEMS, [], rated, base=model_path, home=tmp_path, ratings=RATES) == folder

    titles = {it.item_id: it.title for it in ITEMS}
    scorer = ItemHeadScorer(folder, titles, base=model_path, dtype="float32")
    hist = SEQS["u0"][:5]
    a = scorer.scores([hist], ratings=[[5, 5, 5, 5, 5]])
    b = scorer.scores([hist], ratings=[[5, 5, 5, 5, 1]])
    assert a.shape == (1, len(ITEMS)) and np.isfinite(a).all() and not np.allclose(a, b)
    np.testing.assert_allclose(a, scorer.scores([hist], ratings=[[4.8, 5, 5, 5, 5]]))  # shown as 5/5
    # unknown items are dropped with their ratings
    np.testing.assert_allclose(b, scorer.scores([[*hist[:2], "zzz", *hist[2:]]], ratings=[[5, 5, 3, 5, 5, 1]]))
    with pytest.raises(ValueError, match="reads ratings"):
        scorer.scores([hist])
    with pytest.raises(ValueError, match="4 ratings for 5 items"):
        scorer.scores([hist], ratings=[[5, 5, 5, 5]])
    with pytest.raises(ValueError, match="not yet a candidate source"):
        CatalogScores(scorer, [it.item_id for it in ITEMS]).score_histories(["u0"], [hist], [None])
    unrated = ItemHeadScorer(plain, titles, base=model_path, dtype="float32")
    with pytest.raises(ValueError, match="without ratings"):
        unrated.scores([hist], ratings=[[5] * 5])


def test_the_emulated_bfloat16_warning_is_for_cpu_bfloat16_training_without_native_support():
    from agent._itemhead_tune import emulated_bf16_warning

    assert emulated_bf16_warning("cpu", "bfloat16", "float32")
    assert emulated_bf16_warning("cpu", "bfloat16", "bfloat16") is None  # AVX512-BF16 / AMX
    assert emulated_bf16_warning("cpu", "float32", "float32") is None
    assert emulated_bf16_warning("cuda", "bfloat16", "float32") is None


def test_the_trunk_cache_serves_the_second_epoch_and_changes_nothing(tmp_path, model_path, monkeypatch, caplog):
    """Windows repeat from the second epoch on: their frozen lower layers' output is kept and only the tuned
    layers run; the model is the run without the cache, bit for bit, and a cache whose reads would differ turns
    itself off."""
    from safetensors.numpy import load_file

    from agent._itemhead_trunk import _TrunkCache

    two = TINY.model_copy(update={"max_windows": None})  # two epochs of the same four windows
    cached = tune_item_head(SEQS, ITEMS, [], two, base=model_path, home=tmp_path / "a", progress=False)
    plain = tune_item_head(SEQS, ITEMS, [], two, base=model_path, home=tmp_path / "b", progress=False,
                           trunk_cache_gib=0)
    assert cached.name == plain.name  # not part of the key: the same model

    def train_facts(folder):
        return json.loads((folder / "manifest.json").read_text())["train"]

    assert train_facts(cached)["windows"] == 8
    assert train_facts(cached)["trunk_cache_this_run"]["hits"] == 4
    assert train_facts(cached)["trunk_cache_this_run"]["peak_gib"] > 0
    assert train_facts(plain)["trunk_cache_this_run"] is None

    def same(a, b):
        for name in ("item_head.safetensors", "adapter_model.safetensors"):
            x, y = load_file(str(a / name)), load_file(str(b / name))
            assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), name

    same(cached, plain)

    # reads that would differ from the whole forward pass: the cache turns off, and the model is still the same
    real = _TrunkCache.from_trunk
    monkeypatch.setattr(_TrunkCache, "from_trunk", lambda self, trunk, ends, seq: real(self, trunk, ends, seq) + 1e-3)
    with caplog.at_level("WARNING", logger="agent._itemhead_tune"):
        off = tune_item_head(SEQS, ITEMS, [], two, base=model_path, home=tmp_path / "c", progress=False)
    assert "trunk cache is off" in caplog.text
    assert train_facts(off)["trunk_cache_this_run"] is None
    same(off, plain)
    with pytest.raises(ValueError, match="trunk_cache_gib"):
        tune_item_head(SEQS, ITEMS, [], two, base=model_path, home=tmp_path / "d", progress=False, trunk_cache_gib=-1)


def test_item_ids_are_learnt_beside_the_titles_served_as_trained_and_keep_the_trunk_cache(tmp_path, model_path):
    """A head with item ID vectors (``ItemHeadConfig.item_ids``): another key; the vectors start at zero and
    learn; the scorer adds them where training did (its logits equal the trained head's on the same read, and
    move when the vectors are zeroed); two epochs with the trunk cache equal two without, bit for bit."""
    import torch
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import load_file

    from agent._itemhead_tune import _head_module

    ids = TINY.model_copy(update={"item_ids": True, "max_windows": None})
    plain = TINY.model_copy(update={"max_windows": None})
    assert item_head_key("b", "d", ids) != item_head_key("b", "d", plain)
    assert item_head_key("b", "d", ids) != item_head_key("b", "d", ids.model_copy(update={"id_scale": 8.0}))
    cached = tune_item_head(SEQS, ITEMS, [], ids, base=model_path, home=tmp_path / "a", progress=False)
    uncached = tune_item_head(SEQS, ITEMS, [], ids, base=model_path, home=tmp_path / "b", progress=False,
                              trunk_cache_gib=0)
    assert cached.name == uncached.name
    assert json.loads((cached / "manifest.json").read_text())["train"]["trunk_cache_this_run"]["hits"] == 4
    for name in ("item_head.safetensors", "adapter_model.safetensors"):
        x, y = load_np(str(cached / name)), load_np(str(uncached / name))
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), name
    st = load_file(str(cached / "item_head.safetensors"))
    read = sorted({j for w in training_windows(SEQS, INDEX, ids) for j in w[1][:-1]})  # a window's last: target
    unread = sorted(set(range(len(ITEMS))) - set(read))
    assert st["ids"].shape == st["emb"].shape
    assert (st["ids"][read].float().abs().sum(1) > 0).all()  # every item read in a window moved
    assert unread and (st["ids"][unread] == 0).all()  # the others stay at zero

    titles = {it.item_id: it.title for it in ITEMS}
    scorer = ItemHeadScorer(cached, titles, base=model_path, dtype="float32")
    hist = SEQS["u2"][:6]
    s = scorer.scores([hist])[0]
    head = _head_module(torch.zeros(len(ITEMS), st["emb"].shape[1]), np.zeros(len(ITEMS)), standardize=False,
                        item_ids=True)
    head.load_state_dict({k: v.float() for k, v in st.items()})
    with torch.no_grad():
        h = scorer.backbone.states([INDEX[i] for i in hist])[-1]
        np.testing.assert_allclose(s, head(h[None])[0].numpy(), rtol=1e-4, atol=1e-4)
        table, _ = scorer.backbone._ids
        table.zero_()  # the same model without its ID vectors reads otherwise
        assert not np.allclose(s, scorer._logits(tuple(INDEX[i] for i in hist)), atol=1e-4)


def _cumulative_mean_branch(dim: int = 4):  # noqa: ANN202
    """A tiny causal sequence branch: state j = the mean of the item vectors of positions 0..j."""
    import torch

    class Branch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(3)
            self.emb = torch.nn.Embedding(len(ITEMS), dim)

        def forward(self, seq):  # noqa: ANN001, ANN202
            return self.emb(seq).cumsum(0) / torch.arange(1, len(seq) + 1)[:, None]

    return Branch()


def test_a_sequence_branch_trains_jointly_and_is_served_as_trained(tmp_path, model_path):
    """``ItemHeadConfig.branch`` with a module: another key; the head's projection of the branch's states
    starts at zero and learns, so do the branch's own weights, which are saved with the model; the scorer needs a
    module of the branch's architecture (and refuses one for a plain head), loads the trained weights into it,
    and its logits are the trained head's on the LLM's state plus the branch's."""
    import torch
    from safetensors.torch import load_file

    from agent._itemhead_tune import _head_module

    cfg = TINY.model_copy(update={"branch": "cummean-test", "max_windows": None})
    assert item_head_key("b", "d", cfg) != item_head_key("b", "d", TINY.model_copy(update={"max_windows": None}))
    assert item_head_key("b", "d", cfg) != item_head_key("b", "d", cfg.model_copy(update={"branch": "other"}))
    with pytest.raises(ValueError, match="branch"):
        tune_item_head(SEQS, ITEMS, [], cfg, base=model_path, home=tmp_path, progress=False)
    with pytest.raises(ValueError, match="branch"):
        tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False,
                       branch=_cumulative_mean_branch())
    start = _cumulative_mean_branch().emb.weight.detach().clone()
    folder = tune_item_head(SEQS, ITEMS, [], cfg, base=model_path, home=tmp_path, progress=False,
                            branch=_cumulative_mean_branch())
    st = load_file(str(folder / "item_head.safetensors"))
    trained = load_file(str(folder / "branch.safetensors"))
    assert st["fuse"].shape == (st["emb"].shape[1], 4) and st["fuse"].float().abs().sum() > 0
    assert not torch.allclose(trained["emb.weight"], start)

    titles = {it.item_id: it.title for it in ITEMS}
    with pytest.raises(ValueError, match="sequence branch"):
        ItemHeadScorer(folder, titles, base=model_path, dtype="float32")
    plain = tune_item_head(SEQS, ITEMS, [], TINY, base=model_path, home=tmp_path, progress=False)
    with pytest.raises(ValueError, match="without a sequence branch"):
        ItemHeadScorer(plain, titles, base=model_path, dtype="float32", branch=_cumulative_mean_branch())
    scorer = ItemHeadScorer(folder, titles, base=model_path, dtype="float32", branch=_cumulative_mean_branch())
    assert torch.equal(scorer.branch.emb.weight, trained["emb.weight"])
    hist = SEQS["u1"][:6]
    seq = torch.tensor([INDEX[i] for i in hist])
    s = scorer.scores([hist])[0]
    head = _head_module(torch.zeros(len(ITEMS), st["emb"].shape[1]), np.zeros(len(ITEMS)), standardize=False,
                        branch_dim=4)
    head.load_state_dict({k: v.float() for k, v in st.items()})
    with torch.no_grad():
        h = scorer.backbone.states(seq.tolist())[-1]
        b = scorer.branch(seq)[-1]
        np.testing.assert_allclose(s, head(h[None], b[None])[0].numpy(), rtol=1e-4, atol=1e-4)
        assert not np.allclose(s, head(h[None])[0].numpy(), atol=1e-3)  # the branch moves the scores
