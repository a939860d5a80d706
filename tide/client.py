"""A Python client for ``tide serve`` with the calls of :class:`agent.InterestAgent`.

Switching between in-process and served Tide is one line::

    agent = InterestAgent.from_defaults(store, catalog)          # in-process
    agent = TideClient("http://127.0.0.1:8080", api_key)         # served
    agent.predict("u1", k=10)                                    # InterestPrediction either way
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from agent import ChatReply, InterestPrediction, InterestSummary, Message, TideError
from memory import Behavior, StoredBehavior

__all__ = ["AddResult", "RejectedRow", "TideClient", "TideClientError"]

DEFAULT_TIMEOUT_S = 300.0  # a cold engine batch on a CPU can take minutes


class TideClientError(TideError):
    """The server refused or failed a request.

    Attributes:
        status: HTTP status (401 no/bad key, 403 user out of scope, 404 unknown user, 413 body too large,
            422 invalid request or rejected rows, 503 engine not ready, 502 engine failure).
        code: The server's error code (``"forbidden_user"``, ``"rows_rejected"``...).
        details: Field-level details: ``{"loc": [...], "msg": ..., "type": ...}``.
    """

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.details = details or []


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row the server rejected: 1-based position in the request, the field to blame, why."""

    line: int
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of :meth:`TideClient.ingest`: per row its id (``None`` if rejected) and the rejected rows."""

    ids: list[int | None]
    rejected: list[RejectedRow]


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def behavior_row(b: Behavior | Mapping[str, Any]) -> dict[str, Any]:
    """A :class:`memory.Behavior` (or row mapping) in the API's row schema (location flattened)."""
    if isinstance(b, Mapping):
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in b.items()}
    row: dict[str, Any] = {"user_id": b.user_id, "item_id": b.item_id, "action": b.action, "text": b.text,
                           "timestamp": b.timestamp.isoformat(), "attributes": b.attributes, "weight": b.weight}
    if b.location is not None:
        row.update(lat=b.location.lat, lon=b.location.lon, place=b.location.place)
    return {k: v for k, v in row.items() if v is not None}


class TideClient:
    """Calls a running ``tide serve``; same method names and return types as ``InterestAgent``.

    Args:
        url: The server, e.g. ``http://127.0.0.1:8080``.
        api_key: A key from ``tide keys create``.
        timeout_s: Per-request timeout.
        transport: An ``httpx`` transport (tests).
    """

    def __init__(self, url: str, api_key: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TideClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TideClientError(0, "connection_error", f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                raise TideClientError(resp.status_code, err["code"], err["message"], err.get("details"))
            except (ValueError, KeyError, TypeError):
                raise TideClientError(resp.status_code, "http_error", resp.text[:500]) from None
        return resp.json()

    # -- the agent's calls ---------------------------------------------------------------------------
    def predict(self, user_id: str, now: datetime | None = None, k: int = 10, *,
                place: Mapping[str, Any] | None = None) -> InterestPrediction:
        """Next interests and items of one user (batched on the server with concurrent requests)."""
        body: dict[str, Any] = {"k": k, "at": _iso(now)}
        if place is not None:
            body["place"] = dict(place)
        return InterestPrediction.model_validate(self._call("POST", f"/v1/users/{_q(user_id)}/predict", json=body))

    def predict_many(self, user_ids: Sequence[str], now: datetime | Sequence[datetime] | None = None,
                     k: int = 10, *, progress: bool = False) -> list[InterestPrediction]:
        """Predictions for many users in one request (one engine batch on the server)."""
        at: Any = [_iso(t) for t in now] if isinstance(now, Sequence) else _iso(now)
        data = self._call("POST", "/v1/predict", json={"user_ids": list(user_ids), "k": k, "at": at})
        return [InterestPrediction.model_validate(d) for d in data]

    def summarize(self, user_id: str, now: datetime | None = None) -> InterestSummary:
        params = {} if now is None else {"at": now.isoformat()}
        return InterestSummary.model_validate(self._call("GET", f"/v1/users/{_q(user_id)}/summary", params=params))

    def summarize_many(self, user_ids: Sequence[str], now: datetime | None = None) -> list[InterestSummary]:
        return [self.summarize(u, now) for u in user_ids]

    def chat(self, user_id: str, messages: Sequence[Message | Mapping[str, str]], now: datetime | None = None
             ) -> ChatReply:
        msgs = [{"role": m.role, "content": m.content} if isinstance(m, Message) else dict(m) for m in messages]
        body = {"messages": [m for m in msgs if m.get("role") != "system"], "at": _iso(now)}
        return ChatReply.model_validate(self._call("POST", f"/v1/users/{_q(user_id)}/chat", json=body))

    def feedback(self, user_id: str, item_id: str, signal: str, *, at: datetime | None = None,
                 place: Mapping[str, Any] | None = None) -> StoredBehavior:
        """Record what the user thought of an item (``like``, ``dislike``, ``skip``, ``consumed``).

        Raises:
            TideClientError: 501 ``not_supported`` when the server's agent takes no feedback.
        """
        body: dict[str, Any] = {"item_id": item_id, "signal": signal, "at": _iso(at)}
        if place is not None:
            body["place"] = dict(place)
        return _stored(self._call("POST", f"/v1/users/{_q(user_id)}/feedback", json=body))

    # -- memory's calls ------------------------------------------------------------------------------
    def add(self, behaviors: Iterable[Behavior | Mapping[str, Any]]) -> list[int]:
        """Store behaviors atomically, all or none (like ``MemoryStore.add``); returns their ids.

        Raises:
            TideClientError: 422 ``rows_rejected`` with the line and field of each bad row; nothing stored.
        """
        result = self.ingest(behaviors, strict=True)
        return [i for i in result.ids if i is not None]

    def ingest(self, behaviors: Iterable[Behavior | Mapping[str, Any]], *, strict: bool = False) -> AddResult:
        """Store the valid rows (in one transaction) and report the rejected ones (or, strict, refuse all)."""
        rows = [behavior_row(b) for b in behaviors]
        data = self._call("POST", "/v1/behaviors", json={"behaviors": rows, "strict": strict})
        return AddResult(ids=data["ids"], rejected=[RejectedRow(r["line"], r.get("field"), r["reason"])
                                                    for r in data["rejected"]])

    def forget(self, user_id: str, before: datetime | None = None) -> int:
        """Delete a user's behaviors (all, or before a time); returns how many."""
        params = {} if before is None else {"before": before.isoformat()}
        return self._call("DELETE", f"/v1/users/{_q(user_id)}/behaviors", params=params)["deleted"]

    def recent(self, user_id: str, k: int = 20) -> list[StoredBehavior]:
        """The user's ``k`` most recent behaviors, newest first."""
        data = self._call("GET", f"/v1/users/{_q(user_id)}/behaviors", params={"limit": k})
        return [_stored(d) for d in data]

    def users(self) -> list[str]:
        """Users this key may see."""
        return [u["user_id"] for u in self._call("GET", "/v1/users")]

    def count(self, user_id: str) -> int:
        """Stored behaviors of a user this key may see (0 when unknown)."""
        return next((u["behaviors"] for u in self._call("GET", "/v1/users") if u["user_id"] == user_id), 0)

    def ready(self) -> bool:
        """Whether the server's engine has answered (``/v1/ready``)."""
        try:
            return self._http.get("/v1/ready").status_code == 200
        except httpx.HTTPError:
            return False


def _stored(data: dict[str, Any]) -> StoredBehavior:
    # Behavior validates strictly (no string-to-datetime coercion), so the one JSON-only type is converted here
    return StoredBehavior(**{**data, "timestamp": datetime.fromisoformat(data["timestamp"])})


def _q(user_id: str) -> str:
    from urllib.parse import quote

    return quote(user_id, safe="")
