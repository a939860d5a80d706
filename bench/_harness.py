"""What every bench shares: the machine's state, CPU-seconds of a process tree, paired ratios, the table.

Other jobs may share the machine, so the benches compare like with like in one run and print RATIOS
(median over rounds that ran back to back), which are far more robust to background load than absolute
numbers; CPU-seconds are disturbed much less than wall time. Standard library only (see ``bench``).
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

Row = tuple[str, str, str]  # (section, metric, value) of a result table


# ------------------------------------------------------------------------------------------------------
# the machine
# ------------------------------------------------------------------------------------------------------
def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def load_line() -> str:
    """``load average 1.02 0.98 0.90 on 2 cores``: printed beside timings (> cores means contention)."""
    return f"load average {loadavg()} on {os.cpu_count()} cores"


def mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def say(msg: str) -> None:
    """A progress line with the wall clock and the load average."""
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] {msg}", flush=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, ``kill``) into ``SystemExit``, so ``finally`` blocks still end the workers
    and their engines (they run in their own sessions and would outlive this process)."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def wait_for_memory(need_gib: float, max_wait_s: float = 900) -> None:
    """Hold off starting something big while other jobs leave too little memory for it (no OOM kills)."""
    t0 = time.monotonic()
    if mem_available_gib() >= need_gib:
        return
    say(f"only {mem_available_gib():.1f} GiB available, an engine needs ~{need_gib:.0f}: waiting up to "
        f"{max_wait_s / 60:.0f} min for other jobs")
    while mem_available_gib() < need_gib and time.monotonic() - t0 < max_wait_s:
        time.sleep(10)
    say(f"  {mem_available_gib():.1f} GiB available after {time.monotonic() - t0:.0f}s; starting")


# ------------------------------------------------------------------------------------------------------
# process trees (vLLM's EngineCore and Worker run below the process that made the engine)
# ------------------------------------------------------------------------------------------------------
def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                parents[int(p.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(c for c, pp in parents.items() if pp == pid)
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by ``root`` and its live descendants (all their threads).

    CPU time is far less sensitive than wall time to other jobs on the machine (it still grows a little
    under contention: cache misses, OpenMP spin-waits)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return total


def proc_tree(root: int) -> list[dict[str, Any]]:
    """``root`` and its descendants: pid, name, RSS (MiB), whether libtcmalloc is mapped."""
    out = []
    for pid in descendants(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        name = re.search(r"Name:\s*(\S+)", status)
        rss = re.search(r"VmRSS:\s*(\d+)", status)
        out.append({"pid": pid, "name": name.group(1) if name else "?",
                    "rss_mib": round(int(rss.group(1)) / 1024) if rss else None, "tcmalloc": "libtcmalloc" in maps})
    return out


# ------------------------------------------------------------------------------------------------------
# timed runs and their ratios; a run is a dict with n (requests), seconds, cpu_s and optionally tokens
# ------------------------------------------------------------------------------------------------------
METRICS: dict[str, Callable[[dict[str, Any]], float]] = {
    "req/s": lambda r: r["n"] / r["seconds"],
    "tok/s": lambda r: r.get("tokens", 0) / r["seconds"],
    "req/CPU-s": lambda r: r["n"] / r["cpu_s"],
    "tok/CPU-s": lambda r: r.get("tokens", 0) / r["cpu_s"],
}


def med(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def tput(run: dict[str, Any]) -> tuple[float, float]:
    """(requests/s, generated tokens/s) of one timed batch."""
    return METRICS["req/s"](run), METRICS["tok/s"](run)


def median_ratio(num: Sequence[float], den: Sequence[float]) -> tuple[float, list[float]]:
    """Median over rounds of ``num[i] / den[i]`` (round i of both ran back to back), and each round's."""
    ratios = [x / y for x, y in zip(num, den, strict=True)]
    return statistics.median(ratios), ratios


def paired_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]], metric: str) -> tuple[float, list[float]]:
    """Median over rounds of metric(b) / metric(a) (round i of a and b ran back to back)."""
    f = METRICS[metric]
    return median_ratio([f(y) for y in b], [f(x) for x in a])


def fmt_ratios(xs: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


class Caller(Protocol):
    """Something that runs a timed command: a bench worker."""

    name: str

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]: ...


def mirrored(workers: Sequence[Caller], cmd: dict[str, Any], rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Run ``cmd`` on every worker in mirrored order (A B C C B A ...): a linear drift in background load
    then hits every worker alike."""
    runs: dict[str, list[dict[str, Any]]] = {w.name: [] for w in workers}
    order = list(workers)
    for r in range(rounds):
        for w in order if r % 2 == 0 else reversed(order):
            res = w.call(cmd)
            runs[w.name].append(res)
            say(f"  {w.name:14s} {res['n']:3d} req {res['seconds']:7.2f}s {res['cpu_s']:7.2f} CPU-s "
                f"{tput(res)[1]:7.1f} tok/s")
    return runs


def alternating(call: Callable[[str], dict[str, Any]], modes: tuple[str, str], pairs: int) -> list[dict[str, Any]]:
    """``pairs`` back-to-back runs of both modes, the first one first in even pairs (A B, B A, A B ...)."""
    out = []
    for i in range(pairs):
        order = modes if i % 2 == 0 else modes[::-1]
        pair = {m: call(m) for m in order}
        out.append(pair)
        say(f"  pair {i + 1}: " + " ".join(f"{m} {pair[m]['seconds']:.2f}s" for m in modes))
    return out


# ------------------------------------------------------------------------------------------------------
# the result table
# ------------------------------------------------------------------------------------------------------
def format_table(rows: Sequence[Row]) -> str:
    """Rows (section, metric, value) as an aligned table; a section's name is printed once."""
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    lines = [f"{'part':{w1}s}  {'metric':{w2}s}  value", "-" * (w1 + w2 + 60)]
    last = None
    for section, metric, value in rows:
        lines.append(f"{section if section != last else '':{w1}s}  {metric:{w2}s}  {value}")
        last = section
    return "\n".join(lines)


class Report:
    """A result table being built (``rows``) and the summary numbers that go with it (``summary``)."""

    def __init__(self, summary: dict[str, Any]) -> None:
        self.rows: list[Row] = []
        self.summary = summary

    def row(self, section: str, metric: str, value: str) -> None:
        self.rows.append((section, metric, value))


# ------------------------------------------------------------------------------------------------------
# variants in fresh processes (benches whose variants differ in process-wide state: env, preloads, threads)
# ------------------------------------------------------------------------------------------------------
def run_variant(module: str, args: Sequence[str], variant: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module *args`` and return the JSON line it prints starting with ``{"variant"``.

    Raises:
        SystemExit: The child failed or printed no result (its output's tail is in the message).
    """
    import json
    import subprocess

    res = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
    line = [x for x in res.stdout.splitlines() if x.startswith('{"variant"')]
    if res.returncode or not line:
        raise SystemExit(f"{variant} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    print(line[0], flush=True)
    return json.loads(line[0])


def mean_by_variant(rows: Sequence[dict[str, Any]], variants: Sequence[str], keys: Sequence[str],
                    digits: int = 2) -> dict[str, dict[str, float]]:
    """Each variant's mean of ``keys`` over its rows."""
    out = {}
    for v in variants:
        mine = [x for x in rows if x["variant"] == v]
        out[v] = {k: round(sum(x[k] for x in mine) / len(mine), digits) for k in keys}
    return out


def write_result(path: str | Path, rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
    """``{"command", "rows", "summary"}`` as JSON at ``path``; the summary printed."""
    import json

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": list(rows), "summary": summary}, indent=2))
    print(json.dumps(summary, indent=2))


def emit(report: dict[str, Any], path: Path | None, indent: int = 2) -> None:
    """A bench's report printed as JSON and, with a ``path``, written there too."""
    import json

    text = json.dumps(report, indent=indent)
    print(text)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
