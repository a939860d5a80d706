"""Child process for the durability tests (run as a script, not collected by pytest).

Usage:
    memory_worker.py ingest STORE BATCH_SIZE [STALL]
        add batches forever, printing "ACK <n>" after each returns; with STALL = k, the (k+1)-th batch of
        this run stops half-way through its write transaction, prints "MIDWAY" and waits to be killed
    memory_worker.py open STORE                try to open the store, print "OPENED" or "LOCKED: <message>"
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from memory_testkit import T0, HashEmbedder

from memory import Behavior, MemoryStore, StoreLockedError

USERS = 40


def _stall_midway(store: MemoryStore, after_rows: int) -> None:
    """Freeze inside the open write transaction after ``after_rows`` inserts (test-only hook)."""
    seen = 0

    def trace(statement: str) -> None:
        nonlocal seen
        if statement.startswith("INSERT INTO behaviors"):
            seen += 1
            if seen == after_rows:
                print("MIDWAY", flush=True)
                time.sleep(600)

    store._db.writer.set_trace_callback(trace)


def ingest(path: str, batch_size: int, stall: int | None) -> None:
    with MemoryStore.open(path, embedder=HashEmbedder()) as store:
        # Continue numbering after a previous kill.
        start = sum(store.count(u) for u in store.users()) // batch_size
        for b in range(start, 10**9):
            if stall is not None and b == start + stall:
                _stall_midway(store, batch_size // 2)
            rows = [
                Behavior(user_id=f"u{j % USERS}", item_id=f"b{b}-{j}", action="view", text=f"batch {b} row {j}",
                         timestamp=T0 + timedelta(seconds=b * batch_size + j))
                for j in range(batch_size)
            ]
            store.add(rows)
            print(f"ACK {b}", flush=True)


def try_open(path: str) -> None:
    try:
        with MemoryStore.open(path, embedder=HashEmbedder()):
            print("OPENED", flush=True)
    except StoreLockedError as exc:
        print(f"LOCKED: {exc}", flush=True)
        sys.exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "ingest":
        ingest(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        try_open(sys.argv[2])
