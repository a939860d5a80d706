from __future__ import annotations

import numpy as np
import pytest

from eval import EvalError, leave_one_out
from eval._itemfeatures import ItemFeatures, cached_vectors, catalogue_fingerprint, item_texts


class _Counting:
    """A fake vector function: deterministic vectors from the text, counting its calls."""

    def __init__(self, dim: int = 4) -> None:
        self.calls = 0
        self.dim = dim

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t) + j for j in range(self.dim)] for t in texts], dtype=np.float32)


def _get(texts, fn, tmp_path, model="m1", catalogue=None):
    cat = catalogue or catalogue_fingerprint([str(i) for i in range(len(texts))], texts)
    return cached_vectors(texts, fn, model_fingerprint=model, catalogue=cat, cache_dir=tmp_path, source="llm-x")


def test_cache_hit_then_invalidated_by_model_or_catalogue(tmp_path) -> None:
    fn = _Counting()
    texts = ["a", "bb", "ccc"]
    first, hit1 = _get(texts, fn, tmp_path)
    again, hit2 = _get(texts, fn, tmp_path)
    assert (hit1, hit2, fn.calls) == (False, True, 1)
    np.testing.assert_array_equal(first, again)
    _, hit3 = _get(texts, fn, tmp_path, model="m2")  # new model fingerprint
    assert not hit3 and fn.calls == 2
    assert len(list((tmp_path / "llm-x").glob("*.npy"))) == 1  # the old model's vectors were removed
    changed = ["a", "bb", "cccc"]  # one item's text changed: new catalogue fingerprint
    vec, hit4 = _get(changed, fn, tmp_path, model="m2")
    assert not hit4 and fn.calls == 3 and vec[2, 0] == 4
    _, hit5 = _get(texts, fn, tmp_path, model="m1")  # going back recomputes: the stale file is gone
    assert not hit5 and fn.calls == 4


def test_corrupt_cache_is_recomputed_and_bad_vectors_rejected(tmp_path) -> None:
    fn = _Counting()
    texts = ["a", "bb"]
    _get(texts, fn, tmp_path)
    (npy,) = (tmp_path / "llm-x").glob("*.npy")
    npy.write_bytes(b"not an array")
    vec, hit = _get(texts, fn, tmp_path)
    assert not hit and fn.calls == 2 and vec.shape == (2, 4)
    with pytest.raises(EvalError):
        _get(texts, lambda t: np.zeros((1, 4)), tmp_path, model="m3")
    with pytest.raises(EvalError):
        _get(texts, lambda t: np.full((2, 4), np.nan), tmp_path, model="m4")


def test_catalogue_fingerprint_sees_ids_and_texts() -> None:
    base = catalogue_fingerprint(["1", "2"], ["a", "b"])
    assert base != catalogue_fingerprint(["1", "3"], ["a", "b"])
    assert base != catalogue_fingerprint(["1", "2"], ["a", "c"])
    assert base == catalogue_fingerprint(["1", "2"], ["a", "b"])


def test_matrix_follows_requested_order_and_is_centred(sequential_synthetic) -> None:
    dataset, _ = sequential_synthetic
    ids = dataset.item_ids
    rng = np.random.default_rng(0)
    feats = ItemFeatures("text", tuple(ids), rng.normal(size=(len(ids), 6)).astype(np.float32) + 5.0)
    m = feats.matrix(ids)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)
    assert abs(float(m.sum(axis=0).max())) < len(ids)  # the shared +5 offset is gone
    rev = feats.matrix(ids[::-1])
    np.testing.assert_array_equal(rev, m[::-1])
    with pytest.raises(EvalError):
        feats.matrix([*ids, "unknown"])


def test_packaged_embedder_vectors_feed_a_model(sequential_synthetic) -> None:
    from memory import SentenceTransformerEmbedder

    dataset, _ = sequential_synthetic
    feats = ItemFeatures.from_embedder(dataset, SentenceTransformerEmbedder.from_package())
    assert feats.vectors.shape == (len(dataset.items), 384)
    assert item_texts(dataset)[0].startswith("Watched")
    split = leave_one_out(dataset)
    assert feats.matrix(split.item_ids).shape == (len(split.item_ids), 384)


@pytest.mark.engine
def test_vllm_pooling_gives_mean_pooled_vectors_of_the_embedded_model() -> None:
    from agent import ensure_model
    from eval._itemfeatures import llm_vectors_vllm

    texts = ['Watched "Toy Story" (1995; Animation, Comedy).', 'Watched "Heat" (1995; Action, Crime).']
    vec = llm_vectors_vllm(ensure_model(), texts)
    assert vec.shape[0] == 2 and vec.shape[1] >= 64 and np.isfinite(vec).all()
    assert not np.allclose(vec[0], vec[1])
