"""The writer is never starved: a worker's insert latency on the embedded endpoint, idle and while
16 slow dashboard (reader) queries run, in the same run. Target: p95 under load within 2x idle.

Before the readers' queue, thread priority and separate handles (issue 24's battery): 16 concurrent
slow reader queries took the writer's insert p95 from 24-51 ms to 69-653 ms, and a dashboard's
``SELECT 1`` waited 55-71 s.

    python benchmarks/endpoint_contention.py [--inserts 60] [--rows 5000] [--readers 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import clickhouse_connect
from common import free_port

WRITER = ("default", "bench-writer")
READER = ("dozor_reader", "bench-reader")
SLOW = "SELECT count() FROM numbers(300000000) WHERE sipHash64(number) % 7 = 1"


def _start(state: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DOZOR_STATE_DIR": str(state), "DOZOR_CLICKHOUSE_URL": f"http://127.0.0.1:{port}",
           "DOZOR_CLICKHOUSE_PASSWORD": WRITER[1], "DOZOR_CLICKHOUSE_READER_PASSWORD": READER[1]}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "dozor", "clickhouse", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the endpoint did not start")


def _batch(n: int, start: int) -> list[list]:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        [
            start + i,
            t0 + dt.timedelta(seconds=start + i),
            "astana",
            "yesil",
            f"cam-{i % 97}",
            "speeding",
            51.1,
            71.4,
        ]
        for i in range(n)
    ]


def _inserts(client, count: int, rows: int, offset: int) -> list[float]:
    columns = ["id", "ts", "city", "district", "camera_id", "violation_type", "lat", "lon"]
    took = []
    for k in range(count):
        t = time.perf_counter()
        client.insert("bench_insert", _batch(rows, offset + k * rows), column_names=columns)
        took.append((time.perf_counter() - t) * 1000)
    return took


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inserts", type=int, default=60)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--readers", type=int, default=16)
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        proc = _start(Path(state), port)
        try:
            w = clickhouse_connect.get_client(host="127.0.0.1", port=port, username=WRITER[0], password=WRITER[1],
                                              autogenerate_session_id=False)  # fmt: skip
            w.command(
                "CREATE TABLE bench_insert (id UInt64, ts DateTime64(3, 'UTC'), city LowCardinality(String), "
                "district LowCardinality(String), camera_id LowCardinality(String), "
                "violation_type LowCardinality(String), lat Float64, lon Float64) "
                "ENGINE = MergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (city, ts)"
            )
            _inserts(w, 5, args.rows, 10**9)  # warm-up
            idle = _inserts(w, args.inserts, args.rows, 0)

            stop = threading.Event()
            outcomes = {"answered": 0, "503": 0, "time limit": 0, "other": 0}
            lock = threading.Lock()

            def reader() -> None:
                import base64

                auth = base64.b64encode(f"{READER[0]}:{READER[1]}".encode()).decode()
                while not stop.is_set():
                    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=SLOW.encode(),
                                                 headers={"Authorization": f"Basic {auth}"})  # fmt: skip
                    try:
                        urllib.request.urlopen(req, timeout=120).read()
                        kind = "answered"
                    except urllib.error.HTTPError as e:
                        code = e.headers.get("X-ClickHouse-Exception-Code")
                        kind = "503" if e.code == 503 else "time limit" if code == "159" else "other"
                        if e.code == 503:
                            time.sleep(float(e.headers.get("Retry-After") or 1))
                    except OSError:
                        kind = "other"
                    with lock:
                        outcomes[kind] += 1

            threads = [threading.Thread(target=reader, daemon=True) for _ in range(args.readers)]
            for t in threads:
                t.start()
            time.sleep(3)  # let the slow queries take their handles and fill the queue
            ping_t = time.perf_counter()
            try:
                r = clickhouse_connect.get_client(host="127.0.0.1", port=port, username=READER[0],
                                                  password=READER[1], autogenerate_session_id=False)  # fmt: skip
                r.command("SELECT 1")
                ping = f"{time.perf_counter() - ping_t:.1f} s (answered)"
            except Exception as e:  # noqa: BLE001 - a 503 after clickhouse-connect's retries is a result too
                ping = f"{time.perf_counter() - ping_t:.1f} s ({type(e).__name__}: refused, retry later)"
            loaded = _inserts(w, args.inserts, args.rows, 10**8)
            stop.set()
        finally:
            proc.terminate()
            proc.wait(30)
    ratio = _pct(loaded, 95) / _pct(idle, 95)
    lines = [
        f"# Writer insert latency on the embedded endpoint, idle and under {args.readers} slow reader queries",
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores",
        f"# command: python benchmarks/endpoint_contention.py --inserts {args.inserts} --rows {args.rows} "
        f"--readers {args.readers}",
        f"# each insert: {args.rows} rows, 8 columns, Native through clickhouse-connect; reader query: {SLOW}",
        "",
        f"{'':24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}",
        f"{'idle':24}{_pct(idle, 50):9.1f}{_pct(idle, 95):9.1f}{max(idle):9.1f}",
        f"{'16 slow readers':24}{_pct(loaded, 50):9.1f}{_pct(loaded, 95):9.1f}{max(loaded):9.1f}",
        "",
        f"p95 under load / idle: {ratio:.2f}  (target <= 2.0: {'ok' if ratio <= 2.0 else 'MISSED'})",
        f"reader requests meanwhile: {outcomes['answered']} answered, {outcomes['503']} told 503 + Retry-After, "
        f"{outcomes['time limit']} ended by the reader's 30 s limit, {outcomes['other']} cut off when the benchmark stopped the endpoint",
        f"a dashboard's SELECT 1 during the load: {ping}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
