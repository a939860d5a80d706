"""Cheap unit tests of the service's parts: the batcher, the key store, the metrics text, the public names."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

import service
from service import KeyNotFoundError, KeyStore, Metrics, ServiceError, hash_token
from service._batcher import PredictBatcher, PredictJob


def test_every_public_name_imports():
    for name in service.__all__:
        assert getattr(service, name) is not None


def test_concurrent_requests_share_a_batch_and_errors_stay_with_their_request():
    batches: list[list[str]] = []

    async def run(jobs):
        batches.append([j.user_id for j in jobs])
        await asyncio.sleep(0)
        return [ValueError(j.user_id) if j.user_id == "bad" else f"pred:{j.user_id}:{j.k}" for j in jobs]

    async def main():
        b = PredictBatcher(run, window_s=0.05, max_batch=4)
        b.start()
        users = ["a", "b", "bad", "c", "d", "e"]
        results = await asyncio.gather(*[b.submit(PredictJob(u, 3, None)) for u in users], return_exceptions=True)
        await b.stop()
        return results

    results = asyncio.run(main())
    assert results[:2] == ["pred:a:3", "pred:b:3"] and isinstance(results[2], ValueError)
    assert results[3:] == ["pred:c:3", "pred:d:3", "pred:e:3"]
    assert [len(x) for x in batches] == [4, 2]  # capped at max_batch, the rest in the next batch


def test_a_failing_batch_fails_each_waiter_not_the_batcher():
    calls = []

    async def run(jobs):
        calls.append(len(jobs))
        if len(calls) == 1:
            raise RuntimeError("engine down")
        return ["ok"] * len(jobs)

    async def main():
        b = PredictBatcher(run, window_s=0.0, max_batch=8)
        b.start()
        with pytest.raises(RuntimeError):
            await b.submit(PredictJob("a", 1, None))
        again = await b.submit(PredictJob("a", 1, None))
        await b.stop()
        return again

    assert asyncio.run(main()) == "ok"


def test_keys_are_stored_hashed_scoped_and_revocable(tmp_path):
    keys = KeyStore(tmp_path / "keys.db")
    token, key = keys.create("ann", ["ann", " bob "])
    admin_token, admin = keys.create("root", None)
    assert keys.lookup(token).users == frozenset({"ann", "bob"}) and keys.lookup(admin_token).admin
    assert keys.lookup(token + "x") is None
    rows = sqlite3.connect(tmp_path / "keys.db").execute("SELECT token_sha256 FROM api_keys").fetchall()
    assert {r[0] for r in rows} == {hash_token(token), hash_token(admin_token)}
    assert keys.revoke(key.key_id).revoked_at is not None
    assert keys.lookup(token).revoked_at is not None
    with pytest.raises(KeyNotFoundError):
        keys.revoke("nope")
    with pytest.raises(ServiceError):
        keys.create("empty", [" "])


def test_metrics_text_exposition():
    m = Metrics()
    m.request("GET", "/v1/users/{user_id}/summary", 200, 0.02)
    m.request("GET", "/v1/users/{user_id}/summary", 200, 2.0)
    m.batch(5)
    m.count("behaviors_added", 3)
    text = m.render()
    assert 'tide_requests_total{method="GET",route="/v1/users/{user_id}/summary",status="200"} 2' in text
    assert 'tide_request_duration_seconds_bucket{method="GET",route="/v1/users/{user_id}/summary",le="0.025"} 1' in text
    assert 'tide_request_duration_seconds_bucket{method="GET",route="/v1/users/{user_id}/summary",le="+Inf"} 2' in text
    assert 'tide_engine_batch_size_bucket{le="4"} 0' in text and 'tide_engine_batch_size_bucket{le="8"} 1' in text
    assert "tide_behaviors_added_total 3" in text


def test_the_window_is_a_gap_so_a_spread_out_burst_shares_one_batch():
    """Requests 50 ms apart: a 250 ms gap window keeps one batch open over the whole 0.55 s burst; a fixed
    250 ms window (no max_wait) closes it after about five."""

    async def burst(**kw):
        sizes: list[int] = []

        async def run(jobs):
            sizes.append(len(jobs))
            return ["ok"] * len(jobs)

        b = PredictBatcher(run, max_batch=32, **kw)
        b.start()
        tasks = []
        for i in range(12):
            tasks.append(asyncio.create_task(b.submit(PredictJob(f"u{i}", 1, None))))
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
        await b.stop()
        return sizes

    assert asyncio.run(burst(window_s=0.25, max_wait_s=30.0)) == [12]
    fixed = asyncio.run(burst(window_s=0.25))
    assert len(fixed) >= 2 and sum(fixed) == 12


def test_the_batcher_refuses_negative_windows():
    async def run(jobs):
        return []

    with pytest.raises(ValueError):
        PredictBatcher(run, window_s=-1, max_batch=1)
    with pytest.raises(ValueError):
        PredictBatcher(run, window_s=0, max_batch=0)
