"""SASRec as the item head's sequence branch (``agent.ItemHeadConfig.branch``).

In the harness's item-head settings ``{"branch": "sasrec"}`` means "the harness's SASRec (default config,
seed 0) fitted on this split's training sequences": :func:`resolve_branch` turns it into the name the head's key
holds (SASRec's config and the split's validation targets, its early stopping: what the fit depends on beyond the
head's own training windows, not the bits a CPU rounds to), :func:`fitted_branch` fits it for tuning, and
:func:`branch_from_manifest` rebuilds a tuned head's branch architecture for reading (the trained weights come
from the head's folder).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from eval._split import Split

__all__ = ["SASREC", "branch_from_manifest", "branch_name", "fitted_branch", "resolve_branch", "wrap"]

#: the branch kind the harness fits itself (``item_head_config={"branch": "sasrec"}``)
SASREC = "sasrec"


def _sasrec(split: Split) -> Any:
    from eval._seqmodels import build_sequential

    return build_sequential(SASREC, split.dataset, seed=0)


#: SASRec's settings that say where and how visibly it runs, not what it fits: left out of the name
_RUN_ONLY = ("device", "progress")


def branch_name(split: Split) -> str:
    """The name of SASRec fitted on ``split`` as a branch: ``"sasrec-<sha12>"`` of its config (less the
    run-only settings, ``_RUN_ONLY``) and the split's validation targets (no fitting needed)."""
    config = {k: v for k, v in _sasrec(split).config.model_dump(mode="json").items() if k not in _RUN_ONLY}
    stops_on = sorted((u, t.item_id) for u, t in split.val.items())
    return f"{SASREC}-" + hashlib.sha256(json.dumps([config, stops_on]).encode()).hexdigest()[:12]


def resolve_branch(config: Any, split: Split) -> Any:
    """``config`` (an ``agent.ItemHeadConfig``) with ``branch="sasrec"`` replaced by :func:`branch_name` of
    ``split``; any other config as it is."""
    if config is None or config.branch != SASREC:
        return config
    return config.model_copy(update={"branch": branch_name(split)})


def wrap(net: Any, sasrec_ids: list[str], head_ids: list[str]) -> Any:
    """``net`` (SASRec's module, its own item order ``sasrec_ids``) as a branch over ``head_ids``' indices:
    a 1-D tensor of head indices in, SASRec's state after each position out (``(len, dim)``)."""
    import torch

    own = {i: k + 1 for k, i in enumerate(sasrec_ids)}  # SASRec's index + 1 (0 is its padding)

    class SASRecBranch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("cols", torch.tensor([own[i] for i in head_ids], dtype=torch.long))

        def forward(self, seq: Any) -> Any:
            return self.net(self.cols[seq][None])[0]

    return SASRecBranch()


def fitted_branch(split: Split, head_ids: list[str], folder: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """SASRec fitted on ``split`` (kept in ``folder`` and reused when given) wrapped as a branch over
    ``head_ids``, and the record a reader needs to rebuild its architecture (the head's manifest keeps it under
    ``"branch"``): ``{"kind", "name", "config", "item_ids", "best_epoch", "sha256"}`` (``sha256``: of the
    fitted weights, recorded beside the name)."""
    from eval._sasrec import SASRecPredictor

    if folder is not None and (folder / "config.json").exists():
        model = SASRecPredictor.load(folder, device="cpu")
    else:
        model = _sasrec(split)
        model.fit(split)
        if folder is not None:
            model.save(folder)
    h = hashlib.sha256()
    for k, v in sorted(model._net.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().float().numpy()).tobytes())
    record = {"kind": SASREC, "name": branch_name(split), "config": model.config.model_dump(mode="json"),
              "item_ids": model._item_ids, "best_epoch": model.best_epoch, "sha256": h.hexdigest()}
    return wrap(model._net, model._item_ids, head_ids), record


def branch_from_manifest(folder: Path) -> Any | None:
    """A branch module of the architecture a tuned item head recorded (``manifest["branch"]``), for
    ``agent.ItemHeadScorer(branch=...)``; None for a head without a branch.

    Raises:
        ValueError: The manifest names a branch kind this harness does not know.
    """
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if manifest["config"].get("branch") is None:
        return None
    from eval._sasrec import SASRecConfig, _make_net

    rec = manifest.get("branch") or {}
    if rec.get("kind") != SASREC:
        raise ValueError(f"{folder}: its sequence branch {manifest['config']['branch']!r} is of an unknown kind "
                         f"{rec.get('kind')!r} (this harness rebuilds {SASREC!r})")
    cfg = SASRecConfig.model_validate(rec["config"] | {"device": "cpu", "progress": False})
    net = _make_net(len(rec["item_ids"]), cfg, None)
    return wrap(net, rec["item_ids"], json.loads((Path(folder) / "items.json").read_text()))
