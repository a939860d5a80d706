"""Durability: SIGKILL mid-ingest, rebuilt index files, real deletion, and the one-process rule."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from memory_testkit import T0, HashEmbedder, behavior

import memory
from memory import EmbedderMismatchError, MemoryStore, MemoryStoreError, StoreLockedError

HERE = Path(__file__).resolve().parent
ROOT = Path(memory.__file__).resolve().parent.parent
WORKER = HERE / "memory_worker.py"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)


def _store_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def _check_killed_store(path: Path, batch: int, acked: int) -> int:
    """Reopen after a kill: whole batches only, every acknowledged one present. Returns batches stored."""
    with MemoryStore.open(path, embedder=HashEmbedder()) as store:
        total = sum(store.count(u) for u in store.users())
        assert total % batch == 0, f"partial batch stored: {total} rows"
        stored = total // batch
        assert stored in (acked + 1, acked + 2), (stored, acked)
        items = {b.item_id for u in store.users() for b in store.recent(u, k=10_000)}
        assert len(items) == total
        for b in range(stored):
            assert {f"b{b}-{j}" for j in range(batch)} <= items
        hits = store.retrieve("u3", "batch 0 row 3", k=5, now=T0 + timedelta(days=3650))
        assert hits and all(h.behavior.user_id == "u3" for h in hits)
    return stored


def _run_and_kill(path: Path, batch: int, acked: int, *, stall: int | None, delay: float) -> int:
    """Start an ingest worker, SIGKILL it, return the highest acknowledged batch number."""
    proc = _spawn("ingest", str(path), str(batch), *([] if stall is None else [str(stall)]))
    try:
        target = acked + 2
        while True:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"worker died: {proc.stderr.read()[-2000:]}")
            if line.startswith("MIDWAY"):
                break  # frozen inside the write transaction of the next batch
            acked = max(acked, int(line.split()[1]))
            if stall is None and acked >= target:
                time.sleep(delay)  # land somewhere inside a later batch
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for word in proc.stdout.read().split():  # ACKs written just before the kill
            if word.isdigit():
                acked = max(acked, int(word))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return acked


def test_sigkill_mid_ingest_loses_no_acknowledged_batch_and_leaves_no_partial_one(tmp_path):
    path, batch = tmp_path / "killed", 1500
    rng = random.Random(11)
    acked = -1
    # Two kills at random moments, then one guaranteed to land inside a write transaction.
    for stall in (None, None, 2):
        acked = _run_and_kill(path, batch, acked, stall=stall, delay=rng.uniform(0.0, 0.25))
        stored = _check_killed_store(path, batch, acked)
        if stall is not None:
            assert stored == acked + 1  # the half-written batch left nothing behind
        acked = stored - 1


@pytest.fixture
def built(tmp_path, embedder):
    """A closed store with two users whose index files were written, plus reference results."""
    path = tmp_path / "built"
    rows = [behavior("a", f"x{i}", days=i, text=t) for i, t in enumerate(
        ["a rainy detective story", "a space adventure", "a cooking show", "a detective in Tokyo", "a ballet film"])]
    rows += [behavior("b", f"y{i}", days=i, text=f"a documentary about birds {i}") for i in range(4)]
    now = T0 + timedelta(days=30)
    with MemoryStore.open(path, embedder=embedder) as s:
        s.add(rows)
        ref = {u: [(r.behavior.id, round(r.score, 6)) for r in s.retrieve(u, "detective", k=5, now=now)]
               for u in ("a", "b")}
        prof = s.profile("a", now=now)
    files = sorted((path / "index").rglob("*.tidx"))
    assert len(files) == 2
    return path, files, ref, prof, now


def _check_same(path, embedder, ref, prof, now, *, expect_rebuilds):
    with MemoryStore.open(path, embedder=embedder) as s:
        got = {u: [(r.behavior.id, round(r.score, 6)) for r in s.retrieve(u, "detective", k=5, now=now)]
               for u in ("a", "b")}
        assert got == ref
        assert s.profile("a", now=now).short.top_attributes == prof.short.top_attributes
        assert np.allclose(s.profile("a", now=now).long.vector, prof.long.vector, atol=1e-6)
        stats = s.stats()
    assert stats["index_rebuilds"] == expect_rebuilds and stats["index_loads"] == 2 - expect_rebuilds


def test_intact_index_files_are_loaded(built, embedder):
    path, _, ref, prof, now = built
    _check_same(path, embedder, ref, prof, now, expect_rebuilds=0)


def test_deleted_index_file_is_rebuilt(built, embedder):
    path, files, ref, prof, now = built
    files[0].unlink()
    _check_same(path, embedder, ref, prof, now, expect_rebuilds=1)
    assert files[0].exists()  # written again
    _check_same(path, embedder, ref, prof, now, expect_rebuilds=0)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_corrupted_index_file_is_rebuilt(built, embedder, damage):
    path, files, ref, prof, now = built
    data = bytearray(files[1].read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 3]
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data = bytearray()
    files[1].write_bytes(bytes(data))
    _check_same(path, embedder, ref, prof, now, expect_rebuilds=1)


def test_stale_index_file_is_rebuilt(built, embedder):
    path, files, _, _, now = built
    old = {f: f.read_bytes() for f in files}
    with MemoryStore.open(path, embedder=embedder) as s:
        (new_id,) = s.add([behavior("a", "new", days=10, text="a detective on a train")])
    for f, data in old.items():  # put the pre-add files back
        f.write_bytes(data)
    with MemoryStore.open(path, embedder=embedder) as s:
        assert new_id in {r.behavior.id for r in s.retrieve("a", "detective", k=10, now=now)}
        assert s.stats()["index_rebuilds"] == 1


def test_forget_is_real_deletion(tmp_path, embedder):
    path = tmp_path / "forget"
    secret = "zq-secret-marker-" + "lorem ipsum " * 500  # spills over SQLite overflow pages
    keep = "kept-marker-for-bob"
    with MemoryStore.open(path, embedder=embedder) as s:
        ids = s.add([
            behavior("alice-private", "s1", days=0, text=secret),
            behavior("alice-private", "s2", days=1, text="zq-second-secret"),
            behavior("alice-private", "s3", days=2, text="something ordinary"),
            behavior("bob", "k1", days=0, text=keep),
        ])
        now = T0 + timedelta(days=5)
        s.retrieve("alice-private", "secret", now=now)  # builds and writes the index file
        s.retrieve("bob", "x", now=now)
        assert s.forget("alice-private", ids=[ids[0], ids[1], ids[3]]) == 2  # bob's id is ignored
        assert s.count("alice-private") == 1 and s.count("bob") == 1
        left = {r.behavior.id for r in s.retrieve("alice-private", "secret", k=10, now=now)}
        assert left == {ids[2]}
        assert [b.id for b in s.recent("alice-private", k=10)] == [ids[2]]
        data = _store_bytes(path)
        assert b"zq-secret-marker" not in data and b"zq-second-secret" not in data
        assert keep.encode() in data  # the byte scan does see live text
    with MemoryStore.open(path, embedder=embedder) as s:
        assert {r.behavior.id for r in s.retrieve("alice-private", "secret", k=10, now=now)} == {ids[2]}
        assert s.forget("alice-private") == 1
        assert s.users() == ["bob"] and s.retrieve("alice-private", "x", now=now) == []
        assert s.profile("alice-private", now=now).n_behaviors == 0
    data = _store_bytes(path)
    assert b"alice-private" not in data and b"something ordinary" not in data and keep.encode() in data


def test_forget_before(store):
    ids = store.add([behavior("f", f"i{i}", days=i) for i in range(5)])
    assert store.forget("f", before=T0 + timedelta(days=2)) == 2
    assert sorted(b.id for b in store.recent("f")) == ids[2:]
    assert store.forget("f", before=T0 + timedelta(days=3), ids=[ids[2], ids[4]]) == 1
    assert store.forget("nobody") == 0
    with pytest.raises(MemoryStoreError):
        store.forget("f", ids="12")


def test_second_writer_process_fails_clearly(tmp_path):
    path = tmp_path / "locked"
    with MemoryStore.open(path, embedder=HashEmbedder()):
        out = subprocess.run([sys.executable, str(WORKER), "open", str(path)], capture_output=True, text=True,
                             env=ENV, timeout=120)
        assert out.returncode == 3, out.stderr
        assert "LOCKED" in out.stdout and "already open in another process" in out.stdout
        assert f"pid {os.getpid()}" in out.stdout
        with pytest.raises(StoreLockedError):  # a second handle in the same process too
            MemoryStore.open(path, embedder=HashEmbedder())
    out = subprocess.run([sys.executable, str(WORKER), "open", str(path)], capture_output=True, text=True,
                         env=ENV, timeout=120)
    assert out.returncode == 0 and "OPENED" in out.stdout


def test_store_rejects_other_embedder_and_bad_paths(tmp_path):
    with MemoryStore.open(tmp_path / "e", embedder=HashEmbedder(32)) as s:
        s.add([behavior()])
    with pytest.raises(EmbedderMismatchError):
        MemoryStore.open(tmp_path / "e", embedder=HashEmbedder(16))
    with MemoryStore.open(tmp_path / "e", embedder=HashEmbedder(32)) as s:  # lock released after the failure
        assert s.count("u1") == 1
    (tmp_path / "file").write_text("x")
    with pytest.raises(MemoryStoreError):
        MemoryStore.open(tmp_path / "file", embedder=HashEmbedder())


def test_closed_store_refuses_calls(tmp_path):
    s = MemoryStore.open(tmp_path / "c", embedder=HashEmbedder())
    s.close()
    s.close()
    with pytest.raises(MemoryStoreError, match="closed"):
        s.add([behavior()])
    with pytest.raises(MemoryStoreError, match="closed"):
        s.retrieve("u1")
