"""scripts/gpu_bundle.py: a GGUF's quantised tensors cut in two, the kept token rows, and the rebuild (real gguf)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")


def _tiny_gguf(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A GGUF with a Q8_0 token table (10 x 64), a Q8_0 projection and two F32 norms stored as 1 + w."""
    q8 = gguf.GGMLQuantizationType.Q8_0
    w = gguf.GGUFWriter(str(path), "gemma3")
    plain = {"token_embd.weight": rng.normal(size=(10, 64)).astype(np.float32),
             "blk.0.attn_q.weight": rng.normal(size=(32, 64)).astype(np.float32),
             "blk.0.attn_norm.weight": rng.normal(size=64).astype(np.float32),
             "output_norm.weight": rng.normal(size=64).astype(np.float32)}
    for name, x in plain.items():
        if x.ndim == 2:
            w.add_tensor(name, gguf.quants.quantize(x, q8), raw_dtype=q8)
        else:
            w.add_tensor(name, x + np.float32(1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return plain


def test_rebuild_equals_the_dequantised_gguf(tmp_path, script):
    mod = script("gpu_bundle")
    plain = _tiny_gguf(tmp_path / "m.gguf", np.random.default_rng(0))
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    want = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}
    ids = [1, 3, 7]
    layer_bytes = mod.pack_gguf(tmp_path / "m.gguf", ids, tmp_path / "bundle", split_bytes=1000)
    # the cut lands inside a tensor, and the token table is not among the layer bytes
    assert (tmp_path / "bundle" / "a" / "layers.bin").stat().st_size == 1000
    assert layer_bytes == 1000 + (tmp_path / "bundle" / "b" / "layers.bin").stat().st_size
    got = mod.rebuild(tmp_path / "bundle")
    assert sorted(got) == sorted(mod.hf_name(n) for n in plain)
    q = got["model.layers.0.self_attn.q_proj.weight"].numpy()
    np.testing.assert_array_equal(q, want["blk.0.attn_q.weight"].reshape(32, 64))
    # llama.cpp's 1 + w on the norms is undone, exactly
    for name in ("blk.0.attn_norm.weight", "output_norm.weight"):
        np.testing.assert_array_equal(got[mod.hf_name(name)].numpy(), want[name] - np.float32(1))
    table = got["model.embed_tokens.weight"].numpy()
    assert table.shape == (10, 64)
    np.testing.assert_array_equal(table[ids], want["token_embd.weight"].reshape(10, 64)[ids])
    others = [i for i in range(10) if i not in ids]
    assert np.isnan(table[others]).all()  # a token outside the kept set poisons its row


def test_hf_names_cover_gemma_layer_tensors(script):
    mod = script("gpu_bundle")
    assert mod.hf_name("blk.11.ffn_norm.weight") == "model.layers.11.pre_feedforward_layernorm.weight"
    assert mod.hf_name("blk.0.post_ffw_norm.weight") == "model.layers.0.post_feedforward_layernorm.weight"
    assert mod.hf_name("blk.5.attn_output.weight") == "model.layers.5.self_attn.o_proj.weight"
    with pytest.raises(KeyError):
        mod.hf_name("blk.0.unknown.weight")
