"""Fixtures for the service tests: one shared real server process (see ``svc_helpers``)."""

from __future__ import annotations

import pytest
from svc_helpers import SEED, Server, make_keys, start_server


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Server:
    """One shared server (fake engine, 1 MiB body limit) seeded with users ann and bob."""
    store = tmp_path_factory.mktemp("served") / "store"
    tokens = make_keys(store)
    server = start_server(store, store.parent / "server.log", tokens=tokens)
    with server.client() as c:
        r = c.post("/v1/behaviors", json={"behaviors": SEED})
        assert r.status_code == 200 and r.json()["stored"] == len(SEED), r.text
    yield server
    # uvicorn re-raises the SIGTERM it caught once it has drained, so -15 is a clean exit too
    assert server.stop() in (0, -15), server.log.read_text()[-3000:]
    assert "drained; store closed" in server.log.read_text()
