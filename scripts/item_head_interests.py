"""Should the agent's interests come from the tuned item-head model? Chosen on ML-100k VALIDATION items
(never test), by interest F1 against the validation item's genres.

    python scripts/item_head_interests.py [--users 160] [--model DIR] [--skip-llm] [--out FILE.json]

Set-up as ``scripts/interest_count.py`` (``scripts/_validation.py``: memory filled up to each sampled user's
validation item). Per user, without test data:

- ``item-head top-k`` (k = 1, 2, 3): the categories most likely to be on the next item under the item-head
  model tuned on the split's training sequences (``InterestAgent.item_head_interests``);
- ``item-head expected-F1 <=k`` (k = 2, 3): the set of at most k categories with the highest expected F1
  against the next item under the same model (``AgentConfig.item_head_rule = "expected-f1"``);
- ``item-head expected-F1 <=3 t=T mix=B`` (T = 0.5, 0.7, 1, 1.5; B = 0, 0.25, 0.5, 0.75; not (1, 0), the row
  above): the same with the model's distribution sharpened or flattened (temperature T) and a share B of it
  given to the user's last 10 items (``AgentConfig.item_head_temperature`` / ``item_head_recent_mix``);
- ``grounded top-2``: the LLM's constrained interests, grounded, first two (the agent's interests today);
- ``profile top-k``: the memory model's interests (the short horizon's top categories).

Rule, stated before the run: the item-head family's best member by mean validation F1 (ties: the one listed
first) sets ``item_head_rule`` and ``item_head_interests``, and becomes the agent's interest source
(``AgentConfig.interest_source = "item-head"``) if its validation F1 beats ``grounded top-2`` with paired
bootstrap and Wilcoxon p < 0.05; otherwise the LLM's interests stay. ``--skip-llm`` (no engine) compares
the family and the profile only; the source then stays as an earlier run with the LLM decided.

Second rule (the temperature / recent-share grid, stated before its first run, 2026-12-01 evening): the best
``t=T mix=B`` row by mean validation F1 sets ``item_head_temperature`` and ``item_head_recent_mix`` if it
beats ``item-head expected-F1 <=3`` (T 1, B 0) with paired bootstrap and Wilcoxon p < 0.05; otherwise they
stay at 1 and 0.

Third rule (stated before its run, 2026-12-02, after the standardised head became the default): the grid is
extended to T in (0.5, 0.7, 1, 1.5) x B in (0, 0.25, 0.5, 0.75) (the first grid's best, 0.7 and 0.5, sat on
its edge), every row read off the model given with ``--model`` (default: the split's default head). The best
row by mean validation F1 replaces the current defaults (``AgentConfig()``'s temperature and recent share)
only if it beats the row at those defaults with paired bootstrap and Wilcoxon p < 0.05; otherwise they stay.
The family rows (top-k, expected-F1 without ``t=``) are read at T 1 and B 0, as in the first run.
The third rule is applied again, unchanged, whenever the default head changes (2026-12-02 afternoon: the
two-epoch head ``aeb54ad093f4``, same 400 users, seed 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from _validation import validation_setup  # noqa: E402

from agent import AgentConfig, ItemHeadScorer  # noqa: E402
from eval import bootstrap_ci, interest_prf, item_head_on_split, paired_test  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=160)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=Path, default=None, help="an item-head model folder (default: the one "
                   "tuned on the split with the default config)")
    p.add_argument("--skip-llm", action="store_true", help="no engine: the item-head family and the profile only")
    p.add_argument("--out", default="docs/results/item-head-interests.json")
    args = p.parse_args()

    v = validation_setup(args.users, args.seed, engine=not args.skip_llm)
    folder = args.model or item_head_on_split(v.split, train=False)
    if folder is None:
        sys.exit("no item-head model tuned on this split: run `tide model tune` first")
    scorer = ItemHeadScorer(folder, {it.item_id: it.title for it in v.catalog.items})
    agent = v.base.with_config(max_interests=3)
    scored = agent.score_candidates(v.users, v.nows, **v.kw)
    llm_seconds, answers = 0.0, None
    if v.engine is not None:
        t0 = time.perf_counter()
        answers = agent.llm_interests(scored)
        llm_seconds = time.perf_counter() - t0
        v.engine.close()
    head = agent.with_item_head(scorer).with_config(item_head_interests=3, item_head_temperature=1.0,
                                                    item_head_recent_mix=0.0)
    t0 = time.perf_counter()
    head_labels = [[x.label for x in head.item_head_interests(s.context)] for s in scored]
    head_seconds = time.perf_counter() - t0
    labels: dict[str, list[list[str]]] = {}
    for k in (1, 2, 3):
        labels[f"item-head top-{k}"] = [x[:k] for x in head_labels]
    for k in (2, 3):
        ef1 = head.with_config(item_head_rule="expected-f1", item_head_interests=k)
        labels[f"item-head expected-F1 <={k}"] = [[x.label for x in ef1.item_head_interests(s.context)]
                                                  for s in scored]
    for t in (0.5, 0.7, 1.0, 1.5):
        for b in (0.0, 0.25, 0.5, 0.75):
            if (t, b) != (1.0, 0.0):
                var = head.with_config(item_head_rule="expected-f1", item_head_interests=3, item_head_temperature=t,
                                       item_head_recent_mix=b)
                labels[f"item-head expected-F1 <=3 t={t} mix={b}"] = [
                    [x.label for x in var.item_head_interests(s.context)] for s in scored]
    if answers is not None:
        labels["grounded top-2"] = [[x.label for x in agent.grounded_interests(s.context, a.value)[0]][:2]
                                    if hasattr(a, "value") else [] for s, a in zip(scored, answers, strict=True)]
    for k in (1, 2, 3):
        labels[f"profile top-{k}"] = [[x.name for x in s.context.profile.short.top_attributes[:k]] for s in scored]
    genres = [v.ds.items[v.split.val[u].item_id].genres for u in v.users]
    f1 = {name: np.asarray([interest_prf(x, g)[2] for x, g in zip(ls, genres, strict=True)])
          for name, ls in labels.items()}
    means = {k: float(x.mean()) for k, x in f1.items()}
    family = [k for k in labels if k.startswith("item-head") and " t=" not in k]
    grid = [k for k in labels if " t=" in k]
    grid_best = max(grid, key=lambda n: (means[n], -grid.index(n)))
    vs_default = paired_test(f1[grid_best], f1["item-head expected-F1 <=3"])
    adopt_grid = bool(vs_default.mean_diff > 0 and vs_default.p_bootstrap < 0.05 and vs_default.p_wilcoxon < 0.05)
    defaults = AgentConfig()
    current = f"item-head expected-F1 <=3 t={defaults.item_head_temperature} mix={defaults.item_head_recent_mix}"
    vs_current = paired_test(f1[grid_best], f1[current]) if current in f1 and current != grid_best else None
    adopt_vs_current = bool(vs_current is not None and vs_current.mean_diff > 0 and vs_current.p_bootstrap < 0.05
                            and vs_current.p_wilcoxon < 0.05)
    best = max(family, key=lambda n: (means[n], -family.index(n)))
    vs_llm = paired_test(f1[best], f1["grounded top-2"]) if answers is not None else None
    adopt = None if vs_llm is None else bool(
        vs_llm.mean_diff > 0 and vs_llm.p_bootstrap < 0.05 and vs_llm.p_wilcoxon < 0.05)
    report = {
        "users": len(v.users), "model": str(folder), "llm_seconds": llm_seconds, "item_head_seconds": head_seconds,
        "f1": {k: bootstrap_ci(x).to_dict() for k, x in f1.items()},
        "paired": [{"model": k, "baseline": b, **paired_test(f1[k], f1[b]).to_dict()}
                   for b in ("grounded top-2", "profile top-3", "item-head top-2") if b in f1 for k in f1 if k != b],
        "best_item_head": best, "adopt": adopt,
        "best_grid": grid_best, "grid_vs_default": vs_default.to_dict(), "adopt_grid": adopt_grid,
        "rule": __doc__.split("Rule, stated before the run: ")[1].split("\n\n")[0].strip(),
        "rule_grid": __doc__.split("Second rule ")[1].split("\n\n")[0].strip(),
        "current_defaults": current, "grid_vs_current": None if vs_current is None else vs_current.to_dict(),
        "adopt_grid_vs_current": adopt_vs_current,
        "rule_grid_vs_current": __doc__.split("Third rule ")[1].strip(),
        "command": " ".join(sys.argv),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    for k in f1:
        print(f"{k:40s} F1 {means[k]:.3f}")
    print(f"best item-head: {best}; vs grounded top-2: {vs_llm}; adopt: {adopt}")
    print(f"best of the grid: {grid_best}; vs expected-F1 <=3: {vs_default}; adopt: {adopt_grid}")
    print(f"best of the grid vs the current defaults ({current}): {vs_current}; adopt: {adopt_vs_current}")


if __name__ == "__main__":
    main()
