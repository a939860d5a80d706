"""The API against a real server: atomic writes, one policy for bad rows, bad input with field details,
forget, metrics, and the Python client returning the agent's own types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svc_helpers import T0, row

from agent import ChatReply, InterestPrediction, InterestSummary
from tide.client import TideClient, TideClientError

pytestmark = pytest.mark.slow


def _count(server, user):
    with server.client() as c:
        return {u["user_id"]: u["behaviors"] for u in c.get("/v1/users").json()}.get(user, 0)


def test_valid_rows_are_stored_and_bad_rows_rejected_with_line_and_field(served):
    future = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    rows = [row("carol", "m1", 0), row("carol", "m2", 1, timestamp=future), "not a row",
            row("carol", "m3", 2, lat=100, lon=0), row("carol", "m4", 3)]
    with served.client() as c:
        r = c.post("/v1/behaviors", json={"behaviors": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == 2 and body["ids"][1:4] == [None, None, None] and None not in (body["ids"][0], body["ids"][4])
    assert [(x["line"], x["field"]) for x in body["rejected"]] == [(2, "timestamp"), (3, None), (4, "lat")]
    assert _count(served, "carol") == 2


def test_strict_batch_with_a_bad_row_stores_nothing(served):
    before = _count(served, "dan")
    with served.client() as c:
        r = c.post("/v1/behaviors", json={"behaviors": [row("dan", "m1", 0), row("dan", "m2", 1, weight=-1)],
                                          "strict": True})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "rows_rejected"
    assert err["details"][0]["loc"] == ["body", "behaviors", 2, "weight"]
    assert _count(served, "dan") == before == 0


def test_the_same_behavior_twice_is_stored_once(served):
    with served.client() as c:
        first = c.post("/v1/behaviors", json={"behaviors": [row("erin", "m1", 0)]}).json()
        again = c.post("/v1/behaviors", json={"behaviors": [row("erin", "m1", 0), row("erin", "m1", 0)]}).json()
    assert again["ids"] == first["ids"] * 2
    assert _count(served, "erin") == 1


@pytest.mark.parametrize(("body", "status", "code", "loc"), [
    (b'{"behaviors": [', 400, "malformed_json", ["body", 15]),
    (b'{"behaviors": "abc"}', 422, "invalid_request", ["body", "behaviors"]),
    (b'{"behaviors": [], "strict": false}', 422, "invalid_request", ["body", "behaviors"]),
    (b'{"behaviors": [{}], "strict": "yes"}', 422, "invalid_request", ["body", "strict"]),
    (b'{"behaviors": [{}], "extra": 1}', 422, "invalid_request", ["body", "extra"]),
])
def test_bad_bodies_get_field_level_details(served, body, status, code, loc):
    with served.client() as c:
        r = c.post("/v1/behaviors", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert loc in [d["loc"] for d in err["details"]]


@pytest.mark.parametrize(("body", "loc"), [({"k": "ten"}, ["body", "k"]), ({"k": 0}, ["body", "k"]),
                                           ({"at": "yesterday"}, ["body", "at"]), ({"q": 1}, ["body", "q"])])
def test_bad_predict_arguments(served, body, loc):
    with served.client() as c:
        r = c.post("/v1/users/ann/predict", json=body)
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["error"]["details"]]


def test_oversized_bodies_are_refused_before_parsing(served):
    big = b'{"behaviors": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'
    with served.client() as c:
        r = c.post("/v1/behaviors", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

        def chunks():  # no content-length: counted as it streams
            for _ in range(40):
                yield b"x" * 65536
        r = c.post("/v1/behaviors", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/users/nobody/predict", {}), ("GET", "/v1/users/nobody/summary", None),
    ("POST", "/v1/users/nobody/chat", {"messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/v1/users/nobody/timeline", None), ("GET", "/v1/users/nobody/behaviors", None),
    ("DELETE", "/v1/users/nobody/behaviors", None), ("POST", "/v1/predict", {"user_ids": ["nobody"]}),
])
def test_unknown_user_is_404(served, method, path, body):
    with served.client() as c:
        r = c.request(method, path, json=body)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "unknown_user"


def test_forget_before_a_time_then_the_whole_user(served):
    with served.client() as c:
        c.post("/v1/behaviors", json={"behaviors": [row("fay", f"m{i}", i) for i in range(1, 6)]})
        r = c.delete("/v1/users/fay/behaviors", params={"before": (T0 + timedelta(days=3)).isoformat()})
        assert r.json() == {"user_id": "fay", "deleted": 2}
        left = c.get("/v1/users/fay/behaviors").json()
        assert sorted(b["item_id"] for b in left) == ["m3", "m4", "m5"]
        assert c.delete("/v1/users/fay/behaviors").json()["deleted"] == 3
        assert c.get("/v1/users/fay/summary").status_code == 404
        assert c.delete("/v1/users/fay/behaviors", params={"before": "2020-01-01T00:00:00"}).status_code == 404


def test_forget_with_a_naive_time_is_422(served):
    with served.client() as c:
        r = c.delete("/v1/users/ann/behaviors", params={"before": "2020-01-01T00:00:00"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["before"]
    assert _count(served, "ann") >= 6


def test_metrics_count_requests_and_batches(served):
    with served.client() as c:
        c.post("/v1/users/ann/predict", json={"k": 2})
    text = httpx.get(served.url + "/metrics").text
    assert 'tide_requests_total{method="POST",route="/v1/users/{user_id}/predict",status="200"}' in text
    assert "tide_engine_batch_size_count" in text and "tide_behaviors_added_total" in text
    assert "ann" not in text  # user ids never become labels


def test_client_returns_the_agents_types(served):
    with TideClient(served.url, served.tokens["annbob"]) as client:
        assert client.ready()
        pred = client.predict("ann", k=3)
        assert isinstance(pred, InterestPrediction) and len(pred.next_items) == 3
        many = client.predict_many(["ann", "bob"], k=2)
        assert [p.user_id for p in many] == ["ann", "bob"] and all(len(p.next_items) == 2 for p in many)
        assert many[0].next_items == pred.next_items[:2]  # cut to k from the same fused order
        assert isinstance(client.summarize("bob"), InterestSummary)
        reply = client.chat("ann", [{"role": "user", "content": "Is she into sci-fi?"}])
        assert isinstance(reply, ChatReply) and reply.text
        assert [b.item_id for b in client.recent("bob", k=2)] == ["m5", "m10"]
        with pytest.raises(TideClientError) as exc:
            client.predict("carol")
        assert exc.value.status == 403 and exc.value.code == "forbidden_user"


def test_client_add_is_all_or_nothing(served):
    from memory import Behavior

    with TideClient(served.url, served.tokens["admin"]) as client:
        ids = client.add([Behavior(user_id="gus", item_id="m1", action="rated", text="Rated m1.", timestamp=T0)])
        assert len(ids) == 1 and client.count("gus") == 1
        with pytest.raises(TideClientError) as exc:
            client.add([row("gus", "m2", 1), row("gus", "m3", 2, text="")])
        assert exc.value.code == "rows_rejected" and exc.value.details[0]["loc"][-1] == "text"
        assert client.count("gus") == 1
        result = client.ingest([row("gus", "m2", 1), row("gus", "m3", 2, text="")])
        assert result.ids[0] is not None and [(r.line, r.field) for r in result.rejected] == [(2, "text")]
        assert client.forget("gus") == 2


def test_feedback_is_stored_or_clearly_unsupported(served):
    from agent import InterestAgent

    with served.client("ann") as c:
        before = _count(served, "ann")
        r = c.post("/v1/users/ann/feedback", json={"item_id": "m7", "signal": "like"})
        bad = c.post("/v1/users/ann/feedback", json={"item_id": "m7", "signal": "love"})
    assert bad.status_code == 422 and ["body", "signal"] in [d["loc"] for d in bad.json()["error"]["details"]]
    if callable(getattr(InterestAgent, "feedback", None)):
        assert r.status_code == 200, r.text
        assert r.json()["item_id"] == "m7" and _count(served, "ann") == before + 1
    else:
        assert r.status_code == 501 and r.json()["error"]["code"] == "not_supported"
        assert _count(served, "ann") == before


def test_predict_takes_a_time_and_a_place(served):
    with served.client() as c:
        r = c.post("/v1/users/ann/predict", json={"k": 2, "at": "1997-11-05T18:00:00Z",
                                                  "place": {"lat": 48.2, "lon": 16.37, "place": "Vienna"}})
        assert r.status_code == 200, r.text
        assert r.json()["as_of"].startswith("1997-11-05T18:00:00")
        bad = c.post("/v1/users/ann/predict", json={"place": {"lat": 200, "lon": 0}})
        assert bad.status_code == 422
        assert ["body", "place", "lat"] in [d["loc"] for d in bad.json()["error"]["details"]]
