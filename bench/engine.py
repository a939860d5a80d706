"""Benchmark of the embedded LLM engine (``VLLMEngine`` on the CPU backend): start, speed, validity, overhead.

Usage::

    .venv/bin/python bench/engine.py            # full run (~25 min on an otherwise idle 2-core machine)
    .venv/bin/python bench/engine.py --quick    # smaller run (~7 min idle): no compiled mode, smaller batches
    .venv/bin/python bench/engine.py --summarize runs/bench/engine.json   # the table of a finished run again

Every engine runs in its own worker subprocess (``bench/engine.py --worker``), started with a fresh
environment (``VLLM_CPU_KVCACHE_SPACE=2``, a temp ``VLLM_CACHE_ROOT``/``TORCHINDUCTOR_CACHE_DIR``), that
times its own start (import, engine construction, first answer, and for part 1 a first batch of 16
structured requests), then serves timed commands from this process. Other jobs may share this machine,
so each engine is compared with the default engine side by side in one run, in mirrored order
(A B B A), and the table prints RATIOS, which are far more robust to background load than absolute
numbers; it also prints CPU-seconds (the worker's whole process tree), which other jobs disturb much
less than wall time. The load average is printed at start and end. At most two engines are alive at
once (~7 GiB each); a worker whose engine is killed from outside is restarted once.

Parts:

1. Engine start: ``enforce_eager=True`` vs compiled (``enforce_eager=False``), each cold (fresh compile
   cache) and warm (second start, same cache); time to the first answers of a one-off CLI call.
2. dtype bfloat16 vs float32, ``cpu_threads`` "auto" (Tide binds all cores) vs "vllm" (vLLM's binding),
   and compiled vs eager steady-state throughput, on the same structured requests.
3. Batched structured generation with the agent's real interest schema and prompts: batch 1, 8, 16, 32.
4. Valid-output rate over >= 200 distinct structured requests (``generate_structured``, 3 attempts).
5. Choice scoring (``score_choices``) with the real rank prompt (20 candidates A-T).
6. Tide's overhead against raw ``vllm.LLM.generate`` on the same engine (interleaved, median ratio).
7. tcmalloc (``LD_PRELOAD``) vs glibc malloc on a structured batch of 32.

Prompts are synthetic MovieLens-like users (seeded): 8 recent + 6 long-range behaviors rendered with
the real ``predict``/``rank`` templates; the schema is ``interest_output_model(18 genres, 14)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# This file lives beside bench/memory.py and bench/eval.py, which would shadow the `memory` and `eval`
# packages: drop bench/ from sys.path and put the repository root first. (vLLM's spawned engine processes
# re-import this module as __mp_main__, so the top level must stay light: stdlib only.)
_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

#: MovieLens-100k genres (without "unknown"); the catalog's taxonomy is their sorted set
GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
          "Western")
TAXONOMY = sorted(GENRES)
LABELS = tuple("ABCDEFGHIJKLMNOPQRST")  # the agent's 20 one-token choice labels
N_RECENT, N_LONG = 8, 6  # AgentConfig defaults: the prompt shows 14 numbered behaviors
N_EVIDENCE = N_RECENT + N_LONG
MAX_TOKENS = 160  # AgentConfig.interest_max_tokens
ATTEMPTS = 3  # AgentConfig.attempts: 1 try + 2 retries
KV_GIB = "2"
#: anonymous memory of one engine with a 2 GiB KV cache: worker ~4.1 GiB, EngineCore ~1 GiB, client ~1.6 GiB
ENGINE_GIB = 7.5
TCMALLOC_GLOBS = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so*", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so*",
                  "/usr/lib/*/libtcmalloc_minimal.so*", "/usr/lib/*/libtcmalloc.so*")

_ADJ = ("Silent Lost Last Dark Golden Broken Hidden Wild Secret Crimson Frozen Distant Little Burning Endless "
        "Restless Midnight Electric Quiet Savage Lonely Iron Velvet Hollow Brave").split()
_NOUN = ("River Kingdom Heart Stranger Empire Garden Mirror Highway Letter Island Storm Shadow Promise Circus "
         "Harbor Machine Orchard Frontier Lantern Summer Detective Castle Voyage Symphony Horizon").split()


# ------------------------------------------------------------------------------------------------------
# workload: synthetic users rendered with the real templates
# ------------------------------------------------------------------------------------------------------
def _item(rng: random.Random, favourites: Sequence[str]) -> tuple[str, int, list[str]]:
    pattern = rng.randrange(4)
    a, n, n2 = rng.choice(_ADJ), rng.choice(_NOUN), rng.choice(_NOUN)
    title = [f"The {a} {n}", f"{a} {n}", f"{n} of the {a} {n2}", f"{n}, {n2} and Me"][pattern]
    k = rng.choice((1, 1, 2, 2, 3))
    first = rng.choice(favourites) if favourites and rng.random() < 0.75 else rng.choice(GENRES)
    genres = {first} | set(rng.sample(GENRES, k - 1))
    return title, rng.randint(1930, 1998), sorted(genres, key=GENRES.index)


def _shares(genre_lists: Sequence[Sequence[str]]) -> list[str]:
    counts = Counter(g for gs in genre_lists for g in gs)
    total = sum(counts.values()) or 1
    return [f"{g} {round(100 * c / total)}%" for g, c in counts.most_common(4)]


def synthetic_history(rng: random.Random) -> dict[str, Any]:
    """Template variables of ``_history.j2`` for one synthetic MovieLens-like user (see prompt_history)."""
    short_fav = rng.sample(GENRES, rng.randint(1, 3))
    long_fav = rng.sample(GENRES, rng.randint(1, 3))
    now = date(1998, 4, 22) - timedelta(days=rng.randint(0, 200))
    recent_days = sorted((rng.randint(0, 40) for _ in range(N_RECENT)), reverse=True)  # oldest first
    recent, long_range, rg, lg = [], [], [], []
    for i, d in enumerate(recent_days):
        title, year, genres = _item(rng, short_fav)
        rg.append(genres)
        recent.append({"idx": i + 1, "when": (now - timedelta(days=d)).isoformat(), "action": "rated",
                       "text": f'Rated "{title}" ({year}; {", ".join(genres)}) {rng.randint(1, 5)}/5.'})
    for j in range(N_LONG):
        title, year, genres = _item(rng, long_fav)
        lg.append(genres)
        long_range.append({"idx": N_RECENT + j + 1,
                           "when": (now - timedelta(days=rng.randint(60, 700))).isoformat(), "action": "rated",
                           "text": f'Rated "{title}" ({year}; {", ".join(genres)}) {rng.randint(1, 5)}/5.'})
    return {"recent": recent, "long_range": long_range, "short_shares": _shares(rg),
            "long_shares": _shares(lg + rg)}


def predict_prompts(n: int, seed: int) -> list[str]:
    """``n`` distinct interest prompts, exactly as ``InterestAgent.interest_prompt`` renders them."""
    import prompts
    from agent._schemas import MAX_INTERESTS

    rng = random.Random(seed)
    return [prompts.render("predict", categories=TAXONOMY, max_interests=MAX_INTERESTS, **synthetic_history(rng))
            for _ in range(n)]


def rank_prompts(n: int, seed: int) -> list[str]:
    """``n`` distinct choice prompts with 20 candidates, as ``InterestAgent.rank_prompt`` renders them."""
    import prompts

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        hist = synthetic_history(rng)
        cands = []
        for label in LABELS:
            title, year, genres = _item(rng, GENRES)
            cands.append({"label": label, "title": f"{title} ({year})", "categories": genres})
        # as InterestAgent.rank_prompt: the template file ends in a newline, the agent strips it so the
        # " A"-style label tokens are the natural next token after "Answer:"
        out.append(prompts.render("rank", candidates=cands, **hist).rstrip("\n"))
    return out


# ------------------------------------------------------------------------------------------------------
# worker: one engine in its own process, serving timed commands
# ------------------------------------------------------------------------------------------------------
def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (vLLM's EngineCore and Worker)."""
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
    for pid in _descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return total


def _proc_tree(root: int) -> list[dict[str, Any]]:
    """``root`` and its descendants: pid, name, RSS (MiB), whether libtcmalloc is mapped."""
    out = []
    for pid in _descendants(root):
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


def _reason_kind(reason: str) -> str:
    """A short category for a structured-output failure reason."""
    if "finish_reason=length" in reason:
        return "cut at max_tokens"
    if "labels repeat" in reason:
        return "repeated interest label"
    if "Invalid JSON" in reason or "EOF" in reason:
        return "invalid JSON"
    return re.sub(r"\d+", "#", reason)[:70]


def worker_main(config_path: str, result_fd: int) -> None:
    """Start one engine, time its start, then answer JSON commands on stdin with JSON lines on ``result_fd``."""
    t_main_wall = time.time()
    cfg = json.loads(Path(config_path).read_text())
    out = os.fdopen(result_fd, "w")

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    me = os.getpid()
    try:
        t0 = time.perf_counter()
        import torch  # noqa: F401
        import vllm  # noqa: F401

        from agent import GenerationRequest, VLLMEngine, generate_structured, schema_for
        from agent._schemas import interest_output_model
        import_s = time.perf_counter() - t0
        cpu_import = tree_cpu_seconds(me)  # includes the interpreter's own start

        t0 = time.perf_counter()
        engine = VLLMEngine.from_defaults(**cfg["engine"])
        construct_s = time.perf_counter() - t0
        cpu_construct = tree_cpu_seconds(me) - cpu_import
        model = interest_output_model(TAXONOMY, N_EVIDENCE)
        schema = schema_for(model)

        def requests(prompts: Sequence[str], max_tokens: int = MAX_TOKENS) -> list[Any]:
            return [GenerationRequest(prompt=p, max_tokens=max_tokens, json_schema=schema) for p in prompts]

        def valid(text: str) -> bool:
            try:
                model.model_validate_json(text)
                return True
            except ValueError:  # pydantic's ValidationError is a ValueError
                return False

        first_reqs = requests([cfg["first_prompt"]])
        t0 = time.perf_counter()
        [first] = engine.generate(first_reqs)
        first_s = time.perf_counter() - t0
        cpu_first = tree_cpu_seconds(me) - cpu_import - cpu_construct
        batch_reqs = requests(cfg["batch_prompts"])
        t0 = time.perf_counter()
        batch = engine.generate(batch_reqs) if batch_reqs else []
        batch_s = time.perf_counter() - t0
        cpu_batch = tree_cpu_seconds(me) - cpu_import - cpu_construct - cpu_first
        send({"event": "ready", "t_main_wall": t_main_wall, "import_s": import_s, "construct_s": construct_s,
              "cpu_import_s": cpu_import, "cpu_construct_s": cpu_construct, "cpu_first_s": cpu_first,
              "cpu_batch_s": cpu_batch,
              "llm_init_s": engine.start_seconds, "first_s": first_s, "first_tokens": first.completion_tokens,
              "first_valid": valid(first.text), "batch_s": batch_s, "batch_n": len(batch),
              "batch_tokens": sum(c.completion_tokens for c in batch),
              "batch_valid": sum(valid(c.text) for c in batch), "procs": _proc_tree(os.getpid()),
              "description": engine.description})
    except BaseException as exc:
        send({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        raise

    llm = engine._llm
    inner: list[float] = []

    def timed_generate(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return llm.__class__.generate(llm, *a, **kw)
        finally:
            inner.append(time.perf_counter() - t)

    def measured(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
        """Run ``fn`` once: wall seconds, process-tree CPU seconds, and the wall seconds spent inside
        ``LLM.generate`` (so Tide's own share of a call is measured exactly, in the same call)."""
        inner.clear()
        llm.generate = timed_generate  # instance attribute: shadows the method for this call only
        c0, t0 = tree_cpu_seconds(me), time.perf_counter()
        try:
            out = fn()
        finally:
            seconds = time.perf_counter() - t0
            cpu = tree_cpu_seconds(me) - c0
            del llm.generate
        return out, {"seconds": seconds, "cpu_s": cpu, "inner_s": sum(inner)}

    def op_gen(cmd: dict[str, Any]) -> dict[str, Any]:
        """One batch through ``engine.generate`` (mode tide) or ``LLM.generate`` (mode raw)."""
        reqs = requests(cmd["prompts"], cmd.get("max_tokens", MAX_TOKENS))
        llm.reset_prefix_cache()
        if cmd["mode"] == "raw":
            prompts = [engine.prompt_text(r) for r in reqs]
            params = [engine.sampling_params(r) for r in reqs]
            outs, t = measured(lambda: llm.generate(prompts, params, use_tqdm=False))
            texts = [o.outputs[0].text for o in outs]
            tokens = [len(o.outputs[0].token_ids) for o in outs]
            finish = [o.outputs[0].finish_reason for o in outs]
        else:
            comps, t = measured(lambda: engine.generate(reqs))
            texts = [c.text for c in comps]
            tokens = [c.completion_tokens for c in comps]
            finish = [c.finish_reason for c in comps]
        return {**t, "n": len(reqs), "tokens": sum(tokens), "valid": sum(valid(x) for x in texts),
                "finish": dict(Counter(str(f) for f in finish)), "texts": texts if cmd.get("texts") else None}

    def op_score(cmd: dict[str, Any]) -> dict[str, Any]:
        """One batch through ``engine.score_choices`` (tide) or ``LLM.generate`` with logprob_token_ids (raw)."""
        from vllm import SamplingParams

        prompts, labels = cmd["prompts"], cmd["labels"]
        llm.reset_prefix_cache()
        if cmd["mode"] == "raw":
            ids = engine.label_token_ids(labels)
            params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=len(ids), logprob_token_ids=ids)
            outs, t = measured(lambda: llm.generate(list(prompts), params, use_tqdm=False))
            best = []
            for o in outs:
                step = o.outputs[0].logprobs[0]
                lps = [step[i].logprob if i in step else float("-inf") for i in ids]
                best.append(labels[lps.index(max(lps))])
            mass = None
        else:
            scores, t = measured(lambda: engine.score_choices(prompts, labels))
            best = [s.labels[s.probs.index(max(s.probs))] for s in scores]
            mass = statistics.fmean(s.label_mass for s in scores)
        return {**t, "n": len(prompts), "best": best, "label_mass": mass}

    def op_structured(cmd: dict[str, Any]) -> dict[str, Any]:
        """The agent's path (``InterestAgent._llm_interests``): ``generate_structured`` in agent-sized batches.

        The agent merges repeated labels afterwards (the schema cannot forbid them); they are counted."""
        prompts, bs = cmd["prompts"], cmd["batch_size"]
        per: list[dict[str, Any]] = []
        seconds, tokens = 0.0, 0
        for start in range(0, len(prompts), bs):
            reqs = [GenerationRequest(prompt=p, max_tokens=MAX_TOKENS) for p in prompts[start:start + bs]]
            t0 = time.perf_counter()
            res = generate_structured(engine, model, reqs, attempts=cmd["attempts"])
            seconds += time.perf_counter() - t0
            for r in res:
                ok = not isinstance(r, Exception)
                tokens += r.completion_tokens if ok else 0
                labels = [i.label for i in r.value.interests] if ok else []
                per.append({"ok": ok, "attempts": r.attempts, "reasons": list(r.reasons),
                            "repeated_labels": len(labels) != len(set(labels)), "n_interests": len(labels),
                            "raw": [] if ok else [x[:300] for x in r.raw_outputs]})
        return {"seconds": seconds, "n": len(prompts), "tokens_valid": tokens, "per": per}

    ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "gen": op_gen, "score": op_score, "structured": op_structured}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            send({"ok": True, **ops[cmd["op"]](cmd)})
        except Exception as exc:
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    engine.close()
    send({"event": "closed"})


# ------------------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    pass


class Worker:
    """A worker subprocess holding one engine."""

    def __init__(self, name: str, engine: dict[str, Any], *, cache_dir: Path, logdir: Path,
                 first_prompt: str, batch_prompts: list[str], ld_preload: str | None = None) -> None:
        self._args: dict[str, Any] = dict(name=name, engine=engine, cache_dir=cache_dir, logdir=logdir,
                                          first_prompt=first_prompt, batch_prompts=batch_prompts,
                                          ld_preload=ld_preload)
        self.restarts: list[str] = []
        self._spawn(**self._args)

    def _spawn(self, name: str, engine: dict[str, Any], *, cache_dir: Path, logdir: Path,
               first_prompt: str, batch_prompts: list[str], ld_preload: str | None = None) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        if self.log_path.exists():  # keep the log of a worker that died
            self.log_path.rename(logdir / f"{name}.died-{len(self.restarts)}.log")
        cfg_path = logdir / f"{name}.config.json"
        cfg_path.write_text(json.dumps({"engine": engine, "first_prompt": first_prompt,
                                        "batch_prompts": batch_prompts}))
        env = dict(os.environ)
        env.update({"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": KV_GIB, "PYTHONUNBUFFERED": "1",
                    "TQDM_DISABLE": "1", "VLLM_CACHE_ROOT": str(cache_dir),
                    "TORCHINDUCTOR_CACHE_DIR": str(cache_dir / "inductor")})
        env.pop("VLLM_CPU_OMP_THREADS_BIND", None)  # let cpu_threads decide ("vllm" = vLLM's own default)
        env.pop("LD_PRELOAD", None)
        if ld_preload:
            env["LD_PRELOAD"] = ld_preload
        r, w = os.pipe()
        self._fd, self._buf = r, b""
        self._log = self.log_path.open("w")
        self.t_popen_wall = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(cfg_path), "--result-fd", str(w)],
            pass_fds=(w,), stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            text=True, start_new_session=True)
        os.close(w)
        self.ready: dict[str, Any] | None = None

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"{self.name}: no answer in {timeout:.0f}s\n{self.log_tail()}")
            readable, _, _ = select.select([self._fd], [], [], left)
            if readable:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    raise WorkerError(f"{self.name}: worker exited (rc={self.proc.poll()})\n{self.log_tail()}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def log_tail(self, n: int = 25) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        keep = [x for x in lines if "Attempted to load weight" not in x]
        return "\n".join(f"    | {x[:240]}" for x in keep[-n:])

    def wait_ready(self, timeout: float = 1200) -> dict[str, Any]:
        msg = self._read(timeout)
        if msg.get("event") != "ready":
            raise WorkerError(f"{self.name}: {msg.get('error')}\n{self.log_tail()}")
        msg["interpreter_s"] = msg["t_main_wall"] - self.t_popen_wall
        msg["to_first_answer_s"] = msg["interpreter_s"] + msg["import_s"] + msg["construct_s"] + msg["first_s"]
        # a one-off CLI with 16 users: start the process, start the engine, answer one batch of 16
        msg["cli16_s"] = msg["interpreter_s"] + msg["import_s"] + msg["construct_s"] + msg["batch_s"]
        msg["binding"] = self.binding()
        self.ready = msg
        return msg

    def binding(self) -> str:
        text = self.log_path.read_text(errors="replace")
        cores = re.findall(r"local_rank=0, core ids=\[([^\]]*)\]", text)
        reserved = re.findall(r"reserved_cpus=\[([^\]]*)\]", text)
        if not cores:
            return "?"
        return f"cores [{cores[-1]}]" + (f", reserved [{reserved[-1]}]" if reserved and reserved[-1] else "")

    def call(self, cmd: dict[str, Any], timeout: float = 1800, retry: bool = True) -> dict[str, Any]:
        """Run one command; if the worker or its engine died (e.g. another job on this machine killed
        vLLM processes), start it again once and repeat the command."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            msg = self._read(timeout)
            if not msg.get("ok"):
                raise WorkerError(f"{self.name}: {cmd['op']} failed: {msg.get('error')}\n{self.log_tail()}")
        except (WorkerError, OSError) as exc:
            if not retry:
                raise
            reason = str(exc).splitlines()[0][:200]
            say(f"  !! {self.name} failed ({reason}); restarting it and repeating the command")
            self.restarts.append(reason)
            self.close()
            self._spawn(**self._args)
            self.wait_ready()
            return self.call(cmd, timeout, retry=False)
        return msg

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=90)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        if self.proc.poll() is None:  # hung: end the worker's own process group (it and its engine)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        else:  # engine processes that outlived a clean exit
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        os.close(self._fd)
        self._log.close()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def wait_for_memory(need_gib: float = ENGINE_GIB, max_wait_s: float = 900) -> None:
    """Hold off starting an engine while other jobs leave too little memory for it (no OOM kills)."""
    t0 = time.monotonic()
    if mem_available_gib() >= need_gib:
        return
    say(f"only {mem_available_gib():.1f} GiB available, an engine needs ~{need_gib:.0f}: waiting up to "
        f"{max_wait_s / 60:.0f} min for other jobs")
    while mem_available_gib() < need_gib and time.monotonic() - t0 < max_wait_s:
        time.sleep(10)
    say(f"  {mem_available_gib():.1f} GiB available after {time.monotonic() - t0:.0f}s; starting")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {loadavg()}] {msg}", flush=True)


def tput(run: dict[str, Any]) -> tuple[float, float]:
    """(requests/s, generated tokens/s) of one timed batch."""
    return run["n"] / run["seconds"], run.get("tokens", 0) / run["seconds"]


METRICS: dict[str, Callable[[dict[str, Any]], float]] = {
    "req/s": lambda r: r["n"] / r["seconds"],
    "tok/s": lambda r: r.get("tokens", 0) / r["seconds"],
    "req/CPU-s": lambda r: r["n"] / r["cpu_s"],
    "tok/CPU-s": lambda r: r.get("tokens", 0) / r["cpu_s"],
}


def mirrored(workers: Sequence[Worker], cmd: dict[str, Any], rounds: int) -> dict[str, list[dict[str, Any]]]:
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


def paired_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]], metric: str) -> tuple[float, list[float]]:
    """Median over rounds of metric(b) / metric(a) (round i of a and b ran back to back)."""
    f = METRICS[metric]
    ratios = [f(y) / f(x) for x, y in zip(a, b, strict=True)]
    return statistics.median(ratios), ratios


def fmt_ratios(xs: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def find_tcmalloc(install: bool) -> tuple[str | None, str]:
    """Debian's libtcmalloc, installing libgoogle-perftools4 with apt-get when absent and allowed."""
    def look() -> str | None:
        for pattern in TCMALLOC_GLOBS:
            hits = sorted(Path("/").glob(pattern.lstrip("/")))
            if hits:
                return str(hits[0])
        return None

    found = look()
    if found:
        return found, f"found {found}"
    if not install:
        return None, "libtcmalloc absent (--no-install: not installed)"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "libtcmalloc absent and apt-get unavailable (needs root)"
    say("libtcmalloc absent: apt-get install -y libgoogle-perftools4")
    cmd = ["apt-get", "install", "-y", "-q", "libgoogle-perftools4"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = look()
    if found:
        return found, f"INSTALLED libgoogle-perftools4 with apt-get for this run: {found}"
    return None, f"apt-get install libgoogle-perftools4 failed: {done.stderr.strip()[-200:]}"


# ------------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """Run every part; ``result`` fills as parts finish (so a failed run still leaves what it measured)."""
    from agent import ensure_model

    quick = args.quick
    t_run = time.perf_counter()
    result.update({"quick": quick, "load_start": loadavg(), "cores": os.cpu_count(), "kv_cache_gib": int(KV_GIB),
                   "bindings": {}})
    say(f"bench/engine.py {'--quick ' if quick else ''}on {os.cpu_count()} cores; load average at start "
        f"{result['load_start']}")
    model_path = ensure_model()
    result["model"] = str(model_path)
    out_path = Path(args.out)
    logdir = out_path.parent / f"{out_path.stem}-logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix="tide-bench-engine-"))
    caches = {k: tmp / k for k in ("eager", "compiled", "other")}

    # workloads (seeded; every engine in a comparison answers the very same prompts)
    start_first = predict_prompts(1, seed=1)[0]
    start_batch = predict_prompts(16, seed=2)  # part 1: a one-off CLI call answering 16 users
    cmp_n = 8 if quick else 16  # part 2 batch
    tc_n = 8 if quick else 32  # part 7 batch (and part 2 threads)
    cmp_prompts = predict_prompts(cmp_n, seed=3)
    tc_prompts = predict_prompts(tc_n, seed=4)
    bs1_prompts = predict_prompts(2 if quick else 3, seed=5)
    ovh_n = 8
    ovh_prompts = predict_prompts(ovh_n, seed=6)
    score_prompts = rank_prompts(8 if quick else 16, seed=7)
    n_valid = 48 if quick else 208
    valid_prompts = predict_prompts(n_valid, seed=8)
    assert len(set(valid_prompts)) == n_valid, "validity prompts must be distinct"
    rounds = 1 if quick else 2
    ovh_pairs = 2 if quick else 3

    workers: list[Worker] = []
    all_workers: list[Worker] = []

    def start(name: str, engine: dict[str, Any], cache: Path, ld_preload: str | None = None,
              batch: bool = False) -> Worker:
        """A worker; ``batch``: also time a first batch of 16 (part 1's one-off CLI), else one answer only."""
        wait_for_memory()
        say(f"starting worker {name}: {engine}" + (f" LD_PRELOAD={ld_preload}" if ld_preload else ""))
        w = Worker(name, {"dtype": "bfloat16", "enforce_eager": True, "cpu_threads": "auto", **engine},
                   cache_dir=cache, logdir=logdir, first_prompt=start_first,
                   batch_prompts=start_batch if batch else [], ld_preload=ld_preload)
        workers.append(w)
        all_workers.append(w)
        try:
            r = dict(w.wait_ready())
        except WorkerError as exc:  # killed from outside while starting: one more try
            reason = str(exc).splitlines()[0][:200]
            say(f"  !! {name} failed to start ({reason}); starting it again")
            w.restarts.append(f"start: {reason}")
            w.close()
            w._spawn(**w._args)
            r = dict(w.wait_ready())
        result["bindings"][name] = r["binding"]
        say(f"  {name}: interpreter {r['interpreter_s']:.1f}s import {r['import_s']:.1f}s construct "
            f"{r['construct_s']:.1f}s ({r['cpu_construct_s']:.1f} CPU-s) first answer {r['first_s']:.1f}s"
            + (f" batch16 {r['batch_s']:.1f}s" if batch else "") + f"; {r['binding']}")
        return w

    def stop(w: Worker) -> None:
        w.close()
        workers.remove(w)

    try:
        # ---- part 1: engine start --------------------------------------------------------------------
        # At most two engines are alive at once (each holds ~7 GB RSS across its three processes).
        starts: dict[str, dict[str, Any]] = {}
        if quick:  # one start only: eager with a fresh cache; it serves every part below
            default = start("eager-cold", {}, caches["eager"], batch=True)
            starts["eager-cold"] = default.ready or {}
        else:
            for name, engine, cache in (("eager-cold", {}, "eager"),
                                        ("compiled-cold", {"enforce_eager": False}, "compiled")):
                w = start(name, engine, caches[cache], batch=True)
                starts[name] = w.ready or {}
                stop(w)
            default = start("eager-warm", {}, caches["eager"], batch=True)  # serves every part below
            starts["eager-warm"] = default.ready or {}
        result["default"] = default.name
        result["starts"] = starts

        # ---- part 2 / 7: one engine beside the default, same requests, mirrored order (A B B A) ---------
        tc_path, tc_note = find_tcmalloc(not args.no_install)
        say(f"tcmalloc: {tc_note}")
        result["tcmalloc"] = {"note": tc_note, "path": tc_path}
        others: list[tuple[str, dict[str, Any], Path, str | None, list[str]]] = []
        if not quick:
            others.append(("compiled-warm", {"enforce_eager": False}, caches["compiled"], None, cmp_prompts))
        others.append(("float32", {"dtype": "float32"}, caches["other"], None, cmp_prompts))
        if not quick:
            others.append(("threads-vllm", {"cpu_threads": "vllm"}, caches["other"], None, tc_prompts))
        if tc_path:
            others.append(("tcmalloc", {}, caches["other"], tc_path, tc_prompts))
        result["pairs"] = {}
        result["procs"] = {default.name: (default.ready or {}).get("procs")}
        for name, engine, cache, preload, batch_prompts in others:
            w = start(name, engine, cache, ld_preload=preload, batch=name == "compiled-warm")
            if name == "compiled-warm":
                starts[name] = w.ready or {}
            result["procs"][name] = (w.ready or {}).get("procs")
            say(f"part {'7' if name == 'tcmalloc' else '2'}: {default.name} vs {name} on {len(batch_prompts)} "
                f"structured requests")
            runs = mirrored([default, w], {"op": "gen", "prompts": batch_prompts, "mode": "tide", "texts": True},
                            rounds)
            same = sum(a == b for a, b in zip(runs[default.name][0]["texts"], runs[name][0]["texts"], strict=True))
            for rs in runs.values():
                for r in rs:
                    r.pop("texts", None)
            result["pairs"][name] = {"batch": len(batch_prompts), "runs": runs, "same_text": same}
            stop(w)
        result["starts"] = {k: {x: y for x, y in v.items() if x != "description"} for k, v in starts.items()}

        # ---- part 3: batch size 1 (8, 16, 32 come from the runs above and below) ----------------------
        say("part 3: batch size 1")
        result["bs1"] = [default.call({"op": "gen", "prompts": [p], "mode": "tide"}) for p in bs1_prompts]

        # ---- part 6 (+ part 3 batch 8, part 5): Tide vs raw vLLM, interleaved on the same engine --------
        say(f"part 6: engine.generate vs LLM.generate, {ovh_n} structured requests, warm-up + {ovh_pairs} pairs")
        gen_warm = default.call({"op": "gen", "prompts": ovh_prompts, "mode": "tide"})
        gen_pairs: list[dict[str, Any]] = []
        for i in range(ovh_pairs):
            modes = ("tide", "raw") if i % 2 == 0 else ("raw", "tide")
            pair = {m: default.call({"op": "gen", "prompts": ovh_prompts, "mode": m}) for m in modes}
            gen_pairs.append(pair)
            say(f"  pair {i + 1}: tide {pair['tide']['seconds']:.2f}s raw {pair['raw']['seconds']:.2f}s")
        say(f"part 5/6: score_choices vs LLM.generate(logprob_token_ids), {len(score_prompts)} rank prompts")
        score_cmd = {"op": "score", "prompts": score_prompts, "labels": list(LABELS)}
        score_warm = default.call({**score_cmd, "mode": "tide"})
        score_pairs: list[dict[str, Any]] = []
        for i in range(ovh_pairs):
            modes = ("tide", "raw") if i % 2 == 0 else ("raw", "tide")
            pair = {m: default.call({**score_cmd, "mode": m}) for m in modes}
            score_pairs.append(pair)
            say(f"  pair {i + 1}: tide {pair['tide']['seconds']:.2f}s raw {pair['raw']['seconds']:.2f}s")
        # diagnostic: label mass if the template's trailing newline were kept after "Answer:" (the agent strips it)
        newline = default.call({**score_cmd, "prompts": [p + "\n" for p in score_prompts], "mode": "tide"})
        result["overhead"] = {"gen_batch": ovh_n, "gen_warmup": gen_warm, "gen_pairs": gen_pairs,
                              "score_batch": len(score_prompts), "score_warmup": score_warm,
                              "score_pairs": score_pairs, "score_newline": newline,
                              "rank_prompt_tail": score_prompts[0][-40:]}

        # ---- part 4: valid-output rate ----------------------------------------------------------------
        say(f"part 4: generate_structured on {n_valid} distinct prompts, batches of 32, {ATTEMPTS} attempts")
        result["validity"] = default.call({"op": "structured", "prompts": valid_prompts, "batch_size": 32,
                                           "attempts": ATTEMPTS})
        stop(default)
    finally:
        for w in list(workers):
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
        result["restarts"] = {w.name: w.restarts for w in all_workers if w.restarts}
    result["load_end"] = loadavg()
    result["total_s"] = time.perf_counter() - t_run
    return result


# ------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------
def summarize(res: dict[str, Any]) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """Rows (section, metric, value) of the final table, and the summary numbers for the JSON."""
    rows: list[tuple[str, str, str]] = []
    summ: dict[str, Any] = {"load_start": res["load_start"], "load_end": res["load_end"]}
    dflt = res["default"]

    def row(section: str, metric: str, value: str) -> None:
        rows.append((section, metric, value))

    def med(xs: Any) -> float:
        return statistics.median(list(xs))

    # ---- part 1
    starts = res["starts"]
    for name, s in starts.items():
        row("1 start", f"{name} wall", f"import {s['interpreter_s'] + s['import_s']:5.1f}s  construct "
            f"{s['construct_s']:6.1f}s  1st answer {s['first_s']:5.1f}s  batch16 {s['batch_s']:5.1f}s "
            f"({s['batch_valid']}/{s['batch_n']} valid)")
        row("1 start", f"{name} CPU-s", f"import {s['cpu_import_s']:5.1f}   construct {s['cpu_construct_s']:6.1f}   "
            f"1st answer {s['cpu_first_s']:5.1f}   batch16 {s['cpu_batch_s']:5.1f}")
        row("1 start", f"{name} time to answers", f"1st answer {s['to_first_answer_s']:6.1f}s  one-off CLI x16 "
            f"{s['cli16_s']:6.1f}s wall, {s['cpu_import_s'] + s['cpu_construct_s'] + s['cpu_batch_s']:6.1f} CPU-s")
    summ["starts"] = {k: {x: round(v[x], 2) for x in (
        "interpreter_s", "import_s", "construct_s", "first_s", "batch_s", "to_first_answer_s", "cli16_s",
        "cpu_import_s", "cpu_construct_s", "cpu_first_s", "cpu_batch_s")} for k, v in starts.items()}

    # ---- part 2 / 7: ratios to the default engine (bf16, eager, cpu_threads=auto, glibc malloc), each
    # measured in its own A B B A pair on the same requests
    pairs = res["pairs"]

    def pair(name: str, metric: str) -> tuple[float, list[float]]:
        return paired_ratio(pairs[name]["runs"][dflt], pairs[name]["runs"][name], metric)

    if "float32" in pairs:
        p = pairs["float32"]
        base, fp = p["runs"][dflt], p["runs"]["float32"]
        fp_tok, each = pair("float32", "tok/s")
        fp_req, _ = pair("float32", "req/s")
        fp_cpu, _ = pair("float32", "tok/CPU-s")
        summ["fp32_over_bf16"] = {"tok_s": round(fp_tok, 3), "req_s": round(fp_req, 3),
                                  "tok_per_cpu_s": round(fp_cpu, 3)}
        row("2 dtype", f"bfloat16 default ({p['batch']} req)",
            f"{med(tput(r)[0] for r in base):6.2f} req/s {med(tput(r)[1] for r in base):7.1f} tok/s")
        row("2 dtype", "float32 / bfloat16", f"{fp_tok:6.3f} tok/s (rounds {fmt_ratios(each)}), {fp_req:.3f} req/s, "
            f"{fp_cpu:.3f} tok/CPU-s -> bf16 {1 / fp_tok:.2f}x faster (wall), {1 / fp_cpu:.2f}x (CPU)")
        row("2 dtype", "same greedy text bf16 vs fp32", f"{p['same_text']}/{p['batch']}; valid fp32 "
            f"{fp[0]['valid']}/{fp[0]['n']}, bf16 {base[0]['valid']}/{base[0]['n']}")
    # Ratios are of generated tokens per second: greedy text can differ between engines (other kernels,
    # other rounding), and then requests differ in length; "same text" says how many did not.
    def ratios(name: str, key: str) -> tuple[float, list[float], float, float]:
        """The pair's ratios (tok/s with each round's, req/s, tok/CPU-s), also recorded as ``summ[key]``."""
        tok, each = pair(name, "tok/s")
        req, cpu = pair(name, "req/s")[0], pair(name, "tok/CPU-s")[0]
        summ[key] = {"tok_s": round(tok, 3), "req_s": round(req, 3), "tok_per_cpu_s": round(cpu, 3)}
        return tok, each, req, cpu

    if "compiled-warm" in pairs:
        c_tok, each, c_req, c_cpu = ratios("compiled-warm", "compiled_over_eager")
        row("2 compile", f"compiled / eager, running ({pairs['compiled-warm']['batch']} req)",
            f"{c_tok:6.3f} tok/s (rounds {fmt_ratios(each)}), {c_req:.3f} req/s, {c_cpu:.3f} tok/CPU-s; same text "
            f"{pairs['compiled-warm']['same_text']}/{pairs['compiled-warm']['batch']}")
    if "threads-vllm" in pairs:
        t_tok, each, t_req, t_cpu = ratios("threads-vllm", "threads_vllm_over_auto")
        row("2 threads", f"cpu_threads vllm / auto ({pairs['threads-vllm']['batch']} req)",
            f"{t_tok:6.3f} tok/s (rounds {fmt_ratios(each)}), {t_req:.3f} req/s, {t_cpu:.3f} tok/CPU-s -> auto "
            f"{1 / t_tok:.2f}x faster; same text {pairs['threads-vllm']['same_text']}/{pairs['threads-vllm']['batch']}")
        row("2 threads", "OpenMP binding", f"auto: {res['bindings'].get(dflt)}; vllm: {res['bindings'].get('threads-vllm')}")
    if "tcmalloc" in pairs:
        m_tok, each, m_req, m_cpu = ratios("tcmalloc", "tcmalloc_over_glibc")
        mapped = [p["name"] for p in (res.get("procs", {}).get("tcmalloc") or []) if p["tcmalloc"]]
        row("7 tcmalloc", f"LD_PRELOAD / none ({pairs['tcmalloc']['batch']} req)", f"{m_tok:6.3f} tok/s (rounds "
            f"{fmt_ratios(each)}), {m_req:.3f} req/s, {m_cpu:.3f} tok/CPU-s; same text "
            f"{pairs['tcmalloc']['same_text']}/{pairs['tcmalloc']['batch']}; libtcmalloc mapped in {len(mapped)} "
            f"processes")
    row("7 tcmalloc", "library", res["tcmalloc"]["note"])

    # ---- part 3: throughput by batch size (default engine, engine.generate, prefix cache reset per batch)
    o = res["overhead"]
    by_bs: dict[int, list[dict[str, Any]]] = {1: list(res["bs1"])}
    by_bs.setdefault(o["gen_batch"], []).extend(p["tide"] for p in o["gen_pairs"])
    for p in pairs.values():
        by_bs.setdefault(p["batch"], []).extend(p["runs"][dflt])
    summ["throughput"] = {}
    for bs in sorted(by_bs):
        rs = by_bs[bs]
        req, tok = med(tput(r)[0] for r in rs), med(tput(r)[1] for r in rs)
        summ["throughput"][bs] = {"req_s": round(req, 3), "tok_s": round(tok, 1), "runs": len(rs),
                                  "req_per_cpu_s": round(med(METRICS["req/CPU-s"](r) for r in rs), 3),
                                  "tok_per_cpu_s": round(med(METRICS["tok/CPU-s"](r) for r in rs), 1)}
        row("3 batch", f"batch {bs:3d} (median of {len(rs)})", f"{req:6.2f} req/s {tok:7.1f} tok/s "
            f"({med(r['tokens'] / r['n'] for r in rs):.0f} tok/req, {med(r['seconds'] for r in rs):.1f}s/batch, "
            f"{summ['throughput'][bs]['req_per_cpu_s']:.2f} req/CPU-s)")

    # ---- part 4
    v = res["validity"]
    per = v["per"]
    n = len(per)
    first = sum(1 for p in per if p["ok"] and p["attempts"] == 1)
    ok = sum(1 for p in per if p["ok"])
    first_reasons = Counter(_reason_kind(p["reasons"][0]) for p in per if p["reasons"])
    final_reasons = Counter(_reason_kind(p["reasons"][-1]) for p in per if not p["ok"])
    attempts_hist = Counter(p["attempts"] for p in per if p["ok"])
    repeats = sum(1 for p in per if p["ok"] and p.get("repeated_labels"))
    summ["validity"] = {"n": n, "first_attempt_pct": round(100 * first / n, 2),
                        "within_2_retries_pct": round(100 * ok / n, 2), "attempts_of_valid": dict(attempts_hist),
                        "first_failure_reasons": dict(first_reasons), "final_failure_reasons": dict(final_reasons),
                        "valid_with_repeated_labels": repeats,
                        "seconds": round(v["seconds"], 1)}
    row("4 valid", f"first attempt ({n} distinct prompts)", f"{100 * first / n:6.2f}% ({first}/{n})")
    row("4 valid", "within 2 retries (3 attempts)", f"{100 * ok / n:6.2f}% ({ok}/{n}; target >= 99.5%; valid "
        f"after 1/2/3 attempts: {attempts_hist.get(1, 0)}/{attempts_hist.get(2, 0)}/{attempts_hist.get(3, 0)})")
    row("4 valid", "first-attempt failure reasons",
        "; ".join(f"{k}: {c}" for k, c in first_reasons.most_common()) or "none")
    row("4 valid", "final failure reasons", "; ".join(f"{k}: {c}" for k, c in final_reasons.most_common()) or "none")
    row("4 valid", "valid but a label repeated", f"{repeats}/{ok} (the agent merges them: _merge_repeats)")
    row("4 valid", "generate_structured, batches of 32", f"{n / v['seconds']:6.2f} req/s incl. retries "
        f"({v['seconds']:.0f}s)")

    # ---- part 5
    sc = [p["tide"] for p in o["score_pairs"]]
    summ["score"] = {"req_s": round(med(tput(r)[0] for r in sc), 3), "batch": o["score_batch"],
                     "label_mass": round(statistics.fmean(r["label_mass"] for r in sc), 5),
                     "label_mass_with_trailing_newline": round(o["score_newline"]["label_mass"], 5),
                     "warmup_s": round(o["score_warmup"]["seconds"], 2)}
    row("5 choices", f"score_choices, 20 labels ({o['score_batch']} req)",
        f"{summ['score']['req_s']:6.2f} req/s ({med(r['seconds'] for r in sc):.1f}s/batch; first call "
        f"{o['score_warmup']['seconds']:.1f}s)")
    row("5 choices", "label mass on ' A'..' T'", f"{summ['score']['label_mass']:.3f} (prompt ends "
        f"{o['rank_prompt_tail'][-10:]!r}); {summ['score']['label_mass_with_trailing_newline']:.5f} if it ended "
        f"'Answer:\\n' (the template's own ending)")

    # ---- part 6
    for kind, kpairs, warm in (("generate", o["gen_pairs"], o["gen_warmup"]),
                              ("score_choices", o["score_pairs"], o["score_warmup"])):
        ratios = [p["tide"]["seconds"] / p["raw"]["seconds"] for p in kpairs]
        m = med(ratios)
        # every timed tide call measured its own share; for generate that is every batch of part 3
        tides = [warm] + ([r for rs in by_bs.values() for r in rs] if kind == "generate" else [p["tide"] for p in kpairs])
        share = med((r["seconds"] - r["inner_s"]) / r["inner_s"] for r in tides)
        per_req_ms = med((r["seconds"] - r["inner_s"]) / r["n"] * 1000 for r in tides)
        same = all(p["tide"].get("tokens") == p["raw"].get("tokens") and p["tide"].get("best") == p["raw"].get("best")
                   for p in kpairs)
        summ[f"overhead_{kind}"] = {"ab_median_ratio": round(m, 4), "ab_ratios": [round(x, 4) for x in ratios],
                                    "in_call_share": round(share, 5), "in_call_ms_per_req": round(per_req_ms, 3),
                                    "in_call_samples": len(tides), "same_output": same}
        row("6 overhead", f"tide / raw {kind} (A/B)", f"{m:6.3f} median time ratio ({100 * (m - 1):+.1f}%; pairs "
            f"{', '.join(f'{x:.3f}' for x in ratios)}); identical output: {same}")
        row("6 overhead", f"tide's own time in {kind}", f"{100 * share:+6.2f}% of LLM.generate "
            f"({per_req_ms:.2f} ms/req, median of {len(tides)} calls; target <= 10%)")

    # ---- verdict on the CLI default (part 1 + compiled steady state)
    if "compiled-warm" in starts:
        e, c, cc = starts[dflt], starts["compiled-warm"], starts["compiled-cold"]
        faster = "eager" if e["cli16_s"] <= c["cli16_s"] else "compiled"
        e_cpu = e["cpu_import_s"] + e["cpu_construct_s"] + e["cpu_batch_s"]
        c_cpu = c["cpu_import_s"] + c["cpu_construct_s"] + c["cpu_batch_s"]
        summ["cli_default_wall"] = faster
        summ["cli_default_cpu"] = "eager" if e_cpu <= c_cpu else "compiled"
        row("1 verdict", "one-off CLI, 16 answers", f"{faster} soonest: eager {e['cli16_s']:.1f}s vs compiled warm "
            f"{c['cli16_s']:.1f}s / cold {cc['cli16_s']:.1f}s wall; {e_cpu:.0f} vs {c_cpu:.0f} / "
            f"{cc['cpu_import_s'] + cc['cpu_construct_s'] + cc['cpu_batch_s']:.0f} CPU-s")
        row("1 verdict", "first answer (1 request)", f"eager {e['to_first_answer_s']:.1f}s vs compiled warm "
            f"{c['to_first_answer_s']:.1f}s / cold {cc['to_first_answer_s']:.1f}s wall")
        co = summ.get("compiled_over_eager", {})
        bs = pairs["compiled-warm"]["batch"]
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
        row("1 verdict", "compiled (warm cache) pays off after", "; ".join(parts))
    return rows, summ


def format_table(rows: list[tuple[str, str, str]]) -> str:
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    lines = [f"{'part':{w1}s}  {'metric':{w2}s}  value", "-" * (w1 + w2 + 60)]
    last = None
    for section, metric, value in rows:
        lines.append(f"{section if section != last else '':{w1}s}  {metric:{w2}s}  {value}")
        last = section
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run: no compiled mode, smaller batches")
    parser.add_argument("--out", default="runs/bench/engine.json", help="JSON results (logs go beside it)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install libtcmalloc if absent")
    parser.add_argument("--summarize", metavar="JSON", help="print the table of a finished run's JSON again")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.result_fd)
        return
    if args.summarize:
        res = json.loads(Path(args.summarize).read_text())["raw"]
        rows, _ = summarize(res)
        print(format_table(rows))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {}
    try:
        run(args, res)
    except BaseException:
        res["failed_at_load"] = loadavg()
        out.write_text(json.dumps({"summary": None, "partial": True, "raw": res}, indent=1, default=str))
        print(f"run failed; partial results in {out}", file=sys.stderr)
        raise
    rows, summ = summarize(res)
    table = format_table(rows)
    print()
    print(table)
    print(f"\nload average: start {res['load_start']}, end {res['load_end']} ({res['cores']} cores); "
          f"total {res['total_s'] / 60:.1f} min")
    if res.get("restarts"):
        print(f"workers restarted after dying mid-run: {res['restarts']}")
    out.write_text(json.dumps({"summary": summ, "table": table, "raw": res}, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
