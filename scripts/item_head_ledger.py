"""Every item head read on all 943 users' validation targets, as one table (issue #9's ledger of config points).

    python scripts/item_head_ledger.py [--results docs/results] [--users 943]

Reads the committed ``item-head-catalogue*.json`` files (``scripts/item_head_catalogue.py`` writes them; the LLM
alone over the catalogue, no test target) and prints a markdown table: one row per head and file, the head's
settings that differ from today's ``ItemHeadConfig()`` defaults, its NDCG@10 and recall@20, and the paired
comparisons the file holds against other heads (bootstrap and Wilcoxon p). A head read by several files gets a row
per file (the readings may differ in the fourth digit: a committed copy is stored in bfloat16). Seconds; no model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import ItemHeadConfig  # noqa: E402

#: what a setting absent from an older manifest meant (the value that keys as before it existed), not today's default
ABSENT = {k: before for k, (before, _) in ItemHeadConfig.ADDED_LATER.items()}
#: bookkeeping, not a setting of the model
IGNORED = {"checkpoint_every", "max_windows"}
#: settings that mean nothing while the setting they depend on is off
DEPENDS = {d: k for k, (_, ds) in ItemHeadConfig.ADDED_LATER.items() for d in ds}


def differences(config: dict) -> dict:
    """The settings of a recorded config that differ from today's defaults (absent ones at their old meaning)."""
    default = ItemHeadConfig().model_dump(mode="json")
    out = {}
    for k, v in default.items():
        if k in IGNORED or (k in DEPENDS and not config.get(DEPENDS[k], ABSENT.get(DEPENDS[k]))):
            continue
        got = config.get(k, ABSENT.get(k, v))
        if k == "branch" and isinstance(got, str):
            got = got.split("-")[0]  # the branch's name; its fit's hash is in the file
        if got != v:
            out[k] = got
    return out


def rows(results: Path, users: int) -> list[dict]:
    """One row per (item head, catalogue file) for the files that read ``users`` users."""
    out = []
    for f in sorted(results.glob("item-head-catalogue*.json")):
        d = json.loads(f.read_text())
        if d.get("users") != users:
            continue
        pairs = {**d.get("model_vs_model", {}), **d.get("model_vs_stored", {})}
        for name, m in d["models"].items():
            if "config" not in m:  # a sequential model or an ensemble read beside the heads
                continue
            vs = [(other.split(" - ")[1], p) for other, p in pairs.items() if other.split(" - ")[0] == name]
            out.append({"file": f.name, "head": name.rsplit("-", 1)[1], "base": name.split("-item-head-")[0],
                        "windows": m["windows"], "changes": differences(m["config"]),
                        "ndcg@10": m["alone"]["ndcg@10"], "recall@20": m["alone"].get("recall@20"),
                        "vs": [{"other": o.rsplit("-", 1)[1] if "-item-head-" in o else o,
                                "diff": round(p["mean_diff"], 4), "p_bootstrap": round(p["p_bootstrap"], 3),
                                "p_wilcoxon": round(p["p_wilcoxon"], 3)} for o, p in vs]})
    return out


def markdown(table: list[dict]) -> str:
    lines = ["| head | base | changes from today's defaults | windows | NDCG@10 | recall@20 | paired vs | file |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table:
        changes = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "(today's defaults)"
        vs = "; ".join(f"{v['other']} {v['diff']:+.4f} (p {v['p_bootstrap']:.3f} / {v['p_wilcoxon']:.3f})"
                       for v in r["vs"]) or "–"
        r20 = "–" if r["recall@20"] is None else f"{r['recall@20']:.3f}"
        lines.append(f"| `{r['head']}` | {r['base']} | {changes} | {r['windows']} | {r['ndcg@10']:.4f} | {r20} | {vs} "
                     f"| `{r['file']}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(ROOT / "docs" / "results"), help="folder of item-head-catalogue*.json")
    p.add_argument("--users", type=int, default=943, help="read only the files that scored this many users")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a markdown table")
    args = p.parse_args(argv)
    folder = Path(args.results)
    if not folder.is_dir():
        p.error(f"--results {folder} is not a folder")
    table = rows(folder, args.users)
    if not table:
        p.error(f"no item-head-catalogue*.json in {folder} read {args.users} users")
    print(json.dumps(table, indent=1) if args.json else markdown(table))


if __name__ == "__main__":
    main()
