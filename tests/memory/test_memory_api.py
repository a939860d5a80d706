"""The public surface: every exported name exists, the error tree is rooted at TideError, imports are light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import memory

ROOT = Path(memory.__file__).resolve().parent.parent


@pytest.mark.parametrize("name", memory.__all__)
def test_every_exported_name_exists(name):
    assert getattr(memory, name) is not None


def test_all_is_sorted_unique_and_has_the_contract():
    assert len(set(memory.__all__)) == len(memory.__all__)
    contract = {"Behavior", "Location", "MemoryStore", "MemoryConfig", "ScoringWeights", "StoredBehavior",
                "Retrieved", "Profile", "Embedder", "SentenceTransformerEmbedder", "TideError",
                "MemoryStoreError", "InvalidBehaviorError"}
    assert contract <= set(memory.__all__)


def test_error_tree():
    assert issubclass(memory.MemoryStoreError, memory.TideError)
    for cls in (memory.InvalidBehaviorError, memory.InvalidQueryError, memory.StoreLockedError,
                memory.EmbedderMismatchError):
        assert issubclass(cls, memory.MemoryStoreError)
    assert issubclass(memory.InvalidBehaviorError, ValueError)


def test_import_is_light():
    code = "import sys, memory; heavy = {'faiss', 'torch', 'sentence_transformers'} & set(sys.modules); print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "set()"


def test_embedder_is_real_and_normalised(embedder):
    assert isinstance(embedder, memory.Embedder)
    assert embedder.dim == 384 and "MiniLM" in embedder.name
    vecs = embedder.embed(["a space opera", "a film about spaceships", "a recipe for bread"])
    assert vecs.dtype.name == "float32" and vecs.shape == (3, 384)
    assert abs(float((vecs**2).sum(axis=1).max()) - 1.0) < 1e-5
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2]
    assert embedder.embed([]).shape == (0, 384)
