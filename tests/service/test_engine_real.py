"""The served agent on the real embedded vLLM engine, once: predict, summary and chat through the client."""

from __future__ import annotations

import os

import pytest
from svc_helpers import SEED, make_keys, start_server

from agent import ChatReply, InterestPrediction, InterestSummary
from tide.client import TideClient

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_served_agent_on_the_real_engine(tmp_path):
    store = tmp_path / "store"
    tokens = make_keys(store)
    server = start_server(store, tmp_path / "server.log", "--real-engine", tokens=tokens)
    try:
        with TideClient(server.url, tokens["admin"]) as client:
            assert client.ingest(SEED).rejected == []
            preds = client.predict_many(["ann", "bob"], k=5)
            assert all(isinstance(p, InterestPrediction) and len(p.next_items) == 5 for p in preds)
            assert preds[0].provenance.engine.get("engine") not in (None, "schema-fake")
            assert all(p.provenance.fallback is None for p in preds), [p.provenance for p in preds]
            seen = {"m1", "m2", "m3", "m4", "m11", "m5"}
            assert not seen & {it.item_id for it in preds[0].next_items}  # consumed items are excluded
            summary = client.summarize("ann")
            assert isinstance(summary, InterestSummary) and summary.text
            reply = client.chat("ann", [{"role": "user", "content": "Is she into sci-fi lately?"}])
            assert isinstance(reply, ChatReply) and reply.text
        shot = os.environ.get("TIDE_PAGE_SCREENSHOT_ENGINE")
        if shot:
            from test_page import open_browser, show_user

            with open_browser() as browser:
                show_user(browser, server, "admin", shot)
    finally:
        assert server.stop() in (0, -15)
