"""core: the error root every package builds on, and the shared popularity count and top-k."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core
from core import TideError, item_counts, top_k


def test_every_name_in_all_is_importable() -> None:
    assert len(set(core.__all__)) == len(core.__all__)
    for name in core.__all__:
        assert getattr(core, name) is not None, name


@pytest.mark.parametrize(
    ("package", "root"),
    [("memory", "MemoryStoreError"), ("prompts", "PromptError"), ("agent", "AgentError"), ("eval", "EvalError")],
)
def test_one_error_root_for_every_package(package: str, root: str) -> None:
    module = importlib.import_module(package)
    assert issubclass(getattr(module, root), TideError)
    # packages that re-export the root re-export the same class, not a copy
    assert getattr(module, "TideError", TideError) is TideError


def test_import_is_light_and_standalone() -> None:
    code = ("import sys, core; print(sorted(m for m in ('memory', 'agent', 'eval', 'prompts', 'torch', 'faiss')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(core.__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def _brute_top_k(scores: np.ndarray, k: int | None, exclude: set[int]) -> list[int]:
    keep = [c for c in range(len(scores)) if c not in exclude and np.isfinite(scores[c])]
    keep.sort(key=lambda c: (-scores[c], c))  # best first, ties by column order
    return keep if k is None else keep[:k]


def test_top_k_matches_brute_force_with_ties_and_exclusions() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        scores = rng.integers(0, 5, size=n).astype(np.float32)  # many ties
        scores[rng.random(n) < 0.1] = -np.inf
        scores[rng.random(n) < 0.05] = np.nan
        exclude = {int(c) for c in rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False)}
        k = None if rng.random() < 0.2 else int(rng.integers(0, n + 3))
        got = top_k(scores, k, exclude=exclude)
        assert got.tolist() == _brute_top_k(scores, k, exclude)


def test_top_k_leaves_the_scores_alone() -> None:
    scores = np.array([0.5, 2.0, 1.0])
    assert top_k(scores, 2, exclude=[1]).tolist() == [2, 0]
    assert scores.tolist() == [0.5, 2.0, 1.0]


def test_item_counts_counts_catalogue_items_and_ignores_others() -> None:
    index = {"a": 0, "b": 1, "c": 2}
    counts = item_counts([["a", "b", "a"], ["x", "a"], []], index)
    assert counts.dtype == np.float64 and counts.tolist() == [3.0, 1.0, 0.0]
    assert item_counts([], {}).shape == (0,)
