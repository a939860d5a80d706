"""In-process vLLM engine (``vllm.LLM``): the default engine, on CPU or GPU."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._engine import (
    ChoiceScores,
    Completion,
    GenerationRequest,
    normalise_choice_logprobs,
    render_messages,
)
from ._errors import EngineError, EngineUnavailableError

__all__ = ["VLLMEngine", "VLLMEngineConfig"]

log = logging.getLogger(__name__)

#: KV-cache size (GiB) for the CPU backend when the user has not set VLLM_CPU_KVCACHE_SPACE. vLLM's own
#: default (4 GiB) puts a 270M model's process near 9 GB peak; Tide's prompts are short (< 4k tokens), and
#: 2 GiB holds > 100 concurrent such sequences for the embedded model.
DEFAULT_CPU_KVCACHE_GIB = 2
#: dtype in which greedy output must equal transformers' float32 reference exactly
VERIFY_DTYPE = "float32"


class VLLMEngineConfig(BaseModel):
    """Settings of the in-process engine (printed with every result it produced)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="HF model folder or name; default: the prepared embedded model")
    #: None picks by hardware (``default_dtype``): bfloat16 on CUDA and on CPUs with native bf16 (AVX512-BF16
    #: / AMX), where it ran ~1.3x faster than float32 (bench/engine.py); float32 elsewhere: on an AVX2-only
    #: CPU bfloat16 is emulated and choice scoring ran 5.3x slower (docs/results/dtype-cmp.jsonl,
    #: `python -m bench.dtype`, 16 prompts of ~600 tokens: 12.3 s vs 2.3 s).
    #: Verification against the transformers reference uses float32.
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = None
    max_model_len: int = Field(default=4096, ge=256)
    #: eager mode skips torch.compile: engine start drops from minutes to under one on the CPU backend
    #: (bench/engine.py measures both); compiled mode pays off only for long-running jobs.
    enforce_eager: bool = True
    seed: int = 0
    gpu_memory_utilization: float = Field(default=0.5, gt=0.0, le=1.0)
    max_num_seqs: int = Field(default=64, ge=1)
    #: vLLM's CPU backend binds one core by default; "auto" binds all cores this process may use.
    cpu_threads: Literal["auto", "vllm"] | int = "auto"
    #: run vLLM's engine core and its worker inside this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``)
    #: instead of two child processes that each import torch and vLLM again. On the 2-core CPU: start 54 s
    #: instead of 94 s, prefill and decode ~9 % faster (``python -m bench.inprocess``). The worker then binds
    #: this process's OpenMP threads to the cores and freezes its GC heap, and its memory is freed only with
    #: the process: for one-engine jobs (``tide eval``), not for servers or test sessions that start several
    #: engines. CPU only; ignored on CUDA.
    in_process: bool = False


def default_dtype(device: Literal["auto", "cpu"] = "auto") -> Literal["float32", "bfloat16"]:
    """bfloat16 where the hardware computes it natively (CUDA; a CPU with AVX512-BF16 or AMX), else float32.
    ``device="cpu"``: for work that runs on the CPU even where a GPU is present (CPU flags only)."""
    if device == "auto" and _cuda_available():
        return "bfloat16"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: leave the choice to float32, always correct
        return "float32"
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "float32"


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch missing
        return False


def _configure_cpu_env(config: VLLMEngineConfig) -> None:
    """Set vLLM CPU-backend environment before the engine starts (they are read at start)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(DEFAULT_CPU_KVCACHE_GIB))
    if config.cpu_threads == "vllm" or "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
        return
    cores = sorted(os.sched_getaffinity(0))
    if isinstance(config.cpu_threads, int):
        cores = cores[: config.cpu_threads]
    # one contiguous list "0,1" — vLLM then runs its OpenMP pool on every listed core
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cores)


_MP_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


def _disable_vllm_env_cache() -> None:
    try:
        from vllm import envs

        envs.disable_envs_cache()
    except Exception as exc:  # pragma: no cover - an older vLLM without the cache
        log.debug("vllm env cache: %s", exc)


def import_vllm() -> Any:
    """Import vLLM (``vllm.LLM``; ~20 s on 2 cores the first time, nothing after).

    :func:`agent.make_engine` calls it in the caller's thread before starting an engine in the background:
    vLLM pulls in ``torch._dynamo`` and ``torch._inductor``, which import each other, and two threads
    importing them at once can meet a partly initialised module (seen: ``ImportError: cannot import name
    'IndentedBuffer'`` when a model fit's ``torch.optim`` imported ``torch._dynamo`` during the start).

    Raises:
        EngineUnavailableError: vLLM cannot be imported.
    """
    try:
        from vllm import LLM
    except Exception as exc:  # ImportError, or a broken CUDA-only torchvision on CPU
        raise EngineUnavailableError(
            f"vLLM cannot be imported ({type(exc).__name__}: {exc}); run scripts/setup.sh"
        ) from exc
    return LLM


class VLLMEngine:
    """Serve :class:`GenerationRequest` batches with an in-process ``vllm.LLM``.

    Build with :meth:`from_defaults` (the prepared embedded model) or :meth:`from_model` (any HF folder).
    The engine is seeded at construction: vLLM crashes a chunked-prefill batch when requests carry their
    own seeds, so per-request seeds are never sent.
    """

    def __init__(self, llm: Any, config: VLLMEngineConfig, start_seconds: float) -> None:
        self._llm = llm
        self.config = config
        self.start_seconds = start_seconds
        self._tokenizer = llm.get_tokenizer()
        self._label_ids: dict[str, int] = {}

    @classmethod
    def from_defaults(cls, **overrides: Any) -> VLLMEngine:
        """Start an engine on the embedded model (prepared on first use)."""
        from ._model import ensure_model

        path = ensure_model()
        return cls.from_model(str(path), **overrides)

    @classmethod
    def from_model(cls, model: str | Path, **overrides: Any) -> VLLMEngine:
        """Start an engine on a HF model folder or name.

        Raises:
            EngineUnavailableError: vLLM is not installed or the engine failed to start.
        """
        config = VLLMEngineConfig(model=str(model), **overrides)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        on_gpu = _cuda_available()
        if not on_gpu:
            _configure_cpu_env(config)
        LLM = import_vllm()  # noqa: N806 -- the class, as vLLM names it
        kwargs: dict[str, Any] = dict(
            model=config.model,
            dtype=config.dtype or default_dtype(),
            max_model_len=config.max_model_len,
            enforce_eager=config.enforce_eager,
            seed=config.seed,
            max_num_seqs=config.max_num_seqs,
            # disable_any_whitespace is only read from the engine-level config: without it a small model
            # can fill max_tokens with whitespace inside constrained JSON.
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        )
        if on_gpu:
            kwargs["gpu_memory_utilization"] = config.gpu_memory_utilization
        start = time.perf_counter()
        in_process = config.in_process and not on_gpu
        saved = os.environ.get(_MP_ENV)
        if in_process:
            os.environ[_MP_ENV] = "0"
        try:
            llm = LLM(**kwargs)
        except Exception as exc:
            raise EngineUnavailableError(f"vLLM engine failed to start on {config.model}: {exc}") from exc
        finally:
            if in_process:  # later engines of this process choose again (vLLM caches its env once started)
                if saved is None:
                    os.environ.pop(_MP_ENV, None)
                else:
                    os.environ[_MP_ENV] = saved
                _disable_vllm_env_cache()
        return cls(llm, config, time.perf_counter() - start)

    # -- LLMEngine ---------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.config.model

    @property
    def description(self) -> dict[str, Any]:
        return {"engine": "vllm", **self.config.model_dump(), "dtype": self.config.dtype or default_dtype()}

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def llm(self) -> Any:
        """The raw ``vllm.LLM`` this engine wraps (for benches that measure Tide against plain vLLM)."""
        return self._llm

    def prompt_text(self, request: GenerationRequest) -> str:
        if request.prompt is not None:
            return request.prompt
        assert request.messages is not None
        return render_messages(request.messages, self._tokenizer)

    def sampling_params(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=request.json_schema)
        elif request.choices is not None:
            structured = StructuredOutputsParams(choice=list(request.choices))
        return SamplingParams(
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            stop=list(request.stop) or None,
            logprobs=request.logprobs,
            structured_outputs=structured,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        if not requests:
            return []
        prompts = [self.prompt_text(r) for r in requests]
        params = [self.sampling_params(r) for r in requests]
        try:
            outputs = self._llm.generate(prompts, params, use_tqdm=False)
        except Exception as exc:
            raise EngineError(f"vLLM generate failed: {exc}") from exc
        result = []
        for out in outputs:
            o = out.outputs[0]
            lps = None
            if o.logprobs is not None:
                lps = [{lp.decoded_token or str(tid): lp.logprob for tid, lp in step.items()} for step in o.logprobs]
            result.append(
                Completion(
                    text=o.text,
                    finish_reason=o.finish_reason,
                    prompt_tokens=len(out.prompt_token_ids or ()),
                    completion_tokens=len(o.token_ids),
                    logprobs=lps,
                )
            )
        return result

    def label_token_ids(self, labels: Sequence[str]) -> list[int]:
        """Token id of each label as the next token after a prompt ending in ``":"`` (``" A"`` style).

        Raises:
            EngineError: a label is not one token, or two labels share a token.
        """
        ids = []
        for label in labels:
            if label not in self._label_ids:
                toks = self._tokenizer.encode(" " + label, add_special_tokens=False)
                if len(toks) != 1:
                    raise EngineError(f"choice label {label!r} is {len(toks)} tokens; labels must be one token")
                self._label_ids[label] = toks[0]
            ids.append(self._label_ids[label])
        if len(set(ids)) != len(ids):
            raise EngineError(f"choice labels {list(labels)} do not map to distinct tokens")
        return ids

    def score_choices(self, prompts: Sequence[str], labels: Sequence[str]) -> list[ChoiceScores]:
        from vllm import SamplingParams

        if not prompts:
            return []
        ids = self.label_token_ids(labels)
        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(ids), logprob_token_ids=ids)
        try:
            outputs = self._llm.generate(list(prompts), params, use_tqdm=False)
        except Exception as exc:
            raise EngineError(f"vLLM choice scoring failed: {exc}") from exc
        scores = []
        for out in outputs:
            step = out.outputs[0].logprobs[0]
            scores.append(
                normalise_choice_logprobs(
                    labels, [step[i].logprob if i in step else float("-inf") for i in ids]
                )
            )
        return scores

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None:
            return
        try:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
        except Exception as exc:  # pragma: no cover - best effort at shutdown
            log.debug("engine shutdown: %s", exc)
        del llm

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
