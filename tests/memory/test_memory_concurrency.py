"""Isolation under concurrent writers of many users, with readers and a tiny cache forcing rebuilds."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
from memory_testkit import T0, behavior, unit_rows

from memory import MemoryConfig, MemoryStore

WRITERS, USERS_PER_WRITER, BATCHES, BATCH = 6, 10, 5, 20


def test_isolation_under_concurrent_writers_and_readers(tmp_path, embedder):
    # Vectors are precomputed (the lower-level add path): this test is about storage, not the model.
    # A cache budget of ~4 users forces constant eviction, index-file writes and rebuilds under load.
    cfg = MemoryConfig(cache_max_bytes=4 * 40 * embedder.dim * 4)
    errors: list[BaseException] = []
    expected: dict[str, set[int]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    with MemoryStore.open(tmp_path / "conc", embedder=embedder, config=cfg) as store:

        def writer(w: int) -> None:
            rng = np.random.default_rng(w)
            try:
                for b in range(BATCHES):
                    rows = [behavior(f"w{w}-u{(b * BATCH + j) % USERS_PER_WRITER}", f"w{w}-b{b}-{j}",
                                     days=b + j / 100, text=f"writer {w} batch {b} row {j}") for j in range(BATCH)]
                    ids = store.add(rows, embeddings=unit_rows(rng, BATCH, embedder.dim))
                    with lock:
                        for r, i in zip(rows, ids, strict=True):
                            expected.setdefault(r.user_id, set()).add(i)
                    # read own writes immediately
                    mine = rows[0].user_id
                    got = store.retrieve(mine, rows[0].text, k=200, now=T0 + timedelta(days=30))
                    assert ids[0] in {g.behavior.id for g in got}
                    assert all(g.behavior.user_id == mine for g in got)
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)

        def reader(r: int) -> None:
            rng = np.random.default_rng(100 + r)
            try:
                while not stop.is_set():
                    user = f"w{rng.integers(WRITERS)}-u{rng.integers(USERS_PER_WRITER)}"
                    got = store.retrieve(user, None, k=50, now=T0 + timedelta(days=30), exclude_recent=1)
                    assert all(g.behavior.user_id == user for g in got)
                    assert all(b.user_id == user for b in store.recent(user, k=5))
                    p = store.profile(user, now=T0 + timedelta(days=30))
                    assert p.user_id == user and p.n_behaviors <= BATCHES * BATCH
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        readers = [threading.Thread(target=reader, args=(r,)) for r in range(3)]
        for t in threads + readers:
            t.start()
        for t in threads:
            t.join(timeout=300)
        stop.set()
        for t in readers:
            t.join(timeout=60)
        assert not errors, errors[0]

        assert len(store.users()) == WRITERS * USERS_PER_WRITER
        for user, ids in expected.items():
            assert store.count(user) == len(ids)
            assert {b.id for b in store.recent(user, k=1000)} == ids
            got = store.retrieve(user, None, k=1000, now=T0 + timedelta(days=30))
            assert {g.behavior.id for g in got} == ids
        assert store.stats()["index_rebuilds"] > 0  # the tiny cache really forced reloads

    with MemoryStore.open(tmp_path / "conc", embedder=embedder, config=cfg) as again:
        for user, ids in expected.items():
            got = again.retrieve(user, None, k=1000, now=T0 + timedelta(days=30))
            assert {g.behavior.id for g in got} == ids
