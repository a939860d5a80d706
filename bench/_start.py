"""Part 1 of the engine bench: engine start (eager vs compiled, cold vs warm compile cache), and the
verdict on the CLI's default; also how every bench engine is started.

Each start is a fresh worker process that times its own interpreter start, imports, engine construction,
first answer, and (for part 1) a first batch of 16 structured requests: a one-off CLI call for 16 users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import Report, say, wait_for_memory
from bench._worker import Pool, Worker

KV_GIB = "2"  # VLLM_CPU_KVCACHE_SPACE of every bench engine
#: anonymous memory of one engine with a 2 GiB KV cache: worker ~4.1 GiB, EngineCore ~1 GiB, client ~1.6 GiB
ENGINE_GIB = 7.5
#: the default engine every other one is compared with: the CLI's settings
DEFAULT_ENGINE = {"dtype": "bfloat16", "enforce_eager": True, "cpu_threads": "auto"}
START_KEYS = ("interpreter_s", "import_s", "construct_s", "first_s", "batch_s", "to_first_answer_s", "cli16_s",
              "cpu_import_s", "cpu_construct_s", "cpu_first_s", "cpu_batch_s")


def start_times(msg: dict[str, Any]) -> None:
    """Add the times to answers to a worker's "ready" message."""
    msg["to_first_answer_s"] = msg["interpreter_s"] + msg["import_s"] + msg["construct_s"] + msg["first_s"]
    # a one-off CLI with 16 users: start the process, start the engine, answer one batch of 16
    msg["cli16_s"] = msg["interpreter_s"] + msg["import_s"] + msg["construct_s"] + msg["batch_s"]


@dataclass
class Starter:
    """Starts bench engines: each in its own worker, with its own compile cache, after memory allows."""

    pool: Pool
    logdir: Path
    first_prompt: str
    batch_prompts: list[str]
    bindings: dict[str, str]

    def __call__(self, name: str, engine: dict[str, Any], cache: Path, ld_preload: str | None = None,
                 batch: bool = False) -> Worker:
        """A ready worker; ``batch``: also time a first batch of 16 (part 1's one-off CLI), else one answer."""
        wait_for_memory(ENGINE_GIB)
        say(f"starting worker {name}: {engine}" + (f" LD_PRELOAD={ld_preload}" if ld_preload else ""))
        env: dict[str, str | None] = {
            "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": KV_GIB, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1",
            "VLLM_CACHE_ROOT": str(cache), "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
            "VLLM_CPU_OMP_THREADS_BIND": None,  # let cpu_threads decide ("vllm" = vLLM's own default)
            "LD_PRELOAD": ld_preload}
        config = {"engine": {**DEFAULT_ENGINE, **engine}, "first_prompt": self.first_prompt,
                  "batch_prompts": self.batch_prompts if batch else []}
        w = self.pool.start(lambda: Worker(name, "bench._engine_worker", config, logdir=self.logdir, env=env,
                                           derive=start_times))
        r = w.ready or {}
        self.bindings[name] = r["binding"]
        say(f"  {name}: interpreter {r['interpreter_s']:.1f}s import {r['import_s']:.1f}s construct "
            f"{r['construct_s']:.1f}s ({r['cpu_construct_s']:.1f} CPU-s) first answer {r['first_s']:.1f}s"
            + (f" batch16 {r['batch_s']:.1f}s" if batch else "") + f"; {r['binding']}")
        return w


def run_starts(start: Callable[..., Worker], pool: Pool, caches: dict[str, Path], quick: bool
               ) -> tuple[Worker, dict[str, dict[str, Any]]]:
    """Part 1: the default engine (left running: it serves every later part) and each start's times.

    At most two engines are alive at once (each holds ~7 GB RSS across its three processes).
    """
    starts: dict[str, dict[str, Any]] = {}
    if quick:  # one start only: eager with a fresh cache
        default = start("eager-cold", {}, caches["eager"], batch=True)
        starts["eager-cold"] = default.ready or {}
        return default, starts
    for name, engine, cache in (("eager-cold", {}, "eager"), ("compiled-cold", {"enforce_eager": False}, "compiled")):
        w = start(name, engine, caches[cache], batch=True)
        starts[name] = w.ready or {}
        pool.stop(w)
    default = start("eager-warm", {}, caches["eager"], batch=True)
    starts["eager-warm"] = default.ready or {}
    return default, starts


def start_rows(res: dict[str, Any], rep: Report) -> None:
    """Part 1's rows: each start's wall and CPU times, and the time to answers."""
    starts = res["starts"]
    for name, s in starts.items():
        rep.row("1 start", f"{name} wall", f"import {s['interpreter_s'] + s['import_s']:5.1f}s  construct "
                f"{s['construct_s']:6.1f}s  1st answer {s['first_s']:5.1f}s  batch16 {s['batch_s']:5.1f}s "
                f"({s['batch_valid']}/{s['batch_n']} valid)")
        rep.row("1 start", f"{name} CPU-s", f"import {s['cpu_import_s']:5.1f}   construct "
                f"{s['cpu_construct_s']:6.1f}   1st answer {s['cpu_first_s']:5.1f}   batch16 {s['cpu_batch_s']:5.1f}")
        rep.row("1 start", f"{name} time to answers", f"1st answer {s['to_first_answer_s']:6.1f}s  one-off CLI x16 "
                f"{s['cli16_s']:6.1f}s wall, {_cli_cpu(s):6.1f} CPU-s")
    rep.summary["starts"] = {k: {x: round(v[x], 2) for x in START_KEYS} for k, v in starts.items()}


def _cli_cpu(s: dict[str, Any]) -> float:
    return s["cpu_import_s"] + s["cpu_construct_s"] + s["cpu_batch_s"]


def verdict_rows(res: dict[str, Any], rep: Report) -> None:
    """The verdict on the CLI default (part 1 + compiled steady state from part 2); needs a full run."""
    starts, summ = res["starts"], rep.summary
    if "compiled-warm" not in starts:
        return
    e, c, cc = starts[res["default"]], starts["compiled-warm"], starts["compiled-cold"]
    faster = "eager" if e["cli16_s"] <= c["cli16_s"] else "compiled"
    e_cpu, c_cpu = _cli_cpu(e), _cli_cpu(c)
    summ["cli_default_wall"] = faster
    summ["cli_default_cpu"] = "eager" if e_cpu <= c_cpu else "compiled"
    rep.row("1 verdict", "one-off CLI, 16 answers", f"{faster} soonest: eager {e['cli16_s']:.1f}s vs compiled warm "
            f"{c['cli16_s']:.1f}s / cold {cc['cli16_s']:.1f}s wall; {e_cpu:.0f} vs {c_cpu:.0f} / "
            f"{_cli_cpu(cc):.0f} CPU-s")
    rep.row("1 verdict", "first answer (1 request)", f"eager {e['to_first_answer_s']:.1f}s vs compiled warm "
            f"{c['to_first_answer_s']:.1f}s / cold {cc['to_first_answer_s']:.1f}s wall")
    co = summ.get("compiled_over_eager", {})
    bs = res["pairs"]["compiled-warm"]["batch"]
    parts = []
    for label, speed, rate, extra in (
            ("CPU", co.get("tok_per_cpu_s"), summ["throughput"][bs]["req_per_cpu_s"],
             c["cpu_construct_s"] - e["cpu_construct_s"]),
            ("wall", co.get("tok_s"), summ["throughput"][bs]["req_s"], c["construct_s"] - e["construct_s"])):
        if not speed or speed <= 1:
            parts.append(f"never by {label} (not faster once running: {speed})")
            continue
        saved = 1 / rate - 1 / (rate * speed)  # seconds saved per (eager-length) request once running
        n = max(0.0, extra) / saved
        summ[f"compiled_break_even_requests_{label.lower()}"] = round(n)
        parts.append(f"~{n:.0f} requests by {label} (+{extra:.0f}s to start, {speed:.2f}x once running)")
    rep.row("1 verdict", "compiled (warm cache) pays off after", "; ".join(parts))
