"""Fixtures for the agent tests: one real in-process vLLM engine and one real `vllm serve` per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent import VLLMEngine, ensure_model

SERVER_START_TIMEOUT_S = 420


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ensure_model()


@pytest.fixture(scope="session")
def engine(model_path) -> Iterator[VLLMEngine]:
    """The real embedded engine (float32, eager), started once per test session."""
    eng = VLLMEngine.from_model(model_path, dtype="float32")
    yield eng
    eng.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(model_path, tmp_path_factory) -> Iterator[str]:
    """A real `vllm serve` (OpenAI API) on 127.0.0.1 with the embedded model, same settings as `engine`."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_path),
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager", "--seed", "0",
        "--max-model-len", "4096", "--max-num-seqs", "64",
        "--structured-outputs-config", '{"backend":"xgrammar","disable_any_whitespace":true}',
    ]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm serve did not start in {SERVER_START_TIMEOUT_S} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- a tiny real world: real embedder, real SQLite/FAISS store, a small movie catalog -----------------
MOVIES = [
    ("m1", "Alien (1979)", ("Horror", "Sci-Fi")), ("m2", "Aliens (1986)", ("Action", "Sci-Fi")),
    ("m3", "The Terminator (1984)", ("Action", "Sci-Fi")), ("m4", "Toy Story (1995)", ("Animation", "Comedy")),
    ("m5", "Babe (1995)", ("Comedy", "Drama")), ("m6", "Heat (1995)", ("Action", "Crime")),
    ("m7", "Predator (1987)", ("Action", "Sci-Fi")), ("m8", "Sense and Sensibility (1995)", ("Drama", "Romance")),
    ("m9", "Scream (1996)", ("Horror", "Thriller")), ("m10", "Fargo (1996)", ("Crime", "Drama")),
    ("m11", "Jumanji (1995)", ("Adventure", "Comedy")), ("m12", "Contact (1997)", ("Drama", "Sci-Fi")),
]


@pytest.fixture(scope="session")
def embedder():
    from memory import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder.from_package()


@pytest.fixture(scope="session")
def catalog(embedder):
    from agent import Catalog, CatalogItem

    items = [CatalogItem(item_id=i, title=t, text=f'Watched "{t}" ({", ".join(g)}).', categories=g)
             for i, t, g in MOVIES]
    return Catalog.from_items(items, embedder, popularity=[12 - n for n in range(12)])


@pytest.fixture
def world(tmp_path, embedder):
    """A store with two users: `ann` (sci-fi fan, drifting to comedy) and `bob` (drama)."""
    from datetime import UTC, datetime, timedelta

    from memory import Behavior, MemoryStore

    t0 = datetime(1997, 10, 1, tzinfo=UTC)
    title = {i: (t, g) for i, t, g in MOVIES}

    def b(user, item, day):
        t, g = title[item]
        return Behavior(user_id=user, item_id=item, action="rated", text=f'Rated "{t}" ({", ".join(g)}) 5/5.',
                        timestamp=t0 + timedelta(days=day), attributes={"genres": list(g)}, weight=5.0)

    store = MemoryStore.open(tmp_path / "store", embedder=embedder)
    store.add([b("ann", "m1", 0), b("ann", "m2", 1), b("ann", "m3", 2), b("ann", "m4", 30), b("ann", "m11", 31),
               b("bob", "m8", 0), b("bob", "m10", 1), b("bob", "m5", 2)])
    yield store
    store.close()
