"""Interest prompt with the user's candidates (B, the default since 7ba574d) vs without them (A), on ML-100k
VALIDATION users (never test): seconds of the interest stage right after a choice pass (B repeats the choice
prompt up to its question, so vLLM can reuse that prefix's KV cache under Gemma 3's sliding window), and
interest F1 against the validation item's genres, paired.

    python scripts/interest_prompt_check.py [USERS=64]

The numbers in docs/RESULTS.md were measured by this script's first version (at 35f5aae, where B was built
by hand from the choice prompt); the agent's interest prompt now renders exactly that B (checked on 8 validation users).
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from agent import AgentConfig, GenerationRequest, InterestAgent, TransitionIndex, VLLMEngine  # noqa: E402
from agent._structured import generate_structured  # noqa: E402
from eval import interest_prf, leave_one_out, load_ml100k, paired_test, sample_users, to_datetime  # noqa: E402
from eval._tide import MemorySync, catalog_from_dataset  # noqa: E402
from memory import MemoryStore, SentenceTransformerEmbedder  # noqa: E402


def timed(name, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{name}: {dt:.1f} s", flush=True)
    return out, dt


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    ds = load_ml100k()
    split = leave_one_out(ds)
    users = [u for u in sample_users(split, n, 7) if u in split.val]
    emb = SentenceTransformerEmbedder.from_package()
    store = MemoryStore.open(Path(tempfile.mkdtemp()) / "m", embedder=emb)
    store.reconfigure(short_half_life_days=1 / 144)
    cat = catalog_from_dataset(ds, emb)
    reqs = [split.request(u, "val") for u in users]
    MemorySync(store, ds, progress=False).sync(reqs)
    eng = VLLMEngine.from_defaults()
    agent = InterestAgent(store, cat, eng, AgentConfig(retrieval={"w_co": 1.0}))
    agent = agent.with_sources(transitions=TransitionIndex.fit(split.train, cat.index))
    scored = agent.score_candidates(users, [to_datetime(int(r.now)) for r in reqs],
                                    histories=[list(r.history) for r in reqs], excludes=[list(r.exclude) for r in reqs])
    todo = agent.interest_requests(scored)
    b_reqs = [r for _, _, r in todo]
    a_reqs = []  # the same prompt without its candidates block (the interest prompt before 7ba574d)
    for r in b_reqs:
        cut = r.prompt[r.prompt.index("Candidates:"):r.prompt.index("Interest categories")]
        a_reqs.append(GenerationRequest(prompt=r.prompt.replace(cut, ""), max_tokens=r.max_tokens))
    models = [m for _, m, _ in todo]
    tok = eng.tokenizer
    print("tokens A", np.mean([len(tok.encode(r.prompt)) for r in a_reqs]),
          "B", np.mean([len(tok.encode(r.prompt)) for r in b_reqs]), flush=True)
    _, tc = timed("choice", lambda: agent.choice_probs(scored))
    outB, tB = timed("interests B (after choice)", lambda: generate_structured(eng, models, b_reqs))
    timed("choice again", lambda: agent.choice_probs(scored))
    outA, tA = timed("interests A (after choice)", lambda: generate_structured(eng, models, a_reqs))
    f = {}
    for name, out in (("A", outA), ("B", outB)):
        vals = []
        for (i, _, _), o in zip(todo, out, strict=True):
            labels = list(dict.fromkeys(x.label for x in o.value.interests)) if hasattr(o, "value") else []
            vals.append(interest_prf(labels, ds.items[split.val[users[i]].item_id].genres)[2])
        f[name] = np.asarray(vals)
        print(name, "F1", f[name].mean(), "valid", sum(hasattr(o, "value") for o in out) / len(out))
    print("B-A", paired_test(f["B"], f["A"]).to_dict())
    print(json.dumps({"users": len(todo), "choice_s": tc, "A_s": tA, "B_s": tB, "F1_A": f["A"].mean(),
                      "F1_B": f["B"].mean()}))
    eng.close()


if __name__ == "__main__":
    main()
