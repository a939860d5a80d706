"""Parts 5 and 6 of the engine bench on the default engine: choice scoring (``score_choices``) with the
agent's rank prompt (20 candidates A..T), and Tide's overhead against raw ``vllm.LLM.generate`` on the same
requests (interleaved pairs after a warm-up; every timed Tide call also measures its own share)."""

from __future__ import annotations

import statistics
from typing import Any

from bench._batching import runs_by_batch_size
from bench._harness import Report, alternating, med, median_ratio, say, tput
from bench._worker import Worker


def run_overhead(default: Worker, gen_prompts: list[str], score_prompts: list[str], labels: list[str],
                 pairs: int) -> dict[str, Any]:
    """Parts 5 and 6: ``engine.generate`` and ``score_choices`` against raw vLLM, ``pairs`` pairs each."""
    say(f"part 6: engine.generate vs LLM.generate, {len(gen_prompts)} structured requests, warm-up + {pairs} pairs")
    gen_cmd = {"op": "gen", "prompts": gen_prompts}
    gen_warm = default.call({**gen_cmd, "mode": "tide"})
    gen_pairs = alternating(lambda m: default.call({**gen_cmd, "mode": m}), ("tide", "raw"), pairs)
    say(f"part 5/6: score_choices vs LLM.generate(logprob_token_ids), {len(score_prompts)} rank prompts")
    score_cmd = {"op": "score", "prompts": score_prompts, "labels": labels}
    score_warm = default.call({**score_cmd, "mode": "tide"})
    score_pairs = alternating(lambda m: default.call({**score_cmd, "mode": m}), ("tide", "raw"), pairs)
    # diagnostic: label mass if the template's trailing newline were kept after "Answer:" (the agent strips it)
    newline = default.call({**score_cmd, "prompts": [p + "\n" for p in score_prompts], "mode": "tide"})
    return {"gen_batch": len(gen_prompts), "gen_warmup": gen_warm, "gen_pairs": gen_pairs,
            "score_batch": len(score_prompts), "score_warmup": score_warm, "score_pairs": score_pairs,
            "score_newline": newline, "rank_prompt_tail": score_prompts[0][-40:]}


def choice_rows(res: dict[str, Any], rep: Report) -> None:
    """Part 5's rows: score_choices speed and the probability mass on the label tokens."""
    o = res["overhead"]
    sc = [p["tide"] for p in o["score_pairs"]]
    score = rep.summary["score"] = {
        "req_s": round(med(tput(r)[0] for r in sc), 3), "batch": o["score_batch"],
        "label_mass": round(statistics.fmean(r["label_mass"] for r in sc), 5),
        "label_mass_with_trailing_newline": round(o["score_newline"]["label_mass"], 5),
        "warmup_s": round(o["score_warmup"]["seconds"], 2)}
    rep.row("5 choices", f"score_choices, 20 labels ({o['score_batch']} req)",
            f"{score['req_s']:6.2f} req/s ({med(r['seconds'] for r in sc):.1f}s/batch; first call "
            f"{o['score_warmup']['seconds']:.1f}s)")
    rep.row("5 choices", "label mass on ' A'..' T'", f"{score['label_mass']:.3f} (prompt ends "
            f"{o['rank_prompt_tail'][-10:]!r}); {score['label_mass_with_trailing_newline']:.5f} if it ended "
            f"'Answer:\\n' (the template's own ending)")


def overhead_rows(res: dict[str, Any], rep: Report) -> None:
    """Part 6's rows: Tide / raw time ratio (A/B pairs) and Tide's own share inside each timed call."""
    o = res["overhead"]
    by_bs = runs_by_batch_size(res)
    for kind, kpairs, warm in (("generate", o["gen_pairs"], o["gen_warmup"]),
                               ("score_choices", o["score_pairs"], o["score_warmup"])):
        m, ratios = median_ratio([p["tide"]["seconds"] for p in kpairs], [p["raw"]["seconds"] for p in kpairs])
        # every timed tide call measured its own share; for generate that is every batch of part 3
        tides = [warm] + ([r for rs in by_bs.values() for r in rs] if kind == "generate" else [p["tide"] for p in kpairs])
        share = med((r["seconds"] - r["inner_s"]) / r["inner_s"] for r in tides)
        per_req_ms = med((r["seconds"] - r["inner_s"]) / r["n"] * 1000 for r in tides)
        same = all(p["tide"].get("tokens") == p["raw"].get("tokens") and p["tide"].get("best") == p["raw"].get("best")
                   for p in kpairs)
        rep.summary[f"overhead_{kind}"] = {
            "ab_median_ratio": round(m, 4), "ab_ratios": [round(x, 4) for x in ratios],
            "in_call_share": round(share, 5), "in_call_ms_per_req": round(per_req_ms, 3),
            "in_call_samples": len(tides), "same_output": same}
        rep.row("6 overhead", f"tide / raw {kind} (A/B)", f"{m:6.3f} median time ratio ({100 * (m - 1):+.1f}%; "
                f"pairs {', '.join(f'{x:.3f}' for x in ratios)}); identical output: {same}")
        rep.row("6 overhead", f"tide's own time in {kind}", f"{100 * share:+6.2f}% of LLM.generate "
                f"({per_req_ms:.2f} ms/req, median of {len(tides)} calls; target <= 10%)")
