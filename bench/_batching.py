"""Part 3 of the engine bench: structured-generation throughput by batch size on the default engine
(``engine.generate``, prefix cache reset per batch). Batch 1 is run here; the larger batches are the
default engine's runs of parts 2, 6 and 7."""

from __future__ import annotations

from typing import Any

from bench._harness import METRICS, Report, med, say, tput
from bench._worker import Worker


def run_batch_one(default: Worker, prompts: list[str]) -> list[dict[str, Any]]:
    """Part 3: one structured request per call."""
    say("part 3: batch size 1")
    return [default.call({"op": "gen", "prompts": [p], "mode": "tide"}) for p in prompts]


def runs_by_batch_size(res: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Every timed ``engine.generate`` batch of the default engine, by its size."""
    o = res["overhead"]
    by_bs: dict[int, list[dict[str, Any]]] = {1: list(res["bs1"])}
    by_bs.setdefault(o["gen_batch"], []).extend(p["tide"] for p in o["gen_pairs"])
    for p in res["pairs"].values():
        by_bs.setdefault(p["batch"], []).extend(p["runs"][res["default"]])
    return by_bs


def batch_rows(res: dict[str, Any], rep: Report) -> None:
    """Part 3's rows: median requests/s, tokens/s and requests per CPU-second at each batch size."""
    by_bs = runs_by_batch_size(res)
    thr: dict[int, dict[str, Any]] = {}
    rep.summary["throughput"] = thr
    for bs in sorted(by_bs):
        rs = by_bs[bs]
        req, tok = med(tput(r)[0] for r in rs), med(tput(r)[1] for r in rs)
        thr[bs] = {"req_s": round(req, 3), "tok_s": round(tok, 1), "runs": len(rs),
                   "req_per_cpu_s": round(med(METRICS["req/CPU-s"](r) for r in rs), 3),
                   "tok_per_cpu_s": round(med(METRICS["tok/CPU-s"](r) for r in rs), 1)}
        rep.row("3 batch", f"batch {bs:3d} (median of {len(rs)})", f"{req:6.2f} req/s {tok:7.1f} tok/s "
                f"({med(r['tokens'] / r['n'] for r in rs):.0f} tok/req, {med(r['seconds'] for r in rs):.1f}s/batch, "
                f"{thr[bs]['req_per_cpu_s']:.2f} req/CPU-s)")
