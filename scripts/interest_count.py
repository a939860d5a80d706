"""How many interests should the agent and the memory model state? Chosen on ML-100k VALIDATION items (never
test), by interest F1 against the validation item's genres.

    python scripts/interest_count.py [--users 128] [--out docs/results/interest-count.json]

Set-up as ``scripts/prompt_budget.py`` (``scripts/_validation.py``): memory filled up to each sampled user's
validation item, the agent's default prompt. One LLM pass writes every user's constrained interests (at most
three, in the LLM's order); from it, without further LLM calls, the script scores

- ``llm`` — the labels as the LLM wrote them (what the harness has reported so far);
- ``grounded`` — the same after grounding (``InterestAgent.grounded_interests``: labels the memory's profile
  supports first), which is what ``InterestAgent.predict`` returns;
- either of them cut to its first 1 or 2 labels;
- ``profile top-k`` (k = 1, 2, 3) — the memory model's interests: the short horizon's top categories.

F1 counts a label once (precision over the stated labels, recall over the item's genres), so the number of
labels stated is a real choice: one confident label scores 0.67 on a two-genre item it hits, three labels
with one hit 0.40.

Rule, stated before the run: each model states as many interests as its best validation F1 asks for (the
agent among ``grounded top-1``, ``top-2`` and ``grounded`` — the harness scores what ``predict`` returns;
the ``llm`` rows are for information — the memory model among ``profile top-k``; ties: fewer labels);
``AgentConfig.max_interests`` and the memory model's count are set to the winners, and the test numbers are
whatever the next main job measures. Paired tests: every variant against ``llm`` (the current agent) and
against ``profile top-3`` (the current memory model).
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

from eval import bootstrap_ci, interest_prf, paired_test  # noqa: E402


def variants(agent, scored, answers) -> dict[str, list[list[str]]]:
    """Each variant's labels per user (see the module docstring)."""
    out: dict[str, list[list[str]]] = {}
    raw, grounded, prof = [], [], []
    for s, a in zip(scored, answers, strict=True):
        ok = hasattr(a, "value")
        raw.append(list(dict.fromkeys(x.label for x in a.value.interests)) if ok else [])
        grounded.append([x.label for x in agent.grounded_interests(s.context, a.value)[0]] if ok else [])
        prof.append([x.name for x in s.context.profile.short.top_attributes[:3]])
    for name, labels in (("llm", raw), ("grounded", grounded)):
        out[name] = labels
        for k in (1, 2):
            out[f"{name} top-{k}"] = [x[:k] for x in labels]
    for k in (1, 2, 3):
        out[f"profile top-{k}"] = [x[:k] for x in prof]
    return out


def pick(means: dict[str, float], family: list[str]) -> str:
    """The family member with the highest mean; ties: the first listed (fewer labels are listed first)."""
    return max(family, key=lambda n: (means[n], -family.index(n)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/results/interest-count.json")
    args = p.parse_args()

    v = validation_setup(args.users, args.seed)
    agent = v.base.with_config(max_interests=3)
    scored = agent.score_candidates(v.users, v.nows, **v.kw)
    t0 = time.perf_counter()
    answers = agent.llm_interests(scored)
    seconds = time.perf_counter() - t0
    v.engine.close()
    genres = [v.ds.items[v.split.val[u].item_id].genres for u in v.users]
    labels = variants(agent, scored, answers)
    f1 = {name: np.asarray([interest_prf(x, g)[2] for x, g in zip(ls, genres, strict=True)])
          for name, ls in labels.items()}
    means = {k: float(x.mean()) for k, x in f1.items()}
    agent_family = ["grounded top-1", "grounded top-2", "grounded"]
    memory_family = ["profile top-1", "profile top-2", "profile top-3"]
    chosen = {"agent": pick(means, agent_family), "memory": pick(means, memory_family)}
    report = {
        "users": len(v.users), "llm_seconds": seconds,
        "valid": sum(hasattr(a, "value") for a in answers) / len(answers),
        "mean_labels": {k: float(np.mean([len(x) for x in ls])) for k, ls in labels.items()},
        "f1": {k: bootstrap_ci(x).to_dict() for k, x in f1.items()},
        "paired": [{"model": k, "baseline": b, **paired_test(f1[k], f1[b]).to_dict()}
                   for b in ("llm", "profile top-3") for k in f1 if k != b],
        "chosen": chosen,
        "rule": __doc__.split("Rule, stated before the run: ")[1].split("\n\n")[0].strip(),
        "command": " ".join(sys.argv),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for k in f1:
        print(f"{k:16s} F1 {means[k]:.3f}  labels {report['mean_labels'][k]:.2f}")
    print("chosen:", chosen)


if __name__ == "__main__":
    main()
