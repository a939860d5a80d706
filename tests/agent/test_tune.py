"""Tuning: a tiny real LoRA run, resumable, cached under its key with a manifest, served by vLLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent import (
    LETTERS,
    CatalogItem,
    TuneConfig,
    TuneDataConfig,
    build_examples,
    make_engine,
    tune_model,
    tuned_info,
)

GENRES = ("Action", "Comedy", "Drama", "Horror", "Sci-Fi")
DATA = TuneDataConfig(positions_per_user=2, min_history=3, history_items=2, n_candidates=4)
TINY = TuneConfig(rank=2, alpha=4.0, top_layers=1, batch_size=2, max_steps=2, learning_rate=5e-2,
                  warmup_steps=0, checkpoint_every=1)


def _examples():
    cat = [CatalogItem(item_id=f"m{i}", title=f"Film {i}", categories=(GENRES[i % 5],)) for i in range(30)]
    seqs = {f"u{u}": [f"m{(u + 2 * k) % 30}" for k in range(8)] for u in range(4)}
    return build_examples(seqs, cat, [], DATA)


def _letter_probs(folder, prompts, n):
    """The tuned folder's letter probabilities computed with transformers (float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    ids = [tok.encode(" " + x, add_special_tokens=False)[0] for x in LETTERS[:n]]
    out = []
    with torch.no_grad():
        for p in prompts:
            logits = model(**tok(p, return_tensors="pt"), logits_to_keep=1).logits[0, -1, ids]
            out.append(torch.softmax(logits.float(), -1).numpy())
    return np.asarray(out)


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint(tmp_path, model_path):
    from agent._tune import train_lora

    ex = _examples()
    first = train_lora(ex, model_path, TINY, tmp_path / "work", progress=False)
    assert first["steps"] == 2 and (tmp_path / "work" / "checkpoint.pt").exists()
    again = train_lora(ex, model_path, TINY, tmp_path / "work", progress=False)
    assert again["steps"] == 2 and again["s_per_example"] is None  # nothing left to train: resumed at the end


@pytest.mark.engine
def test_tiny_tuning_run_end_to_end_through_vllm(tmp_path, model_path):
    ex = _examples()
    folder = tune_model(ex, DATA, TINY, base=model_path, home=tmp_path, progress=False)
    assert folder.parent == tmp_path / "models" and folder.name.startswith(f"{model_path.name}-tuned-")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["data"]["examples"] == len(ex) and manifest["config"]["rank"] == 2
    assert manifest["base"]["name"] == model_path.name and manifest["train"]["steps"] == 2
    assert "model.safetensors" in manifest["files"]
    adapter = folder / "adapter" / "adapter_model.safetensors"
    assert adapter.stat().st_size < 2_000_000
    # the same inputs reuse the cached folder without training again
    created = manifest["created"]
    assert tune_model(ex, DATA, TINY, base=model_path, home=tmp_path, progress=False) == folder
    assert json.loads((folder / "manifest.json").read_text())["created"] == created

    prompts = [e.prompt for e in ex[:3]]
    # started in the background (as the main job starts it) while transformers computes the reference
    tuned = make_engine(model=str(folder), dtype="float32", background=True)
    try:
        reference = _letter_probs(folder, prompts, 4)
        served = np.asarray([s.probs for s in tuned.score_choices(prompts, LETTERS[:4])])
        assert tuned.started and tuned.start_seconds is not None and tuned.model_name == str(folder)
    finally:
        tuned.close()
    # vLLM serves what was trained: its letter probabilities equal transformers' on the merged weights
    np.testing.assert_allclose(served, reference, atol=2e-3)
    # and the tuning changed the model
    assert np.abs(served - _letter_probs(model_path, prompts, 4)).max() > 1e-2
    info = tuned_info(folder)
    assert info is not None and info["key"] == manifest["key"] and info["template"] == "rank_short"
    assert tuned_info(model_path) is None
