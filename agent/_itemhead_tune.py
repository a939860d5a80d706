"""Tuning the item-head model (see ``agent._itemhead``): windows of training sequences, LoRA + item head,
cached under ``$TIDE_HOME/models/<base>-item-head-<key>/`` with a manifest; resumable and seeded. A folder
of the same name under a *seed* folder (a model committed with the code) is used instead of training."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ._catalog import CatalogItem
from ._errors import ModelPreparationError
from ._itemhead import (
    _BRANCH,
    _CKPT,
    _HEAD,
    _INIT,
    _ITEMS,
    KIND,
    ItemHeadConfig,
    _fingerprint,
    _standardized,
    item_head_key,
    training_windows,
)
from ._itemhead_backbone import HEADER, _Backbone
from ._itemhead_trunk import _TrunkCache
from ._model import MANIFEST, _sha256, model_dir, tide_home, verify_files
from ._tune import _base_sha
from ._vllm import default_dtype

__all__ = ["find_item_head", "tune_item_head"]

log = logging.getLogger(__name__)


def emulated_bf16_warning(device_type: str, train_dtype: str, cpu_dtype: str) -> str | None:
    """The warning for bfloat16 training on a CPU that only emulates it (``cpu_dtype``: what
    :func:`agent.default_dtype` picks for the CPU), else None. Measured on an AVX2-only CPU: 32 s per window
    in bfloat16 against 1.5 s in float32 (docs/RESULTS.md, 2026-12-04)."""
    if device_type != "cpu" or train_dtype != "bfloat16" or cpu_dtype == "bfloat16":
        return None
    return ("this CPU has no native bfloat16 (AVX512-BF16 or AMX): bfloat16 training is emulated here, about "
            "20x slower per window than float32 (measured 32 s vs 1.5 s on an AVX2 CPU); `tide model tune "
            "--train-dtype float32` trains faster (another key, so another model than the committed one)")


def _head_module(init: Any, log_pop: np.ndarray, *, standardize: bool, item_ids: bool = False,
                 branch_dim: int | None = None) -> Any:
    """The item head: cosine between the (optionally standardised) hidden state and each item's vector, times
    a learnt scale, plus a popularity bias. Standardised: the centre and per-dimension spread of the base
    model's item states (``init``) are fixed buffers, applied to the states; the item vectors start as the
    standardised ``init``. ``item_ids``: it also holds the items' ID vectors (``ids``, zeros at the start) that
    the backbone adds to its tuned layers' input (``ItemHeadConfig.item_ids``), saved with the head.
    ``branch_dim``: it also holds ``fuse`` (zeros at the start), the projection of a sequence branch's states
    (``ItemHeadConfig.branch``) added to the standardised hidden state."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # None buffers (not standardised) stay out of the state dict: a plain head saves as before
            self.register_buffer("center", init.mean(0) if standardize else None)
            self.register_buffer("inv_spread", 1.0 / (init.std(0) + 1e-6) if standardize else None)
            start = _standardized(init, self.center, self.inv_spread)
            self.emb = torch.nn.Parameter(start.clone())
            self.bias = torch.nn.Parameter(torch.tensor(log_pop, dtype=torch.float32) * 0.5)
            self.scale = torch.nn.Parameter(torch.tensor(10.0))
            if item_ids:
                self.ids = torch.nn.Parameter(torch.zeros_like(init))
            if branch_dim is not None:
                self.fuse = torch.nn.Parameter(torch.zeros(init.shape[1], branch_dim))

        def forward(self, h: Any, branch_states: Any = None) -> Any:
            f = torch.nn.functional
            h = _standardized(h, self.center, self.inv_spread)
            if branch_states is not None:
                h = h + branch_states @ self.fuse.T
            return self.scale * f.normalize(h, dim=-1) @ f.normalize(self.emb, dim=-1).T + self.bias

    return Head()


def _log_popularity(sequences: Mapping[str, Sequence[str]], index: Mapping[str, int]) -> np.ndarray:
    counts = np.zeros(len(index))
    for seq in sequences.values():
        for i in seq:
            counts[index[i]] += 1
    return np.log1p(counts)


def _located(sequences: Mapping[str, Sequence[str]], items: Sequence[CatalogItem],
             forbidden: Iterable[str | tuple[str, str]], config: ItemHeadConfig, base: Path | None,
             home: Path | None, ratings: Mapping[str, Sequence[float]] | None = None
             ) -> tuple[list[tuple], Path, str, str, Path]:
    index = {it.item_id: j for j, it in enumerate(items)}
    windows = training_windows(sequences, index, config, forbidden, ratings)
    if config.max_windows is not None:
        windows = windows[:config.max_windows]
    base = base or model_dir(home)
    base_sha = _base_sha(base)
    fingerprint = _fingerprint(windows, items)
    key = item_head_key(base_sha, fingerprint, config)
    return windows, base, base_sha, fingerprint, (home or tide_home()) / "models" / f"{base.name}-{KIND}-{key}"


def _shared_init(models: Path, base_sha: str, items: Sequence[CatalogItem], device_type: str) -> Path:
    """Where the head's starting vectors (each title read alone by the base model: minutes on a CPU) are kept
    for every config that shares the base, the catalogue's titles and the device type."""
    blob = json.dumps({"base": base_sha, "titles": [it.title for it in items], "header": HEADER,
                       "device": device_type})
    return models / ".item-head-init" / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"


def _usable(folder: Path) -> bool:
    try:
        verify_files(folder)
        return True
    except ModelPreparationError:
        return False


def find_item_head(sequences: Mapping[str, Sequence[str]], items: Sequence[CatalogItem],
                   forbidden: Iterable[str | tuple[str, str]], config: ItemHeadConfig, *,
                   base: Path | None = None, home: Path | None = None, seeds: Sequence[Path] = (),
                   ratings: Mapping[str, Sequence[float]] | None = None) -> Path | None:
    """The cached folder :func:`tune_item_head` would return for these inputs, without training: from
    ``$TIDE_HOME/models``, or copied there from a folder of the same name under one of ``seeds`` (e.g. a
    model committed with the code, checksums verified); None when neither has it."""
    target = _located(sequences, items, forbidden, config, base, home, ratings)[-1]
    if target.exists() and _usable(target):
        return target
    for seed in seeds:
        src = Path(seed) / target.name
        if src.is_dir() and _usable(src):
            staging = target.parent / f".{target.name}.copy-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, staging, ignore=shutil.ignore_patterns(".*"))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
            return target
    return None


def _lora_groups(bb: _Backbone, config: ItemHeadConfig) -> list[tuple[float, list[Any]]]:
    """The trainable LoRA weights as (learning rate, parameters) groups: one group at ``learning_rate`` when
    ``lora_layer_decay`` is 1 (the optimiser state of runs before the setting loads unchanged), else one per tuned
    layer, the top one at ``learning_rate`` and each below it ``lora_layer_decay`` times the one above."""
    named = [(n, p) for n, p in bb.model.named_parameters() if p.requires_grad]
    if config.lora_layer_decay == 1.0:
        return [(config.learning_rate, [p for _, p in named])]
    by_layer: dict[int, list[Any]] = {}
    for n, p in named:
        m = re.search(r"\.layers\.(\d+)\.", n)
        if m is None:
            raise ValueError(f"a LoRA weight outside the decoder layers: {n}")
        by_layer.setdefault(int(m.group(1)), []).append(p)
    top = max(by_layer)
    return [(config.learning_rate * config.lora_layer_decay ** (top - i), by_layer[i]) for i in sorted(by_layer)]


def tune_item_head(sequences: Mapping[str, Sequence[str]], items: Sequence[CatalogItem],
                   forbidden: Iterable[str | tuple[str, str]], config: ItemHeadConfig, *,
                   base: Path | None = None, home: Path | None = None, progress: bool = True,
                   log_file: Path | None = None, time_budget_s: float | None = None,
                   extra: dict[str, Any] | None = None, seeds: Sequence[Path] = (),
                   device: str | None = None,
                   offsets: Callable[[str, Sequence[int]], np.ndarray] | None = None,
                   ratings: Mapping[str, Sequence[float]] | None = None, trunk_cache_gib: float = 4.0,
                   branch: Any | None = None) -> Path:
    """Train (or reuse) the item-head model for these training sequences; returns its cached folder.

    Args:
        sequences: per-user training item ids, chronological (training data only).
        items: the catalogue; its order is the head's row order, its titles the history text.
        forbidden: items, or ``(user, item)`` pairs, no window may hold (a split's validation/test targets).
        config: settings (part of the key).
        time_budget_s: stop at the first window past it; the folder is then the run with
            ``max_windows`` = the windows done (a constant schedule has no total, so that run is reproducible);
            under ``lr_decay="linear"`` the run is checkpointed and :class:`ModelPreparationError` raised
            (run again to resume).
        device: where torch trains (``"cpu"``, ``"cuda"``, ``"cuda:1"``…; None: CUDA when torch sees it, else
            the CPU). Not part of the key (the same data and config on another device is the same model, up to
            rounding); recorded in the manifest's ``train.device``. A checkpoint resumes on any device.
        offsets: with ``config.residual`` (and only then): ``offsets(user, seq)`` gives the fixed scorer's
            logits after each prefix of ``seq`` (item indices in ``items`` order), ``(len(seq), len(items))``;
            row ``j`` follows ``seq[:j + 1]``. They are added to the head's logits before the loss.
        ratings: with ``config.ratings`` (and only then): per user, one rating (1-5) per item of their
            sequence, written into the history lines (``agent._itemhead.RATED_LINE``); part of the fingerprint.
        trunk_cache_gib: CPU memory for the frozen lower layers' output of windows that come again (the
            second epoch on), so that those windows run only the tuned layers forward; 0 turns it off. Not part
            of the key: the model is the same bit for bit (checked as it runs). The default config's windows
            need ~3 GiB to keep them all (docs/RESULTS.md, 2026-12-04 evening).
        branch: with ``config.branch`` (and only then): a ``torch.nn.Module`` mapping a 1-D tensor of item
            indices (``items`` order) to one state per position, ``(len, dim)``, causal (state ``j`` sees items
            ``0..j`` only); trained jointly from the weights it comes with (``config.branch`` should name what
            they were fitted on and with: it is the key's only record of them) and saved in the folder.

    Raises:
        TuneDataError: forbidden or unknown items in ``sequences``.
        ModelPreparationError: the time budget stopped a run whose learning rate decays (resumable).
    """
    import torch
    from peft import set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    if (offsets is None) != (config.residual is None):
        raise ValueError("residual training needs both config.residual (its name, part of the key) and offsets")
    if (branch is None) != (config.branch is None):
        raise ValueError("a sequence branch needs both config.branch (its name, part of the key) and the module")
    if not trunk_cache_gib >= 0:
        raise ValueError(f"trunk_cache_gib must be 0 (off) or more, got {trunk_cache_gib!r}")
    items = list(items)
    forbidden = list(forbidden)
    index = {it.item_id: j for j, it in enumerate(items)}
    found = find_item_head(sequences, items, forbidden, config, base=base, home=home, seeds=seeds, ratings=ratings)
    if found is not None:
        return found
    windows, base, base_sha, fingerprint, target = _located(sequences, items, forbidden, config, base, home,
                                                            ratings)
    key = target.name.rsplit("-", 1)[1]
    shutil.rmtree(target, ignore_errors=True)  # a damaged folder (find_item_head refused it)
    work = target.parent / f".{target.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    slow = emulated_bf16_warning(dev.type, config.train_dtype, default_dtype("cpu"))
    if slow:
        log.warning(slow)
    torch.manual_seed(config.seed)
    bb = _Backbone(base, [it.title for it in items], config.rank, config.top_layers, device=str(dev),
                   rated=config.ratings, dropout=config.lora_dropout)
    if not (work / _INIT).exists():
        shared = _shared_init(target.parent, base_sha, items, dev.type)
        if shared.exists():  # another config on the same base, catalogue and device computed it
            shutil.copyfile(shared, work / (_INIT + ".tmp"))
        else:
            torch.save(bb.init_head(progress), work / (_INIT + ".tmp"))
            shared.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / (_INIT + ".tmp"), shared.with_suffix(f".tmp-{os.getpid()}"))
            os.replace(shared.with_suffix(f".tmp-{os.getpid()}"), shared)
        os.replace(work / (_INIT + ".tmp"), work / _INIT)
    log_pop = _log_popularity(sequences, index)
    branch_dim = None
    if branch is not None:
        branch.to(dev)
        with torch.no_grad():
            branch_dim = int(branch(torch.tensor([0], device=dev)).shape[-1])
    head = _head_module(torch.load(work / _INIT), log_pop, standardize=config.standardize,
                        item_ids=config.item_ids, branch_dim=branch_dim).to(dev)
    lora = [p for p in bb.model.parameters() if p.requires_grad]
    groups = [{"params": ps, "lr": lr} for lr, ps in _lora_groups(bb, config)]
    groups.append({"params": [p for n, p in head.named_parameters() if n != "ids"], "lr": config.head_learning_rate})
    base_lrs = [g["lr"] for g in groups]
    if config.item_ids:
        bb.inject_ids(head.ids, bb.first_tuned, config.id_scale)
        groups.append({"params": [head.ids], "lr": config.id_learning_rate})
        base_lrs.append(config.id_learning_rate)
    if branch is not None:
        groups.append({"params": list(branch.parameters()), "lr": config.branch_learning_rate})
        base_lrs.append(config.branch_learning_rate)
    opt = torch.optim.AdamW(groups)
    step, history = 0, []
    # training time and runs before this one, carried by the checkpoint (None: a checkpoint that did not record it)
    seconds_before: float | None = 0.0
    runs_before = 0
    if (work / _CKPT).exists():
        st = torch.load(work / _CKPT, weights_only=False, map_location=dev)
        set_peft_model_state_dict(bb.model, st["lora"])
        head.load_state_dict(st["head"])
        if branch is not None:
            branch.load_state_dict(st["branch"])
        opt.load_state_dict(st["opt"])
        step, history = int(st["step"]), list(st["hist"])
        seconds_before, runs_before = st.get("seconds"), int(st.get("runs", 1))
        log.info("resuming at window %d of %d", step, len(windows))

    def all_runs_seconds() -> float | None:
        return None if seconds_before is None else seconds_before + time.perf_counter() - started

    def save() -> None:
        torch.save({"lora": get_peft_model_state_dict(bb.model), "head": head.state_dict(), "opt": opt.state_dict(),
                    "branch": None if branch is None else branch.state_dict(), "step": step, "hist": history,
                    "seconds": all_runs_seconds(), "runs": runs_before + 1},
                   work / (_CKPT + ".tmp"))
        os.replace(work / (_CKPT + ".tmp"), work / _CKPT)

    bb.model.train()
    if branch is not None:
        branch.train()
    trunks = _TrunkCache(bb, windows[step:], int(trunk_cache_gib * 2**30))
    started, done_here = time.perf_counter(), 0
    bar = tqdm(total=len(windows), initial=step, desc="item head", unit="window", disable=not progress)
    logf = log_file.open("a") if log_file else None
    mh = config.min_history
    try:
        while step < len(windows):
            if config.lr_decay == "linear":  # a function of the step: a resumed run continues the same schedule
                for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                    g["lr"] = lr * (1.0 - step / len(windows))
            user, seq, *_ = windows[step]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=config.train_dtype == "bfloat16"):
                states = trunks.states(windows[step])[mh - 1:]
            fused = None if branch is None else branch(torch.tensor(seq[:-1], device=dev))[mh - 1:].float()
            logits = head(states.float(), fused)
            if offsets is not None:
                off = np.asarray(offsets(user, seq[:-1]), dtype=np.float32)
                if off.shape != (len(seq) - 1, len(items)):
                    raise ValueError(f"offsets gave shape {off.shape}, expected {(len(seq) - 1, len(items))}")
                logits = logits + torch.from_numpy(off[mh - 1:]).to(dev)
            tgt = torch.tensor(seq[mh:], device=dev)
            mask = torch.zeros_like(logits, dtype=torch.bool)
            for r in range(len(tgt)):
                mask[r, seq[:mh + r]] = True
            loss = torch.nn.functional.cross_entropy(logits.masked_fill(mask, -1e9), tgt)
            loss.backward()
            tuned = [*lora, *head.parameters(), *(branch.parameters() if branch is not None else ())]
            torch.nn.utils.clip_grad_norm_(tuned, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            done_here += 1
            history.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(history[-50:]):.3f}")
            bar.update(1)
            out_of_time = time_budget_s is not None and time.perf_counter() - started > time_budget_s
            if step % config.checkpoint_every == 0 or step == len(windows) or out_of_time:
                save()
                if logf:
                    logf.write(json.dumps({"at": datetime.now(UTC).isoformat(), "window": step, "of": len(windows),
                                           "loss50": round(float(np.mean(history[-50:])), 4),
                                           "s_per_window": round((time.perf_counter() - started) / done_here, 3)})
                               + "\n")
                    logf.flush()
            if out_of_time:
                log.warning("time budget spent: stopping after window %d of %d", step, len(windows))
                if config.lr_decay != "none" and step < len(windows):
                    raise ModelPreparationError(
                        f"time budget spent at window {step} of {len(windows)}: under a decaying learning rate "
                        f"the model exists only at the schedule's end; checkpointed in {work}, run again to resume",
                        reason="time-budget")
                break
    finally:
        bar.close()
        if logf:
            logf.close()
    if step < len(windows):  # stopped by the budget: this is the run with max_windows = step
        config = config.model_copy(update={"max_windows": step})
        fingerprint = _fingerprint(windows[:step], items)
        key = item_head_key(base_sha, fingerprint, config)
        target = target.parent / f"{base.name}-{KIND}-{key}"
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        # stored in float16 (half the bytes; the scorer computes in float32)
        bb.model.save_pretrained(str(staging))
        adapter = staging / "adapter_model.safetensors"
        save_file({k: v.half() for k, v in load_file(str(adapter)).items()}, str(adapter))
        save_file({k: v.detach().cpu().half().contiguous() for k, v in head.state_dict().items()},
                  str(staging / _HEAD))
        if branch is not None:  # float32: small, and read as trained
            save_file({k: v.detach().cpu().contiguous() for k, v in branch.state_dict().items()},
                      str(staging / _BRANCH))
        (staging / _ITEMS).write_text(json.dumps([it.item_id for it in items]))
        h = np.asarray(history)
        elapsed = time.perf_counter() - started
        facts = {"windows": step, "planned_windows": len(windows), "targets_per_window": config.window - mh,
                 "seconds_this_run": round(elapsed, 1),
                 # a resumed training's whole time: every run's windows, as its checkpoints recorded them
                 "runs": runs_before + 1,
                 "seconds_all_runs": None if seconds_before is None else round(seconds_before + elapsed, 1),
                 "s_per_window": round(elapsed / done_here, 3) if done_here else None,
                 "loss_first50": round(float(h[:50].mean()), 4) if len(h) else None,
                 "loss_last50": round(float(h[-50:].mean()), 4) if len(h) else None,
                 "uniform_loss": round(float(np.log(len(items))), 4),
                 "trainable_params": sum(p.numel() for p in lora) + sum(p.numel() for p in head.parameters())
                 + (sum(p.numel() for p in branch.parameters()) if branch is not None else 0),
                 "trunk_cache_this_run": trunks.facts(),
                 "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})"}
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {"model": target.name, "key": key, "kind": KIND, "header": HEADER,
                    "base": {"name": base.name, "path": str(base), "files_sha256": base_sha},
                    "data": {"fingerprint": fingerprint, "windows": len(windows[:step]),
                             "users": len({w[0] for w in windows[:step]}), "items": len(items)},
                    "config": config.model_dump(mode="json"), "train": facts,
                    "seconds_total": round(time.perf_counter() - t0, 1), "created": datetime.now(UTC).isoformat(),
                    "metrics": {}, **(extra or {}), "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return target
