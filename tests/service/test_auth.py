"""Access control on every endpoint: 401 for no, wrong or revoked keys; 403 outside a key's scope; and in
every refused case nothing is read back or written."""

from __future__ import annotations

import httpx
import pytest
from svc_helpers import row

pytestmark = pytest.mark.slow

# every route that touches one user, as (method, path, body) on user {u}
USER_ROUTES = [
    ("GET", "/v1/users/{u}/behaviors", None),
    ("DELETE", "/v1/users/{u}/behaviors", None),
    ("GET", "/v1/users/{u}/timeline", None),
    ("POST", "/v1/users/{u}/predict", {"k": 3}),
    ("GET", "/v1/users/{u}/summary", None),
    ("POST", "/v1/users/{u}/chat", {"messages": [{"role": "user", "content": "what does she like?"}]}),
    ("POST", "/v1/predict", {"user_ids": ["{u}"], "k": 3}),
    ("POST", "/v1/behaviors", {"behaviors": [row("{u}", "m9", 40)]}),
    ("POST", "/v1/users/{u}/feedback", {"item_id": "m9", "signal": "like"}),
]
ALL_ROUTES = [*USER_ROUTES, ("GET", "/v1/users", None)]


def _fill(body, user):
    if body is None:
        return None
    if isinstance(body, dict):
        return {k: _fill(v, user) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, user) for v in body]
    return body.replace("{u}", user) if isinstance(body, str) else body


def _send(server, headers, method, path, body, user="bob"):
    return httpx.request(method, server.url + path.replace("{u}", user), json=_fill(body, user), headers=headers,
                         timeout=120)


def _state(server):
    with server.client() as c:
        users = {u["user_id"]: u["behaviors"] for u in c.get("/v1/users").json()}
        bob = [b["id"] for b in c.get("/v1/users/bob/behaviors", params={"limit": 1000}).json()]
    return users, bob


@pytest.mark.parametrize("who", ["none", "wrong", "revoked"])
@pytest.mark.parametrize(("method", "path", "body"), ALL_ROUTES)
def test_no_wrong_or_revoked_key_is_401_and_changes_nothing(served, who, method, path, body):
    before = _state(served)
    headers = {} if who == "none" else {"Authorization": f"Bearer {served.tokens[who]}"}
    r = _send(served, headers, method, path, body)
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["code"] == {"none": "missing_key", "wrong": "invalid_key", "revoked": "revoked_key"}[who]
    assert "bob" not in r.text and "Rated" not in r.text
    assert _state(served) == before


def test_key_in_x_api_key_header_works(served):
    r = httpx.get(served.url + "/v1/users", headers={"X-API-Key": served.tokens["ann"]})
    assert r.status_code == 200 and [u["user_id"] for u in r.json()] == ["ann"]


@pytest.mark.parametrize(("method", "path", "body"), USER_ROUTES)
def test_key_scoped_to_ann_cannot_touch_bob(served, method, path, body):
    before = _state(served)
    r = _send(served, {"Authorization": f"Bearer {served.tokens['ann']}"}, method, path, body, user="bob")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden_user"
    assert "Rated" not in r.text
    assert _state(served) == before


def test_scoped_key_lists_only_its_users(served):
    with served.client("ann") as c:
        assert [u["user_id"] for u in c.get("/v1/users").json()] == ["ann"]
    with served.client("annbob") as c:
        assert [u["user_id"] for u in c.get("/v1/users").json()] == ["ann", "bob"]


def test_a_batch_with_one_out_of_scope_row_stores_nothing(served):
    before = _state(served)
    with served.client("ann") as c:
        r = c.post("/v1/behaviors", json={"behaviors": [row("ann", "m9", 50), row("bob", "m9", 50)]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_user"
    assert _state(served) == before


def test_predict_many_with_one_out_of_scope_user_is_refused(served):
    with served.client("ann") as c:
        r = c.post("/v1/predict", json={"user_ids": ["ann", "bob"], "k": 2})
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), [r for r in USER_ROUTES if r[0] != "DELETE"
                                                       and "feedback" not in r[1]])
def test_scoped_key_can_use_every_route_on_its_own_user(served, method, path, body):
    r = _send(served, {"Authorization": f"Bearer {served.tokens['ann']}"}, method, path, body, user="ann")
    assert r.status_code == 200, r.text


def test_open_routes_need_no_key(served):
    assert httpx.get(served.url + "/v1/health").json() == {"status": "ok"}
    assert httpx.get(served.url + "/v1/ready").json()["ready"] is True
    assert "tide_requests_total" in httpx.get(served.url + "/metrics").text
    assert "/v1/users/{user_id}/predict" in httpx.get(served.url + "/openapi.json").json()["paths"]
    assert "<title>Tide" in httpx.get(served.url + "/").text


def test_revocation_takes_effect_on_a_running_server(served):
    from service import KeyStore

    keys = KeyStore.for_store(served.store)
    token, key = keys.create("temp", ["ann"])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(served.url + "/v1/users", headers=headers).status_code == 200
    keys.revoke(key.key_id)
    assert httpx.get(served.url + "/v1/users", headers=headers).status_code == 401
    keys.close()
