"""Helpers for the service tests: real server processes, ``tests/service/run_server.py`` on a free port, a real
store (SQLite + FAISS + the packaged embedder) and the schema-answering fake engine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from service import KeyStore

HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 300  # the packaged embedder and the agent load in a fresh process; slower on a busy CPU
T0 = datetime(1997, 10, 1, tzinfo=UTC)
GENRES = {"m1": ("Horror", "Sci-Fi"), "m2": ("Action", "Sci-Fi"), "m3": ("Action", "Sci-Fi"),
          "m4": ("Animation", "Comedy"), "m5": ("Comedy", "Drama"), "m8": ("Drama", "Romance"),
          "m10": ("Crime", "Drama"), "m11": ("Adventure", "Comedy")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def row(user: str, item: str, day: float, **kw) -> dict:
    g = GENRES.get(item, ("Drama",))
    return {"user_id": user, "item_id": item, "action": "rated", "text": f"Rated {item} ({', '.join(g)}) 5/5.",
            "timestamp": (T0 + timedelta(days=day)).isoformat(), "attributes": {"genres": list(g)}, **kw}


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path
    store: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(store: Path, log: Path, *extra: str, tokens: dict[str, str] | None = None) -> Server:
    """Start ``run_server.py`` and wait until ``/v1/ready`` answers 200."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with log.open("a") as fh:
        proc = subprocess.Popen([sys.executable, str(HERE / "run_server.py"), "--store", str(store),
                                 "--port", str(port), *extra], stdout=fh, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", proc, log, store, dict(tokens or {}))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(server.url + "/v1/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"server not ready in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def make_keys(store: Path) -> dict[str, str]:
    keys = KeyStore.for_store(store)
    tokens = {"admin": keys.create("admin", None)[0], "ann": keys.create("ann only", ["ann"])[0],
              "bob": keys.create("bob only", ["bob"])[0], "annbob": keys.create("two", ["ann", "bob"])[0]}
    revoked, key = keys.create("old", None)
    keys.revoke(key.key_id)
    tokens["revoked"] = revoked
    tokens["wrong"] = "tide_" + "x" * 43
    keys.close()
    return tokens


SEED = ([row("ann", m, d) for m, d in [("m1", 0), ("m2", 1), ("m3", 2), ("m4", 30), ("m11", 31), ("m5", 32)]]
        + [row("bob", m, d) for m, d in [("m8", 0), ("m10", 1), ("m5", 2)]])
