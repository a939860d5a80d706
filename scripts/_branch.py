"""SASRec as the item head's sequence branch (``agent.ItemHeadConfig.branch``): the harness's SASRec, fitted on
a split's training sequences, wrapped so that it reads the head's item indices; and the same architecture rebuilt
from a tuned model's manifest for reading (its trained weights come from the model folder)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


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


def fitted(split: Any, folder: Path) -> tuple[Any, dict[str, Any]]:
    """SASRec (the harness's default config, seed 0) fitted on ``split`` (kept in ``folder`` and reused) and what
    a reader needs to rebuild its architecture: ``{"kind", "name", "config", "item_ids", "sha256"}``.

    ``name`` (the head's ``ItemHeadConfig.branch``, part of its key) names what the fit depends on beyond the
    head's own training windows: SASRec's config and the split's validation targets (its early stopping), as
    the head's key names data and config, not the bits a CPU rounds to; ``sha256`` (of the fitted weights) is
    recorded beside it."""
    from eval import build_sequential
    from eval._sasrec import SASRecPredictor  # scripts may use the harness's parts

    if (folder / "config.json").exists():
        model = SASRecPredictor.load(folder, device="cpu")
    else:
        model = build_sequential("sasrec", split.dataset, seed=0)
        model.fit(split)
        model.save(folder)
    h = hashlib.sha256()
    for k, v in sorted(model._net.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().float().numpy()).tobytes())
    config = model.config.model_dump(mode="json")
    stops_on = sorted((u, t.item_id) for u, t in split.val.items())
    name = "sasrec-" + hashlib.sha256(json.dumps([config, stops_on]).encode()).hexdigest()[:12]
    return model, {"kind": "sasrec", "name": name, "config": config, "item_ids": model._item_ids,
                   "best_epoch": model.best_epoch, "sha256": h.hexdigest()}


def from_manifest(folder: Path) -> Any | None:
    """A branch module of the architecture a tuned item head recorded (``manifest["branch"]``), for
    ``agent.ItemHeadScorer(branch=...)``; None for a head without a branch."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if manifest["config"].get("branch") is None:
        return None
    from eval._sasrec import SASRecConfig, _make_net  # scripts may use the harness's parts

    rec = manifest["branch"]
    if rec["kind"] != "sasrec":
        raise ValueError(f"{folder}: unknown branch kind {rec['kind']!r}")
    cfg = SASRecConfig.model_validate(rec["config"] | {"device": "cpu", "progress": False})
    net = _make_net(len(rec["item_ids"]), cfg, None)
    return wrap(net, rec["item_ids"], json.loads((Path(folder) / "items.json").read_text()))
