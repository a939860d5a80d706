"""One engine in its own worker subprocess, serving timed commands: both sides of the pipe.

Parent side: ``Worker`` starts ``python -m <module> --worker CONFIG --result-fd FD`` from the repository
root with a fresh environment, reads JSON lines from FD (stdout and stderr go to a log file), and restarts
the worker once when it dies mid-run (another job on the machine may kill vLLM processes). ``Pool`` keeps
track of the live workers so a failed run still ends every one of them.

Child side: ``channel`` opens FD for JSON lines; ``serve`` answers commands read from stdin until "quit".
Standard library only (see ``bench``).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._harness import say

ROOT = Path(__file__).resolve().parent.parent  # the repository root: ``-m bench.x`` resolves from here


class WorkerError(RuntimeError):
    """A worker died, did not answer in time, or answered with an error."""


# ------------------------------------------------------------------------------------------------------
# child side
# ------------------------------------------------------------------------------------------------------
def channel(result_fd: int) -> Callable[[dict[str, Any]], None]:
    """A function that sends one JSON line to the parent."""
    out = os.fdopen(result_fd, "w")

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    return send


def serve(ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], send: Callable[[dict[str, Any]], None]) -> None:
    """Answer JSON commands ``{"op": ...}`` on stdin until ``{"op": "quit"}`` or end of input."""
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            send({"ok": True, **ops[cmd["op"]](cmd)})
        except Exception as exc:
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


# ------------------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------------------
class Worker:
    """A worker subprocess running ``python -m module --worker CONFIG``.

    Args:
        name: Names the worker in results and its log file ``logdir/<name>.log``.
        module: The module whose ``--worker`` entry serves commands.
        config: Written to ``logdir/<name>.config.json`` for the worker.
        logdir: Where the log and config go.
        env: Environment overrides; ``None`` removes a variable.
        derive: Adds fields to the worker's "ready" message (called after each start).
    """

    def __init__(self, name: str, module: str, config: dict[str, Any], *, logdir: Path,
                 env: dict[str, str | None], derive: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.name, self.module, self.config, self.logdir = name, module, config, logdir
        self.env, self.derive = env, derive
        self.log_path = logdir / f"{name}.log"
        self.restarts: list[str] = []
        self.ready: dict[str, Any] | None = None
        self.spawn()

    def spawn(self) -> None:
        if self.log_path.exists():  # keep the log of a worker that died
            self.log_path.rename(self.logdir / f"{self.name}.died-{len(self.restarts)}.log")
        cfg_path = self.logdir / f"{self.name}.config.json"
        cfg_path.write_text(json.dumps(self.config))
        env = dict(os.environ)
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        r, w = os.pipe()
        self._fd, self._buf = r, b""
        self._log = self.log_path.open("w")
        self.t_popen_wall = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--worker", str(cfg_path), "--result-fd", str(w)],
            pass_fds=(w,), stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            text=True, start_new_session=True)
        os.close(w)
        self.ready = None

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
        """The worker's "ready" message, with ``interpreter_s`` (process start to its main) and ``binding``."""
        msg = self._read(timeout)
        if msg.get("event") != "ready":
            raise WorkerError(f"{self.name}: {msg.get('error')}\n{self.log_tail()}")
        msg["interpreter_s"] = msg["t_main_wall"] - self.t_popen_wall
        if self.derive:
            self.derive(msg)
        msg["binding"] = self.binding()
        self.ready = msg
        return msg

    def binding(self) -> str:
        """The cores vLLM bound its OpenMP threads to, as its log says."""
        text = self.log_path.read_text(errors="replace")
        cores = re.findall(r"local_rank=0, core ids=\[([^\]]*)\]", text)
        reserved = re.findall(r"reserved_cpus=\[([^\]]*)\]", text)
        if not cores:
            return "?"
        return f"cores [{cores[-1]}]" + (f", reserved [{reserved[-1]}]" if reserved and reserved[-1] else "")

    def restart(self, reason: str) -> None:
        self.restarts.append(reason)
        self.close()
        self.spawn()

    def call(self, cmd: dict[str, Any], timeout: float = 1800, retry: bool = True) -> dict[str, Any]:
        """Run one command; if the worker or its engine died, start it again once and repeat the command."""
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
            self.restart(reason)
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


class Pool:
    """The workers of one run: started with one retry, each closed by ``stop`` or, at the end, ``close``."""

    def __init__(self) -> None:
        self.alive: list[Worker] = []
        self.started: list[Worker] = []

    def start(self, make: Callable[[], Worker]) -> Worker:
        """A new worker, ready; if it is killed from outside while starting, one more try."""
        w = make()
        self.alive.append(w)
        self.started.append(w)
        try:
            w.wait_ready()
        except WorkerError as exc:
            reason = str(exc).splitlines()[0][:200]
            say(f"  !! {w.name} failed to start ({reason}); starting it again")
            w.restart(f"start: {reason}")
            w.wait_ready()
        return w

    def stop(self, w: Worker) -> None:
        w.close()
        self.alive.remove(w)

    def close(self) -> None:
        for w in list(self.alive):
            self.stop(w)

    def restarts(self) -> dict[str, list[str]]:
        return {w.name: w.restarts for w in self.started if w.restarts}
