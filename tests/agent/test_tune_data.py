"""The tuning-data builder: training data only, shuffled letters, the true item among the candidates."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from agent import (
    LETTERS,
    CatalogItem,
    TuneConfig,
    TuneDataConfig,
    TuneDataError,
    build_examples,
    data_fingerprint,
    ranked_examples,
    reorder,
    tune_key,
)

GENRES = ("Action", "Comedy", "Drama", "Horror", "Sci-Fi")


def _catalog(n: int = 80) -> list[CatalogItem]:
    return [CatalogItem(item_id=f"m{i}", title=f"Film {i} ({1980 + i % 20})",
                        categories=(GENRES[i % 5], GENRES[(i * 3 + 1) % 5])) for i in range(n)]


def _sequences(users: int = 30, length: int = 30, seed: int = 0) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(users):
        start = int(rng.integers(0, 80))
        # chains through the catalogue with some noise: transitions carry signal
        items = list(dict.fromkeys(f"m{(start + 3 * k + int(rng.integers(0, 2))) % 80}" for k in range(length)))
        out[f"u{u}"] = items
    return out


def test_examples_hold_the_true_item_and_only_training_history():
    seqs = _sequences()
    ex = build_examples(seqs, _catalog(), [], TuneDataConfig(positions_per_user=5, min_history=3))
    assert len(ex) == 5 * len(seqs)
    for e in ex:
        seq = seqs[e.user_id]
        assert e.candidates[e.target] == seq[e.position]  # the answer is the true next item
        assert len(e.candidates) == 20 and len(set(e.candidates)) == 20
        assert e.history == tuple(seq[: e.position][-TuneDataConfig().history_items:])  # items before the target
        assert not set(e.candidates) & set(seq[: e.position])  # consumed items are not candidates
        assert e.prompt.endswith("Answer:")
        assert f"{e.letter}: " in e.prompt


def test_true_letter_is_spread_over_positions():
    ex = build_examples(_sequences(users=60), _catalog(), [], TuneDataConfig(positions_per_user=10, min_history=3))
    counts = Counter(e.target for e in ex)
    # 600 examples over 20 letters: every letter used, none dominant (uniform: 30 each)
    assert set(counts) == set(range(20))
    assert max(counts.values()) < 0.12 * len(ex)


def test_refuses_forbidden_items_in_history_or_target():
    seqs = _sequences()
    held = {u: s[-1] for u, s in seqs.items()}
    with pytest.raises(TuneDataError, match="forbidden"):
        build_examples(seqs, _catalog(), list(held.items()), TuneDataConfig(positions_per_user=3))
    with pytest.raises(TuneDataError, match="forbidden"):
        build_examples(seqs, _catalog(), [seqs["u3"][2]], TuneDataConfig(positions_per_user=3))
    # without the held-out items the same pairs are accepted, and they never reach a candidate list
    train = {u: s[:-1] for u, s in seqs.items()}
    ex = build_examples(train, _catalog(), list(held.items()), TuneDataConfig(positions_per_user=3))
    for e in ex:
        assert held[e.user_id] not in e.candidates
        assert held[e.user_id] not in e.history


def test_unknown_item_is_refused():
    seqs = {"u1": ["m1", "m2", "m3", "zzz", "m4", "m5", "m6"]}
    with pytest.raises(TuneDataError, match="not in the catalogue"):
        build_examples(seqs, _catalog(), [], TuneDataConfig())


def test_seeded_and_fingerprinted():
    seqs, cat = _sequences(), _catalog()
    a = build_examples(seqs, cat, [], TuneDataConfig(positions_per_user=4, seed=1))
    b = build_examples(seqs, cat, [], TuneDataConfig(positions_per_user=4, seed=1))
    c = build_examples(seqs, cat, [], TuneDataConfig(positions_per_user=4, seed=2))
    assert data_fingerprint(a) == data_fingerprint(b)
    assert data_fingerprint(a) != data_fingerprint(c)


def test_ranked_examples_and_reorder():
    seqs, cat = _sequences(users=40), _catalog()
    train = {u: s[:-1] for u, s in seqs.items()}
    targets = {u: s[-1] for u, s in seqs.items()}
    ex, looked = ranked_examples(train, targets, cat, TuneDataConfig())
    assert looked == 40 and 0 < len(ex) <= 40
    e = ex[0]
    assert e.candidates[e.target] == targets[e.user_id]
    rev = reorder(e, list(range(20))[::-1])
    assert rev.candidates == e.candidates[::-1]
    assert rev.candidates[rev.target] == targets[e.user_id]
    lines = [line for line in rev.prompt.split("\n") if line[:2] in {f"{x}:" for x in LETTERS}]
    title = next(it.title for it in cat if it.item_id == e.candidates[-1])
    assert lines[0].startswith("A: ") and title in lines[0]


def test_cache_key_changes_with_base_data_and_config():
    k = tune_key("base1", "data1", TuneConfig(), TuneDataConfig())
    assert k == tune_key("base1", "data1", TuneConfig(), TuneDataConfig())
    assert k != tune_key("base2", "data1", TuneConfig(), TuneDataConfig())
    assert k != tune_key("base1", "data2", TuneConfig(), TuneDataConfig())
    assert k != tune_key("base1", "data1", TuneConfig(rank=8), TuneDataConfig())
    assert k != tune_key("base1", "data1", TuneConfig(), TuneDataConfig(history_items=7))
