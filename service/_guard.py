"""The ASGI layer in front of every route: metrics, the body-size limit, and API-key authentication.

Authentication happens here, before the body is read or parsed, so a request without a valid key gets 401
whatever its body holds, and nothing behind it runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._keys import KeyStore
from ._metrics import Metrics

__all__ = ["OPEN_PATHS", "Guard", "error_json"]

# no key needed: liveness/readiness probes, metrics (no user data), the page and its files, the schema
OPEN_PATHS = ("/v1/health", "/v1/ready")
PROTECTED_PREFIX = "/v1/"


def error_json(code: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details or []}}).encode()


class Guard:
    """Pure ASGI middleware (no per-request threads, streaming bodies are counted as they arrive)."""

    def __init__(self, app: Any, *, keys: KeyStore, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_tracking(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_tracking)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unrouted"  # raw paths hold user ids: never labels
            self.metrics.request(scope["method"], path, status["code"], time.perf_counter() - started)

    async def _handle(self, scope: dict, receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        if path.startswith(PROTECTED_PREFIX) and path not in OPEN_PATHS:
            problem = self._authenticate(scope, headers)
            if problem is not None:
                await _respond(send, 401, error_json(*problem), {"www-authenticate": 'Bearer realm="tide"'})
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await _respond(send, 413, error_json(
                "body_too_large", f"request body over {self.max_body_bytes} bytes",
                [{"loc": ["body"], "msg": f"{length} bytes > limit {self.max_body_bytes}", "type": "too_large"}]))
            return
        # the body is read here, counted as it arrives, and replayed: a chunked body without a length
        # cannot slip past the limit, and the route sees it whole
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                await _respond(send, 413, error_json(
                    "body_too_large", f"request body over {self.max_body_bytes} bytes",
                    [{"loc": ["body"], "msg": f"more than {self.max_body_bytes} bytes", "type": "too_large"}]))
                return
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        replayed = {"v": False}

        async def replay() -> dict:
            if not replayed["v"]:
                replayed["v"] = True
                return body
            return await receive()

        await self.app(scope, replay, send)

    def _authenticate(self, scope: dict, headers: dict[str, str]) -> tuple[str, str] | None:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key", "").strip()
        if not token:
            return "missing_key", "an API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        key = self.keys.lookup(token)
        if key is None:
            return "invalid_key", "this API key is not known"
        if key.revoked_at is not None:
            return "revoked_key", f"API key {key.key_id} was revoked at {key.revoked_at.isoformat()}"
        scope.setdefault("state", {})["api_key"] = key
        return None


async def _respond(send: Any, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
