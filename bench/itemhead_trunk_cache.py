"""The item head's training with and without the trunk cache (``tune_item_head(trunk_cache_gib=...)``),
side by side.

From the second epoch on every training window comes again; the cache keeps the frozen lower layers' output of
each window (the layers below the adapter: 12 of Gemma 270M's 18 under the default ``top_layers=6``), so a
repeated window runs only the tuned layers forward. Each round trains the default config (two epochs) on the
leave-one-out training sequences of the first ``--users`` ML-100k users (same windows, same order, same
initialisation, a throw-away ``TIDE_HOME``) with the cache on and then off, and reports the training loop's
seconds (forward, backward, step; the head's starting vectors are computed once beforehand and shared), the
cache's peak memory, and whether the two models are equal bit for bit::

    .venv/bin/python -m bench.itemhead_trunk_cache --users 24 --rounds 2 --train-dtype float32 \\
        --out docs/results/itemhead-trunk-cache.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench._harness import emit


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=24)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--train-dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import numpy as np
    from safetensors.numpy import load_file

    from agent import ItemHeadConfig, load_manifest, model_dir, tide_home, tune_item_head
    from eval import forbidden_pairs, leave_one_out, load_ml100k, tune_items

    split = leave_one_out(load_ml100k())
    users = sorted(split.train, key=int)[:args.users]
    sequences = {u: split.train[u] for u in users}
    items = tune_items(split.dataset)
    forbidden = [(u, i) for u, i in forbidden_pairs(split) if u in sequences]
    config = ItemHeadConfig(train_dtype=args.train_dtype)
    base = model_dir()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        init_home = Path(tmp) / "init"  # the head's starting vectors, computed once and copied to each run
        if (tide_home() / "models" / ".item-head-init").is_dir():  # content-addressed: reuse this machine's
            shutil.copytree(tide_home() / "models" / ".item-head-init", init_home / "models" / ".item-head-init")
        one = config.model_copy(update={"max_windows": 1})
        tune_item_head(sequences, items, forbidden, one, base=base, home=init_home, progress=False,
                       device=args.device)
        for r in range(args.rounds):
            folders = {}
            for gib in (4.0, 0.0):
                home = Path(tmp) / f"r{r}-{gib}"
                shutil.copytree(init_home / "models" / ".item-head-init", home / "models" / ".item-head-init")
                folder = tune_item_head(sequences, items, forbidden, config, base=base, home=home, progress=False,
                                        device=args.device, trunk_cache_gib=gib)
                train = load_manifest(Path(folder))["train"]
                folders[gib] = Path(folder)
                runs.append({"round": r, "trunk_cache_gib": gib, "windows": train["windows"],
                             "seconds": train["seconds_this_run"], "s_per_window": train["s_per_window"],
                             "trunk_cache": train["trunk_cache_this_run"], "loss_last50": train["loss_last50"]})
                print(json.dumps(runs[-1]), flush=True)
            equal = True
            for name in ("item_head.safetensors", "adapter_model.safetensors"):
                a, b = load_file(str(folders[4.0] / name)), load_file(str(folders[0.0] / name))
                equal &= a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
            runs[-1]["equal_to_cached_run"] = runs[-2]["equal_to_cached_run"] = bool(equal)

    def mean(gib: float) -> float:
        vals = [x["seconds"] for x in runs if x["trunk_cache_gib"] == gib]
        return sum(vals) / len(vals)

    out = {"users": args.users, "rounds": args.rounds, "train_dtype": args.train_dtype, "device": args.device,
           "threads": __import__("torch").get_num_threads(), "epochs": config.epochs,
           "top_layers": config.top_layers, "runs": runs,
           "seconds": {"cache": mean(4.0), "no_cache": mean(0.0)},
           "speedup": mean(0.0) / mean(4.0), "all_equal": all(x["equal_to_cached_run"] for x in runs)}
    emit(out, args.out)


if __name__ == "__main__":
    main()
