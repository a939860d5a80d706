"""scripts/_branch.py: SASRec as the item head's sequence branch — the index mapping, and the architecture rebuilt
from a tuned head's manifest (real SASRec module, real JSON files)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def _branch_module():
    spec = importlib.util.spec_from_file_location("_branch", ROOT / "scripts" / "_branch.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT))
    spec.loader.exec_module(mod)
    return mod


def test_the_branch_reads_head_indices_as_sasrec_reads_its_own_and_is_rebuilt_from_the_manifest(tmp_path):
    from eval._sasrec import SASRecConfig, _make_net

    mod = _branch_module()
    cfg = SASRecConfig(dim=8, blocks=1, max_history=10, dropout=0.0, device="cpu", progress=False)
    sasrec_ids = ["c", "a", "d", "b"]
    head_ids = ["a", "b", "c", "d"]
    torch.manual_seed(0)
    net = _make_net(len(sasrec_ids), cfg, None).eval()
    branch = mod.wrap(net, sasrec_ids, head_ids)
    seq = torch.tensor([2, 0, 3])  # head order: c, a, d -> SASRec's indices 1, 2, 3 (0 is padding)
    with torch.no_grad():
        assert torch.equal(branch(seq), net(torch.tensor([[1, 2, 3]]))[0])
        assert branch(seq).shape == (3, cfg.dim)

    (tmp_path / "items.json").write_text(json.dumps(head_ids))
    manifest = {"config": {"branch": "sasrec-test"},
                "branch": {"kind": "sasrec", "config": cfg.model_dump(mode="json"), "item_ids": sasrec_ids}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    rebuilt = mod.from_manifest(tmp_path)
    rebuilt.load_state_dict(branch.state_dict())  # the same architecture, the same mapping
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(seq), branch(seq))
    manifest["config"]["branch"] = None
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert mod.from_manifest(tmp_path) is None
    manifest["config"]["branch"], manifest["branch"]["kind"] = "x", "gru"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="unknown branch kind"):
        mod.from_manifest(tmp_path)
