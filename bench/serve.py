"""Benchmark of ``tide serve``: batching under concurrency, and a bounded mixed load test — one run.

Usage::

    .venv/bin/python -m bench.serve                  # the schema-answering fake engine (logic + HTTP + store)
    .venv/bin/python -m bench.serve --real-engine    # the embedded vLLM engine (two engines: direct, served)

1. Throughput: ``--users`` users with short histories in a real store (copied: one copy for an in-process
   agent, one for the server). Each round runs ``agent.predict_many`` over all users in-process, then the
   same predictions through the server from 32 concurrent clients on loopback (one request per user);
   rounds alternate which goes first. Ratio = served throughput / ``predict_many`` throughput (median
   over rounds; target >= 0.8), and the served p50/p99 latency.
2. Load: 32 clients send a fixed number of mixed requests (writes of 1-5 rows, predictions, reads,
   summaries) within a time limit; requests served, error rate (5xx and connection errors; 4xx counted
   apart), p50/p99 per kind, and a count check that every acknowledged behavior is stored afterwards.

The server is ``tests/service/run_server.py`` (the real ``service.serve`` with a fake or the real engine).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._harness import Report, format_table, load_line, say

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "service" / "run_server.py"
GENRES = ["Action", "Comedy", "Drama", "Horror", "Sci-Fi", "Romance", "Thriller", "Documentary", "Animation"]
T0 = datetime(1997, 9, 20, tzinfo=UTC)
CLIENTS = 32


def catalog_rows(n_items: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(n_items):
        genres = sorted(set(rng.sample(GENRES, rng.randint(1, 2))))
        title = f"Film {i} ({1950 + i % 48})"
        rows.append({"item_id": f"i{i}", "title": title, "text": f'Watched "{title}" ({", ".join(genres)}).',
                     "categories": genres})
    return rows


def history(user: str, items: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for j, it in enumerate(rng.sample(items, n)):
        out.append({"user_id": user, "item_id": it["item_id"], "action": "rated",
                    "text": f'Rated "{it["title"]}" ({", ".join(it["categories"])}) {rng.randint(1, 5)}/5.',
                    "timestamp": T0 + timedelta(hours=7 * j),
                    "attributes": {"genres": it["categories"]}})
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, catalog: Path, real: bool, log: Path,
                 window_ms: float, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, str(SERVER), "--store", str(store), "--port", str(port), "--catalog", str(catalog),
           "--max-body-bytes", str(8 * 2**20), "--batch-window-ms", str(window_ms), "--batch-max-wait-ms", str(max_wait_ms)] + (["--real-engine"] if real else [])
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/v1/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


def direct_agent(store_dir: Path, catalog: Path, real: bool) -> Any:
    from agent import AgentConfig, Catalog, InterestAgent
    from memory import MemoryStore

    store = MemoryStore.open(store_dir)
    cat = Catalog.from_file(catalog, store.embedder)
    if real:
        from agent import VLLMEngine

        engine = VLLMEngine.from_defaults()
    else:
        spec = importlib.util.spec_from_file_location("fake_engine", ROOT / "tests" / "service" / "fake_engine.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        engine = module.SchemaEngine()
    return InterestAgent.from_defaults(store, cat, engine=engine, config=AgentConfig(fallback=True))


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def batch_totals(url: str, token: str) -> tuple[int, int]:
    """(engine batches, prediction requests in them) so far, from the server's /metrics."""
    import httpx

    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    vals = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith(("tide_engine_batch_size_count", "tide_engine_batch_size_sum"))}
    return int(vals.get("tide_engine_batch_size_count", 0)), int(vals.get("tide_engine_batch_size_sum", 0))


def served_round(url: str, token: str, users: list[str]) -> tuple[float, list[float], int]:
    """Every user predicted once by 32 concurrent clients; (seconds, latencies, errors).

    The clients (an ``httpx.Client`` each: building one costs tens of ms of GIL-bound SSL set-up) exist and
    wait at a barrier before the clock starts, as an application's long-lived clients would; otherwise the
    requests trickle in over a second and the server's batcher sees them as separate bursts.
    """
    import httpx

    todo = list(users)
    lock = threading.Lock()
    lat: list[float] = []
    errors = [0]
    clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
               for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)

    def client(c: httpx.Client) -> None:
        start.wait()
        while True:
            with lock:
                if not todo:
                    return
                user = todo.pop()
            t = time.perf_counter()
            r = c.post(f"/v1/users/{user}/predict", json={"k": 10})
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                errors[0] += r.status_code != 200

    threads = [threading.Thread(target=client, args=(c,)) for c in clients]
    try:
        for th in threads:
            th.start()
        start.wait()
        t0 = time.perf_counter()
        for th in threads:
            th.join()
        return time.perf_counter() - t0, lat, errors[0]
    finally:
        for c in clients:
            c.close()


def throughput(args: argparse.Namespace, report: Report, direct: Any, url: str, token: str,
               users: list[str]) -> None:
    ratios, served_lat, errors, batches = [], [], 0, []
    for r in range(args.rounds):
        order = ["direct", "served"] if r % 2 == 0 else ["served", "direct"]
        times = {}
        for mode in order:
            if mode == "direct":
                t = time.perf_counter()
                direct.predict_many(users, k=10, progress=False)
                times["direct"] = time.perf_counter() - t
            else:
                before = batch_totals(url, token)
                times["served"], lat, err = served_round(url, token, users)
                after = batch_totals(url, token)
                batches.append((after[0] - before[0], after[1] - before[1]))
                served_lat += lat
                errors += err
        ratios.append(times["direct"] / times["served"])  # = served throughput / direct throughput
        say(f"  round {r + 1}: predict_many {len(users) / times['direct']:.2f} users/s, served "
            f"{len(users) / times['served']:.2f} users/s, ratio {ratios[-1]:.2f}; served in "
            f"{batches[-1][0]} engine batch(es)")
    med = statistics.median(ratios)
    report.row("throughput", "users per round", f"{len(users)} ({args.rounds} rounds, {CLIENTS} clients)")
    report.row("throughput", "served / predict_many", f"{med:.2f} (rounds: {', '.join(f'{x:.2f}' for x in ratios)};"
               " target >= 0.8)")
    report.row("throughput", "served latency p50 / p99", f"{pct(served_lat, .5) * 1000:.0f} / "
               f"{pct(served_lat, .99) * 1000:.0f} ms")
    report.row("throughput", "served engine batches / round", ", ".join(f"{n} ({m} requests)" for n, m in batches)
               + f" (window {args.batch_window_ms:g} ms gap, max wait {args.batch_max_wait_ms:g} ms)")
    report.row("throughput", "served errors", str(errors))
    report.summary["throughput_ratio"] = med


def load_test(args: argparse.Namespace, report: Report, url: str, token: str, users: list[str],
              items: list[dict[str, Any]]) -> None:
    import httpx

    rng = random.Random(1)
    plan = [rng.choices(["write", "predict", "read", "summary", "timeline"], [40, 30, 15, 10, 5])[0]
            for _ in range(args.load_requests)]
    lock = threading.Lock()
    lat: dict[str, list[float]] = defaultdict(list)
    status: dict[str, int] = defaultdict(int)
    acked: dict[str, set[str]] = defaultdict(set)
    seq = [0]
    deadline = time.monotonic() + args.load_time_limit

    def client(cid: int) -> None:
        crng = random.Random(100 + cid)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as c:
            while time.monotonic() < deadline:
                with lock:
                    if not plan:
                        return
                    kind = plan.pop()
                    seq[0] += 1
                    n = seq[0]
                user = crng.choice(users)
                t = time.perf_counter()
                try:
                    if kind == "write":
                        rows = [{"user_id": user, "item_id": f"load{n}-{j}", "action": "view",
                                 "text": f"Viewed {crng.choice(items)['title']}.",
                                 "timestamp": (T0 + timedelta(days=400, seconds=n * 10 + j)).isoformat()}
                                for j in range(crng.randint(1, 5))]
                        r = c.post("/v1/behaviors", json={"behaviors": rows})
                    elif kind == "predict":
                        r = c.post(f"/v1/users/{user}/predict", json={"k": 10})
                    elif kind == "read":
                        r = c.get(f"/v1/users/{user}/behaviors", params={"limit": 20})
                    elif kind == "summary":
                        r = c.get(f"/v1/users/{user}/summary")
                    else:
                        r = c.get(f"/v1/users/{user}/timeline")
                    code = str(r.status_code)
                except httpx.HTTPError as exc:
                    code, r = f"conn:{type(exc).__name__}", None
                dt = time.perf_counter() - t
                with lock:
                    lat[kind].append(dt)
                    status[code] += 1
                    if kind == "write" and r is not None and r.status_code == 200:
                        acked[user].update(row["item_id"] for row in rows)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    served = sum(status.values())
    bad = sum(n for code, n in status.items() if not code.startswith(("2", "4")))
    client_errors = sum(n for code, n in status.items() if code.startswith("4"))
    missing = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as c:
        for user, want in acked.items():
            have = {b["item_id"] for b in c.get(f"/v1/users/{user}/behaviors", params={"limit": 1000}).json()}
            missing += len(want - have)
    everything = [x for xs in lat.values() for x in xs]
    report.row("load", "requests served / planned", f"{served} / {args.load_requests} in {wall:.1f} s "
               f"(limit {args.load_time_limit} s; {served / wall:.1f} req/s)")
    report.row("load", "status counts", json.dumps(dict(sorted(status.items()))))
    report.row("load", "error rate (5xx + connection)", f"{bad / max(served, 1):.4f} ({bad}); 4xx: {client_errors}")
    report.row("load", "p50 / p99 all", f"{pct(everything, .5) * 1000:.0f} / {pct(everything, .99) * 1000:.0f} ms")
    for kind in sorted(lat):
        report.row("load", f"p50 / p99 {kind} (n={len(lat[kind])})",
                   f"{pct(lat[kind], .5) * 1000:.0f} / {pct(lat[kind], .99) * 1000:.0f} ms")
    report.row("load", "acknowledged behaviors missing", f"{missing} of {sum(len(v) for v in acked.values())}")
    report.summary.update(load_served=served, load_errors=bad, load_missing=missing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-engine", action="store_true")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--history", type=int, default=20, help="behaviors per user")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load-only", action="store_true", help="skip the throughput part (no in-process engine)")
    parser.add_argument("--load-requests", type=int, default=2000)
    parser.add_argument("--load-time-limit", type=float, default=240.0)
    parser.add_argument("--batch-window-ms", type=float, default=10.0, help="the server's batching gap")
    parser.add_argument("--batch-max-wait-ms", type=float, default=250.0,
                        help="the server's longest batch wait (= the gap: a fixed window)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    from memory import MemoryStore
    from service import KeyStore

    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="tide-bench-serve-"))
    report = Report({"engine": "vllm (embedded)" if args.real_engine else "schema-fake"})
    proc = None
    direct = None
    try:
        items = catalog_rows(args.items, rng)
        catalog = tmp / "catalog.jsonl"
        catalog.write_text("".join(json.dumps(r) + "\n" for r in items))
        users = [f"u{i}" for i in range(args.users)]
        say(f"filling a store: {args.users} users x {args.history} behaviors; {load_line()}")
        with MemoryStore.open(tmp / "served") as st:
            st.add([b for u in users for b in history(u, items, args.history, rng)])
        shutil.copytree(tmp / "served", tmp / "direct", ignore=shutil.ignore_patterns("LOCK"))
        token = KeyStore.for_store(tmp / "served").create("bench", None)[0]
        say("starting the server and the in-process agent")
        proc, url = start_server(tmp / "served", catalog, args.real_engine, tmp / "server.log",
                                 args.batch_window_ms, args.batch_max_wait_ms)
        if not args.load_only:
            direct = direct_agent(tmp / "direct", catalog, args.real_engine)
            direct.predict_many(users[:4], k=10, progress=False)  # warm both before timing
            served_round(url, token, users[:4])
            throughput(args, report, direct, url, token, users)
            direct.close()
            direct.store.close()
            direct = None
        say("load test")
        load_test(args, report, url, token, users, items)
    finally:
        if direct is not None:
            direct.close()
            direct.store.close()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    table = format_table(report.rows)
    header = (f"bench/serve.py — engine: {report.summary['engine']}; {CLIENTS} clients on loopback; "
              f"{load_line()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
              f"command: {' '.join(['python -m bench.serve', *sys.argv[1:]])}\n")
    print(header + table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + table + "\n")


if __name__ == "__main__":
    main()
