"""OpenAIEngine transport: retries on 5xx/refused/timeouts within a bounded time; 4xx fails at once.

A tiny scripted HTTP server on 127.0.0.1 stands in for vllm serve here; the real server is exercised in
test_engines_real.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent import EngineError, EngineUnavailableError, GenerationRequest, OpenAIEngine

COMPLETION = {"choices": [{"text": " hi", "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


class Flaky:
    def __init__(self, statuses: list[int], delay_s: float = 0.0):
        self.statuses = statuses
        self.delay_s = delay_s
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                outer.calls += 1
                status = outer.statuses.pop(0) if outer.statuses else 200
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                body = json.dumps(COMPLETION if status == 200 else {"error": "x"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:  # the client timed out first, as the timeout test intends
                    pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer()

            do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


REQ = GenerationRequest(prompt="x", max_tokens=4)


def _engine(url, **kw):
    return OpenAIEngine.from_url(url, model="m", **kw)


def test_retries_5xx_then_succeeds():
    srv = Flaky([503, 500, 200])
    try:
        eng = _engine(srv.url, max_attempts=5)
        [out] = eng.generate([REQ])
        assert out.text == " hi" and out.completion_tokens == 1
        assert srv.calls == 3 and eng.retries == 2
    finally:
        srv.close()


def test_4xx_is_not_retried():
    srv = Flaky([400])
    try:
        with pytest.raises(EngineError, match="HTTP 400"):
            _engine(srv.url).generate([REQ])
        assert srv.calls == 1
    finally:
        srv.close()


def test_exhausted_5xx_raises_unavailable_with_attempts():
    srv = Flaky([503] * 10)
    try:
        with pytest.raises(EngineUnavailableError) as info:
            _engine(srv.url, max_attempts=3).generate([REQ])
        assert info.value.attempts == 3 and info.value.url == srv.url
    finally:
        srv.close()


def test_connection_refused_is_bounded_in_time():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on `port` now
    eng = _engine(f"http://127.0.0.1:{port}/v1", max_attempts=100, max_retry_s=1.0)
    with pytest.raises(EngineUnavailableError) as info:
        eng.generate([REQ])
    assert 1 < info.value.attempts < 100


def test_timeout_is_retried():
    srv = Flaky([], delay_s=0.5)
    try:
        eng = _engine(srv.url, timeout_s=0.1, max_attempts=2)
        with pytest.raises(EngineUnavailableError, match="2 attempt"):
            eng.generate([REQ])
    finally:
        srv.close()
