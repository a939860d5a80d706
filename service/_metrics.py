"""Prometheus text exposition, written by hand: a few counters and histograms, no global registry."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

__all__ = ["LATENCY_BUCKETS", "Metrics"]

# seconds: a health check is sub-millisecond, an engine batch on a CPU takes seconds
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# users per engine batch; the batcher caps a batch at the agent's batch size (32 by default)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        suffix = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{suffix} {self.total:.6f}")
        out.append(f"{name}_count{suffix} {self.n}")
        return out


def _labels(**kw: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in kw.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts and latencies per route, engine batch sizes, behaviors stored and rows rejected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._batches = _Histogram(BATCH_BUCKETS)
        self._counters: dict[str, int] = defaultdict(int)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request (``route`` is the path template, so user ids do not explode labels)."""
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            hist = self._latency.get((method, route))
            if hist is None:
                hist = self._latency[(method, route)] = _Histogram(LATENCY_BUCKETS)
            hist.observe(seconds)

    def batch(self, size: int) -> None:
        """Record one engine batch of ``size`` prediction requests."""
        with self._lock:
            self._batches.observe(size)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to a plain counter (``behaviors_added``, ``rows_rejected``, ``behaviors_forgotten``)."""
        with self._lock:
            self._counters[name] += n

    def render(self) -> str:
        """The exposition text (format 0.0.4)."""
        with self._lock:
            lines = ["# HELP tide_requests_total HTTP requests by method, route and status.",
                     "# TYPE tide_requests_total counter"]
            for (method, route, status), n in sorted(self._requests.items()):
                lines.append(f"tide_requests_total{{{_labels(method=method, route=route, status=status)}}} {n}")
            lines += ["# HELP tide_request_duration_seconds Request latency by method and route.",
                      "# TYPE tide_request_duration_seconds histogram"]
            for (method, route), hist in sorted(self._latency.items()):
                lines += hist.lines("tide_request_duration_seconds", _labels(method=method, route=route))
            lines += ["# HELP tide_engine_batch_size Prediction requests per engine batch.",
                      "# TYPE tide_engine_batch_size histogram"]
            lines += self._batches.lines("tide_engine_batch_size", "")
            for name, n in sorted(self._counters.items()):
                lines += [f"# TYPE tide_{name}_total counter", f"tide_{name}_total {n}"]
        return "\n".join(lines) + "\n"
