"""Parts 2 and 7 of the engine bench: one engine beside the default one, on the same structured requests,
in mirrored order (A B B A): dtype float32, compiled mode, vLLM's own thread binding, tcmalloc.

Ratios are of generated tokens per second: greedy text can differ between engines (other kernels, other
rounding), and then requests differ in length; "same text" says how many did not.

tcmalloc is measured only where Debian's ``libtcmalloc`` is installed (``apt-get install
libgoogle-perftools4``); the bench installs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import default_dtype
from bench._harness import Report, fmt_ratios, med, mirrored, paired_ratio, say, tput
from bench._worker import Pool, Worker

TCMALLOC_GLOBS = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so*", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so*",
                  "/usr/lib/*/libtcmalloc_minimal.so*", "/usr/lib/*/libtcmalloc.so*")


def find_tcmalloc() -> tuple[str | None, str]:
    """Debian's libtcmalloc if installed, and a note saying what was found."""
    for pattern in TCMALLOC_GLOBS:
        hits = sorted(Path("/").glob(pattern.lstrip("/")))
        if hits:
            return str(hits[0]), f"found {hits[0]}"
    return None, "libtcmalloc absent (apt-get install libgoogle-perftools4 to measure it)"


def run_pairs(start: Callable[..., Worker], pool: Pool, default: Worker, caches: dict[str, Path], *,
              quick: bool, rounds: int, cmp_prompts: list[str], tc_prompts: list[str],
              result: dict[str, Any]) -> None:
    """Parts 2 and 7: fills ``result`` with ``tcmalloc``, ``procs``, ``pairs`` and the compiled-warm start."""
    tc_path, tc_note = find_tcmalloc()
    say(f"tcmalloc: {tc_note}")
    result["tcmalloc"] = {"note": tc_note, "path": tc_path}
    others: list[tuple[str, dict[str, Any], Path, str | None, list[str]]] = []
    if not quick:
        others.append(("compiled-warm", {"enforce_eager": False}, caches["compiled"], None, cmp_prompts))
    # the dtype the default engine does not use (the default follows the hardware: agent.default_dtype)
    other_dtype = "bfloat16" if default_dtype() == "float32" else "float32"
    others.append((other_dtype, {"dtype": other_dtype}, caches["other"], None, cmp_prompts))
    if not quick:
        others.append(("threads-vllm", {"cpu_threads": "vllm"}, caches["other"], None, tc_prompts))
    if tc_path:
        others.append(("tcmalloc", {}, caches["other"], tc_path, tc_prompts))
    result["pairs"] = {}
    result["procs"] = {default.name: (default.ready or {}).get("procs")}
    for name, engine, cache, preload, batch_prompts in others:
        w = start(name, engine, cache, ld_preload=preload, batch=name == "compiled-warm")
        if name == "compiled-warm":
            result["starts"][name] = w.ready or {}
        result["procs"][name] = (w.ready or {}).get("procs")
        say(f"part {'7' if name == 'tcmalloc' else '2'}: {default.name} vs {name} on {len(batch_prompts)} "
            f"structured requests")
        runs = mirrored([default, w], {"op": "gen", "prompts": batch_prompts, "mode": "tide", "texts": True}, rounds)
        same = sum(a == b for a, b in zip(runs[default.name][0]["texts"], runs[name][0]["texts"], strict=True))
        for rs in runs.values():
            for r in rs:
                r.pop("texts", None)
        result["pairs"][name] = {"batch": len(batch_prompts), "runs": runs, "same_text": same}
        pool.stop(w)


def pair_ratios(res: dict[str, Any], name: str, key: str, rep: Report) -> tuple[float, list[float], float, float]:
    """Engine ``name`` over the default: tok/s (with each round's), req/s, tok/CPU-s; recorded as ``key``."""
    p = res["pairs"][name]
    a, b = p["runs"][res["default"]], p["runs"][name]
    tok, each = paired_ratio(a, b, "tok/s")
    req, cpu = paired_ratio(a, b, "req/s")[0], paired_ratio(a, b, "tok/CPU-s")[0]
    rep.summary[key] = {"tok_s": round(tok, 3), "req_s": round(req, 3), "tok_per_cpu_s": round(cpu, 3)}
    return tok, each, req, cpu


def _same(p: dict[str, Any]) -> str:
    return f"same text {p['same_text']}/{p['batch']}"


def pair_rows(res: dict[str, Any], rep: Report) -> None:
    """Rows of parts 2 and 7: ratios to the default engine (hardware dtype, eager, cpu_threads=auto, glibc)."""
    pairs, dflt = res["pairs"], res["default"]
    for other in ("float32", "bfloat16"):
        if other not in pairs:
            continue
        mine = "bfloat16" if other == "float32" else "float32"
        p = pairs[other]
        base, fp = p["runs"][dflt], p["runs"][other]
        key = "fp32_over_bf16" if other == "float32" else "bf16_over_fp32"
        tok, each, req, cpu = pair_ratios(res, other, key, rep)
        rep.row("2 dtype", f"{mine} default ({p['batch']} req)",
                f"{med(tput(r)[0] for r in base):6.2f} req/s {med(tput(r)[1] for r in base):7.1f} tok/s")
        rep.row("2 dtype", f"{other} / {mine}", f"{tok:6.3f} tok/s (rounds {fmt_ratios(each)}), {req:.3f} req/s, "
                f"{cpu:.3f} tok/CPU-s -> {mine} {1 / tok:.2f}x faster (wall), {1 / cpu:.2f}x (CPU)")
        rep.row("2 dtype", f"same greedy text {mine} vs {other}", f"{p['same_text']}/{p['batch']}; valid {other} "
                f"{fp[0]['valid']}/{fp[0]['n']}, {mine} {base[0]['valid']}/{base[0]['n']}")
    if "compiled-warm" in pairs:
        p = pairs["compiled-warm"]
        tok, each, req, cpu = pair_ratios(res, "compiled-warm", "compiled_over_eager", rep)
        rep.row("2 compile", f"compiled / eager, running ({p['batch']} req)",
                f"{tok:6.3f} tok/s (rounds {fmt_ratios(each)}), {req:.3f} req/s, {cpu:.3f} tok/CPU-s; {_same(p)}")
    if "threads-vllm" in pairs:
        p = pairs["threads-vllm"]
        tok, each, req, cpu = pair_ratios(res, "threads-vllm", "threads_vllm_over_auto", rep)
        rep.row("2 threads", f"cpu_threads vllm / auto ({p['batch']} req)",
                f"{tok:6.3f} tok/s (rounds {fmt_ratios(each)}), {req:.3f} req/s, {cpu:.3f} tok/CPU-s -> auto "
                f"{1 / tok:.2f}x faster; {_same(p)}")
        rep.row("2 threads", "OpenMP binding",
                f"auto: {res['bindings'].get(dflt)}; vllm: {res['bindings'].get('threads-vllm')}")
    if "tcmalloc" in pairs:
        p = pairs["tcmalloc"]
        tok, each, req, cpu = pair_ratios(res, "tcmalloc", "tcmalloc_over_glibc", rep)
        mapped = [q["name"] for q in (res.get("procs", {}).get("tcmalloc") or []) if q["tcmalloc"]]
        rep.row("7 tcmalloc", f"LD_PRELOAD / none ({p['batch']} req)", f"{tok:6.3f} tok/s (rounds "
                f"{fmt_ratios(each)}), {req:.3f} req/s, {cpu:.3f} tok/CPU-s; {_same(p)}; libtcmalloc mapped in "
                f"{len(mapped)} processes")
    rep.row("7 tcmalloc", "library", res["tcmalloc"]["note"])
