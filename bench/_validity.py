"""Part 4 of the engine bench: the valid-output rate of ``generate_structured`` (the agent's path for
interests) over distinct prompts, in batches of 32, with the agent's number of attempts."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from bench._harness import Report, say
from bench._worker import Worker


def run_validity(default: Worker, prompts: list[str], attempts: int) -> dict[str, Any]:
    """Part 4: one ``structured`` command over every prompt."""
    say(f"part 4: generate_structured on {len(prompts)} distinct prompts, batches of 32, {attempts} attempts")
    return default.call({"op": "structured", "prompts": prompts, "batch_size": 32, "attempts": attempts})


def reason_kind(reason: str) -> str:
    """A short category for a structured-output failure reason."""
    if "finish_reason=length" in reason:
        return "cut at max_tokens"
    if "labels repeat" in reason:
        return "repeated interest label"
    if "Invalid JSON" in reason or "EOF" in reason:
        return "invalid JSON"
    return re.sub(r"\d+", "#", reason)[:70]


def validity_rows(res: dict[str, Any], rep: Report) -> None:
    """Part 4's rows: valid on the first attempt, within the retries, and why attempts failed."""
    v = res["validity"]
    per = v["per"]
    n = len(per)
    first = sum(1 for p in per if p["ok"] and p["attempts"] == 1)
    ok = sum(1 for p in per if p["ok"])
    first_reasons = Counter(reason_kind(p["reasons"][0]) for p in per if p["reasons"])
    final_reasons = Counter(reason_kind(p["reasons"][-1]) for p in per if not p["ok"])
    attempts_hist = Counter(p["attempts"] for p in per if p["ok"])
    repeats = sum(1 for p in per if p["ok"] and p.get("repeated_labels"))
    rep.summary["validity"] = {
        "n": n, "first_attempt_pct": round(100 * first / n, 2), "within_2_retries_pct": round(100 * ok / n, 2),
        "attempts_of_valid": dict(attempts_hist), "first_failure_reasons": dict(first_reasons),
        "final_failure_reasons": dict(final_reasons), "valid_with_repeated_labels": repeats,
        "seconds": round(v["seconds"], 1)}
    rep.row("4 valid", f"first attempt ({n} distinct prompts)", f"{100 * first / n:6.2f}% ({first}/{n})")
    rep.row("4 valid", "within 2 retries (3 attempts)", f"{100 * ok / n:6.2f}% ({ok}/{n}; target >= 99.5%; valid "
            f"after 1/2/3 attempts: {attempts_hist.get(1, 0)}/{attempts_hist.get(2, 0)}/{attempts_hist.get(3, 0)})")
    rep.row("4 valid", "first-attempt failure reasons",
            "; ".join(f"{k}: {c}" for k, c in first_reasons.most_common()) or "none")
    rep.row("4 valid", "final failure reasons",
            "; ".join(f"{k}: {c}" for k, c in final_reasons.most_common()) or "none")
    rep.row("4 valid", "valid but a label repeated", f"{repeats}/{ok} (the agent merges them: _merge_repeats)")
    rep.row("4 valid", "generate_structured, batches of 32", f"{n / v['seconds']:6.2f} req/s incl. retries "
            f"({v['seconds']:.0f}s)")
