"""The item head's training step in float32 and in bfloat16 (``ItemHeadConfig.train_dtype``), side by side.

Each round trains, for each dtype in turn, the same first ``--windows`` windows of ML-100k's leave-one-out
training sequences (same order, same initialisation, a throw-away ``TIDE_HOME``) with ``tide model tune``'s
library call, and reads the manifest: seconds per window (the training loop alone: forward, backward, step)
and the mean loss over the windows (each scored before the step that learns from it)::

    .venv/bin/python -m bench.itemhead_train_dtype --windows 40 --rounds 2 --out docs/results/itemhead-train-dtype.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench._harness import emit


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    from agent import ItemHeadConfig, load_manifest, model_dir
    from eval import item_head_on_split, leave_one_out, load_ml100k

    split = leave_one_out(load_ml100k())
    base = model_dir()
    runs: list[dict] = []
    for r in range(args.rounds):
        for dtype in ("float32", "bfloat16"):
            config = ItemHeadConfig(max_windows=args.windows, train_dtype=dtype)
            with tempfile.TemporaryDirectory() as home:
                folder = item_head_on_split(split, config, home=Path(home), base=base, progress=False,
                                            device=args.device)
                train = load_manifest(Path(folder))["train"]
            runs.append({"round": r, "dtype": dtype, "s_per_window": train["s_per_window"],
                         "loss_mean": train["loss_first50"], "windows": train["windows"]})
            print(json.dumps(runs[-1]), flush=True)

    def mean(dtype: str, key: str) -> float:
        vals = [x[key] for x in runs if x["dtype"] == dtype]
        return sum(vals) / len(vals)

    out = {"windows": args.windows, "rounds": args.rounds, "device": args.device, "runs": runs,
           "s_per_window": {d: mean(d, "s_per_window") for d in ("float32", "bfloat16")},
           "speedup_bf16": mean("float32", "s_per_window") / mean("bfloat16", "s_per_window"),
           "loss_mean": {d: mean(d, "loss_mean") for d in ("float32", "bfloat16")}}
    emit(out, args.out)


if __name__ == "__main__":
    main()
