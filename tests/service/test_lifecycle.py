"""Durability against the real server process: SIGTERM drains requests in flight; after SIGKILL during a
stream of writes every acknowledged write is there on restart."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from svc_helpers import SEED, make_keys, row, start_server

from memory import MemoryStore

pytestmark = pytest.mark.slow
KILL_AFTER_ACKS = 150
WRITERS = 8


def _batches(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("tide_engine_batch_size_count"):
            return float(line.split()[-1])
    return 0.0


def _seeded_slow_server(tmp_path, engine_delay: str):
    """A real server whose fake engine takes ``engine_delay`` seconds per call, the seed rows stored."""
    store = tmp_path / "store"
    tokens = make_keys(store)
    server = start_server(store, tmp_path / "server.log", "--engine-delay", engine_delay, tokens=tokens)
    with server.client() as c:
        assert c.post("/v1/behaviors", json={"behaviors": SEED}).status_code == 200
    return store, tokens, server


def test_sigterm_drains_requests_in_flight(tmp_path):
    # each engine call takes 2 s, so the requests below are still running when SIGTERM arrives
    store, tokens, server = _seeded_slow_server(tmp_path, "2")
    try:
        headers = {"Authorization": f"Bearer {tokens['admin']}"}

        def predict(user):
            return httpx.post(f"{server.url}/v1/users/{user}/predict", json={"k": 3}, headers=headers, timeout=120)

        def write():
            return httpx.post(f"{server.url}/v1/behaviors", json={"behaviors": [row("ann", "m12", 60)]},
                              headers=headers, timeout=120)

        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(predict, u) for u in ("ann", "bob", "ann", "bob")]
            while _batches(server.url) < 1:  # the first engine batch is running
                time.sleep(0.05)
            futures.append(pool.submit(write))
            time.sleep(0.3)  # let the write reach the server before the signal
            server.proc.send_signal(signal.SIGTERM)
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
        assert all(len(a.json()["next_items"]) == 3 for a in answers[:4])
        assert server.proc.wait(timeout=120) in (0, -15)
        assert "drained; store closed" in server.log.read_text()
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/v1/health")
        with MemoryStore.open(store) as st:  # the lock was released and the acknowledged write is there
            assert "m12" in {b.item_id for b in st.recent("ann", k=100)}
    finally:
        server.stop(signal.SIGKILL)


def test_reads_and_writes_are_not_queued_behind_a_prediction_batch(tmp_path):
    """The engine halves of predictions and summaries run outside the store thread: while a slow batch (6 s
    of fake engine) is in flight and a summary waits for the engine, a write is committed and acknowledged
    and a read sees it."""
    _, _, server = _seeded_slow_server(tmp_path, "3")
    try:
        with server.client() as c:
            with ThreadPoolExecutor(2) as pool:
                predicting = pool.submit(c.post, "/v1/users/ann/predict", json={"k": 3})
                while _batches(server.url) < 1:  # the engine batch is running
                    time.sleep(0.05)
                summarizing = pool.submit(c.get, "/v1/users/bob/summary")  # waits for the engine
                time.sleep(0.5)
                wrote = c.post("/v1/behaviors", json={"behaviors": [row("ann", "m12", 60)]})
                read = c.get("/v1/users/ann/behaviors", params={"limit": 50})
                still_running = not predicting.done() and not summarizing.done()
                answer, summary = predicting.result(), summarizing.result()
        assert wrote.status_code == 200 and read.status_code == 200
        assert "m12" in {b["item_id"] for b in read.json()}
        assert still_running, "the write and the read waited for the prediction batch or the summary"
        assert answer.status_code == 200 and len(answer.json()["next_items"]) == 3
        assert summary.status_code == 200 and summary.json()["text"]
    finally:
        server.stop(signal.SIGKILL)


def test_no_acknowledged_write_is_lost_after_sigkill(tmp_path):
    store = tmp_path / "store"
    tokens = make_keys(store)
    server = start_server(store, tmp_path / "server.log", tokens=tokens)
    acked: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        user = f"w{w}"
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens['admin']}"},
                          timeout=30) as c:
            for n in range(100_000):
                if stop.is_set():
                    return
                item = f"i{n}"
                try:
                    r = c.post("/v1/behaviors", json={"behaviors": [row(user, item, n / 1000)]})
                except httpx.HTTPError:
                    return  # the server is gone: this write was never acknowledged
                assert r.status_code == 200, r.text
                with lock:
                    acked.append((user, item))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        while True:
            with lock:
                if len(acked) >= KILL_AFTER_ACKS:
                    break
            assert server.proc.poll() is None, server.log.read_text()[-2000:]
            assert any(t.is_alive() for t in threads), "every writer stopped before the kill"
            time.sleep(0.01)
        server.proc.kill()  # SIGKILL while writes are in flight
        server.proc.wait()
    finally:
        stop.set()
        for t in threads:
            t.join()
    with lock:
        acked_now = list(acked)
    assert len(acked_now) >= KILL_AFTER_ACKS
    restarted = start_server(store, tmp_path / "server2.log", tokens=tokens)
    try:
        with restarted.client() as c:
            stored = {(u, b["item_id"]) for u in {u for u, _ in acked_now}
                      for b in c.get(f"/v1/users/{u}/behaviors", params={"limit": 1000}).json()}
        missing = set(acked_now) - stored
        assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
    finally:
        assert restarted.stop() in (0, -15)
