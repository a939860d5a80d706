"""Tune the embedded LLM as a re-ranker: LoRA on the letter answer, merged into a new cached model folder.

The training loss is read on the answer-letter token only, normalised over the candidates' letters (the
same verbalizer the engine's ``score_choices`` reads), with ``logits_to_keep=1`` so the 262k-token output
layer runs on one position. LoRA (``peft``) on every linear layer of the transformer; the merged weights
are saved as a plain HF folder that :meth:`agent.VLLMEngine.from_model` serves like the base model.

The result is cached under ``$TIDE_HOME/models/<base>-tuned-<key>/``; ``key`` hashes the base model's file
checksums, the training data's fingerprint and both configs, so any change trains a new model and the same
inputs reuse the folder. Training checkpoints every ``checkpoint_every`` steps into a work folder named by
the same key: a rerun after an interruption resumes where it stopped. ``manifest.json`` records the base,
data, configs, training facts, validation metrics (:func:`record_metrics`) and every file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ._errors import ModelPreparationError
from ._model import EMBEDDED_MODEL_NAME, MANIFEST, _sha256, load_manifest, model_dir, tide_home, verify_files
from ._tune_data import LETTERS, TEMPLATE, TuneDataConfig, TuneExample, data_fingerprint

__all__ = ["TuneConfig", "record_metrics", "train_lora", "tune_key", "tune_model", "tuned_dir", "tuned_info"]

log = logging.getLogger(__name__)

#: every linear layer of a Gemma/Llama/Qwen decoder block
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_CKPT = "checkpoint.pt"
_ADAPTER = "adapter"


class TuneConfig(BaseModel):
    """LoRA and optimiser settings (part of the tuned model's cache key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int = Field(default=16, ge=1, le=128)
    alpha: float = Field(default=32.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    targets: tuple[str, ...] = ALL_LINEAR
    #: adapt only the top this-many decoder layers (None: all). The layers below then run without
    #: autograd, which roughly halves a step's cost on a CPU (measured in docs/results/tune.md)
    top_layers: int | None = Field(default=6, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0, le=1e-1)
    weight_decay: float = Field(default=0.0, ge=0)
    epochs: int = Field(default=1, ge=1, le=50)
    #: examples per optimiser step (gradients accumulated one example at a time)
    batch_size: int = Field(default=8, ge=1, le=1024)
    #: stop after this many optimiser steps (None: the epochs decide)
    max_steps: int | None = Field(default=None, ge=1)
    warmup_steps: int = Field(default=10, ge=0)
    seed: int = 0
    #: float32 is exact; bfloat16 has no hardware support on many CPUs (measure before choosing)
    dtype: Literal["float32", "bfloat16"] = "float32"
    checkpoint_every: int = Field(default=5, ge=1)
    max_prompt_tokens: int = Field(default=1024, ge=32)


def _base_sha(base: Path) -> str:
    manifest = load_manifest(base)
    if manifest is None:
        raise ModelPreparationError(f"{base} has no {MANIFEST}; prepare the base model first", reason="manifest")
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()


def tune_key(base_sha: str, fingerprint: str, config: TuneConfig, data_config: TuneDataConfig) -> str:
    """12 hex digits naming a tuned model: base checksums + data fingerprint + both configs."""
    blob = json.dumps({"base": base_sha, "data": fingerprint, "tune": config.model_dump(mode="json"),
                       "examples": data_config.model_dump(mode="json"), "template": TEMPLATE},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def tuned_dir(key: str, home: Path | None = None, base_name: str = EMBEDDED_MODEL_NAME) -> Path:
    return (home or tide_home()) / "models" / f"{base_name}-tuned-{key}"


def _lr_at(step: int, config: TuneConfig) -> float:
    """Linear warm-up, then constant: the schedule does not depend on the total, so a run stopped after
    ``k`` steps (time budget) is exactly the run with ``max_steps=k``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    return config.learning_rate


def _order(n: int, config: TuneConfig) -> list[int]:
    """Example order over all epochs (seeded), so a resumed run continues the same sequence."""
    rng = np.random.default_rng(config.seed)
    return [int(i) for _ in range(config.epochs) for i in rng.permutation(n)]


def letter_ids(tokenizer: Any, n: int = len(LETTERS)) -> list[int]:
    ids = []
    for letter in LETTERS[:n]:
        toks = tokenizer.encode(" " + letter, add_special_tokens=False)
        if len(toks) != 1:
            raise ModelPreparationError(f"label {letter!r} is {len(toks)} tokens", reason="tokenizer")
        ids.append(toks[0])
    return ids


def train_lora(examples: Sequence[TuneExample], base: Path, config: TuneConfig, work: Path, *,
               progress: bool = True, log_file: Path | None = None,
               time_budget_s: float | None = None) -> dict[str, Any]:
    """Train a LoRA adapter on ``examples``; saves it to ``work/adapter`` and returns training facts.

    Resumes from ``work/checkpoint.pt`` when present (same examples and config: the caller keys ``work``).
    With ``time_budget_s``, stops at the first step past the budget (``facts["steps"]`` says where).
    """
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(config.seed)
    work.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=getattr(torch, config.dtype))
    model.config.use_cache = False
    n_layers = int(model.config.num_hidden_layers)
    layers = None if config.top_layers is None else list(range(max(0, n_layers - config.top_layers), n_layers))
    pm = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                          target_modules=list(config.targets), layers_to_transform=layers,
                                          bias="none", task_type="CAUSAL_LM"))
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    order = _order(len(examples), config)
    total = len(order) // config.batch_size
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    if total < 1:
        raise ModelPreparationError(f"{len(examples)} examples give no full step of {config.batch_size}",
                                    reason="tune-data")
    ids_all = letter_ids(tok)
    step, history = 0, []
    ckpt = work / _CKPT
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        set_peft_model_state_dict(pm, state["lora"])
        opt.load_state_dict(state["optimizer"])
        step, history = int(state["step"]), list(state["history"])
        log.info("resuming at step %d of %d", step, total)
    pm.train()
    bar = tqdm(total=total, initial=step, desc="tune", unit="step", disable=not progress)
    started = time.perf_counter()
    seen_here = 0
    logf = log_file.open("a") if log_file else None
    try:
        while step < total:
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, config)
            losses, correct = [], 0
            for k in order[step * config.batch_size:(step + 1) * config.batch_size]:
                ex = examples[k]
                enc = tok(ex.prompt, return_tensors="pt")
                if enc.input_ids.shape[1] > config.max_prompt_tokens:
                    raise ModelPreparationError(f"example prompt has {enc.input_ids.shape[1]} tokens > "
                                                f"{config.max_prompt_tokens}", reason="tune-data")
                out = pm(input_ids=enc.input_ids, attention_mask=enc.attention_mask, logits_to_keep=1)
                logits = out.logits[0, -1, ids_all[:len(ex.candidates)]].float()
                loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([ex.target]))
                (loss / config.batch_size).backward()
                losses.append(float(loss.detach()))
                correct += int(int(logits.argmax()) == ex.target)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen_here += config.batch_size
            history.append([float(np.mean(losses)), correct / config.batch_size])
            recent = np.asarray(history[-25:])
            bar.set_postfix(loss=f"{recent[:, 0].mean():.3f}", acc=f"{recent[:, 1].mean():.2f}")
            bar.update(1)
            out_of_time = time_budget_s is not None and time.perf_counter() - started > time_budget_s
            if step % config.checkpoint_every == 0 or step == total or out_of_time:
                spx = (time.perf_counter() - started) / seen_here
                tmp = work / (_CKPT + ".tmp")
                torch.save({"lora": get_peft_model_state_dict(pm), "optimizer": opt.state_dict(), "step": step,
                            "history": history}, tmp)
                os.replace(tmp, ckpt)
                if logf:
                    logf.write(json.dumps({"at": datetime.now(UTC).isoformat(), "step": step, "of": total,
                                           "loss25": round(float(recent[:, 0].mean()), 4),
                                           "acc25": round(float(recent[:, 1].mean()), 3),
                                           "s_per_example": round(spx, 3)}) + "\n")
                    logf.flush()
            if out_of_time:
                log.warning("time budget of %.0f s spent: stopping after step %d of %d", time_budget_s, step, total)
                break
    finally:
        bar.close()
        if logf:
            logf.close()
    seconds = time.perf_counter() - started
    pm.save_pretrained(str(work / _ADAPTER))
    h = np.asarray(history)
    return {"steps": step, "planned_steps": total, "examples_seen": step * config.batch_size,
            "seconds_this_run": round(seconds, 1),
            "s_per_example": round(seconds / max(1, seen_here), 3) if seen_here else None,
            "loss_first25": round(float(h[:25, 0].mean()), 4), "loss_last25": round(float(h[-25:, 0].mean()), 4),
            "acc_last25": round(float(h[-25:, 1].mean()), 3), "trainable_params": sum(p.numel() for p in params)}


def _merge(base: Path, adapter: Path, out: Path) -> None:
    """Base (float32) + adapter -> merged plain HF folder in ``out`` with the base's tokenizer files."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    for f in base.iterdir():
        if f.is_file() and not (out / f.name).exists() and f.name != MANIFEST and not f.name.endswith(
                (".safetensors", ".safetensors.index.json")):
            shutil.copy2(f, out / f.name)


def tune_model(examples: Sequence[TuneExample], data_config: TuneDataConfig, config: TuneConfig, *,
               base: Path | None = None, home: Path | None = None, progress: bool = True,
               log_file: Path | None = None, extra: dict[str, Any] | None = None,
               time_budget_s: float | None = None) -> Path:
    """Train (or reuse) the tuned model for these examples; returns its merged folder.

    ``examples`` must come from :func:`agent.build_examples` on training data only (it refuses forbidden
    items). ``extra`` is recorded in the manifest (e.g. the dataset and split it came from). A run stopped
    by ``time_budget_s`` after ``k`` steps is saved as the run with ``max_steps=k`` (same key, same model:
    the learning rate does not depend on the planned total), so ``--max-steps k`` reproduces it.
    """
    base = base or model_dir(home)
    base_sha = _base_sha(base)
    fingerprint = data_fingerprint(examples)
    key = tune_key(base_sha, fingerprint, config, data_config)
    target = tuned_dir(key, home, base.name)
    if target.exists():
        try:
            verify_files(target, checksums=False)
            return target
        except ModelPreparationError:
            shutil.rmtree(target)
    work = target.parent / f".{target.name}.work"
    t0 = time.perf_counter()
    facts = train_lora(examples, base, config, work, progress=progress, log_file=log_file,
                       time_budget_s=time_budget_s)
    if facts["steps"] < facts["planned_steps"]:
        config = config.model_copy(update={"max_steps": facts["steps"]})
        key = tune_key(base_sha, fingerprint, config, data_config)
        target = tuned_dir(key, home, base.name)
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _merge(base, work / _ADAPTER, staging)
        shutil.copytree(work / _ADAPTER, staging / _ADAPTER)
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {
            "model": target.name, "key": key, "kind": "lora-merged",
            "base": {"name": base.name, "path": str(base), "files_sha256": base_sha},
            "template": TEMPLATE, "labels": "A..T after 'Answer:'",
            "data": {"fingerprint": fingerprint, "examples": len(examples),
                     "users": len({e.user_id for e in examples}), "config": data_config.model_dump(mode="json")},
            "config": config.model_dump(mode="json"), "train": facts,
            "seconds_total": round(time.perf_counter() - t0, 1), "created": datetime.now(UTC).isoformat(),
            "metrics": {}, **(extra or {}), "files": files,
        }
        tmp = staging / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, staging / MANIFEST)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return target


def record_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    """Write validation metrics into a tuned model's manifest (atomically)."""
    manifest = load_manifest(folder)
    if manifest is None:
        raise ModelPreparationError(f"{folder} has no {MANIFEST}", reason="manifest")
    manifest["metrics"] = {**manifest.get("metrics", {}), **metrics}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)


def tuned_info(model: str | Path | None) -> dict[str, Any] | None:
    """What a served model folder says about its tuning (None for an untuned model or a remote name):
    name, key, base, prompt template and history length it was trained with, data fingerprint, metrics."""
    if model is None:
        return None
    folder = Path(model)
    if not folder.is_dir():
        return None
    try:
        manifest = load_manifest(folder)
    except ModelPreparationError:
        return None
    if not manifest or manifest.get("kind") != "lora-merged":
        return None
    return {"name": manifest["model"], "key": manifest["key"], "base": manifest["base"]["name"],
            "template": manifest["template"], "history_items": manifest["data"]["config"]["history_items"],
            "data_fingerprint": manifest["data"]["fingerprint"], "train_steps": manifest["train"]["steps"],
            "metrics": manifest.get("metrics", {})}
