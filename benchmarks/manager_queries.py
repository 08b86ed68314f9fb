"""Latency of every managers' query through the real ClickHouse endpoint, on months of national
history, optionally with an insert load running beside it (the worker's ingest, as batches).

Each function of ``dozor.dashboard.queries.MANAGER_QUERIES`` (Astana, as the ministry sees it) is
timed from the call to its Python result — what a page waits for — ``--rounds`` times after one
warm-up. Printed: p50 / p95 / max per query against the 300 ms target, the table sizes, and the
insert rate achieved meanwhile.

    dozor backfill --days 396 --scale 4                    # once: 13 months of history
    python benchmarks/manager_queries.py --rounds 40 --ingest 2000 > benchmarks/results/manager_queries.txt
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
import threading
import time
import uuid
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dozor.clickhouse import connect  # noqa: E402
from dozor.dashboard import queries  # noqa: E402
from dozor.settings import Settings  # noqa: E402

TARGET_MS = 300.0

_COLUMNS = ["event_id", "event_time", "city", "district", "camera_id", "violation_type", "lat", "lon",
            "plate_hash", "plate_masked", "src_partition", "src_offset"]  # fmt: skip


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


class Ingest(threading.Thread):
    """Inserts ``rate`` violations a second in 0.5 s batches, as the worker's sink does."""

    def __init__(self, settings: Settings, rate: int) -> None:
        super().__init__(daemon=True)
        self.client = connect(settings)
        self.rate = rate
        self.rows = 0
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            now = dt.datetime.now(dt.UTC)
            batch = [[uuid.uuid4(), now, "astana", "yesil", "bench-cam", "speeding", 51.1, 71.4, "0" * 64,
                      "1****AB", 65534, n + i] for i in range(self.rate // 2)]  # fmt: skip
            self.client.insert("violations", batch, column_names=_COLUMNS)
            n += len(batch)
            self.rows = n
            self.stop.wait(max(0.0, 0.5 - (time.monotonic() - t0)))


@click.command()
@click.option("--rounds", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--ingest", type=click.IntRange(min=0), default=0, show_default=True,
              help="Violations per second inserted while the queries run (0: none).")  # fmt: skip
def main(rounds: int, ingest: int) -> None:
    settings = Settings()
    client = connect(settings, reader=True)
    sizes = client.query(
        "SELECT table, sum(rows) FROM system.parts WHERE active AND database = currentDatabase() "
        "AND table IN ('violations', 'incident_events', 'dispatch_events', 'incident_responses', "
        "'violations_by_hour', 'incidents_by_hour') GROUP BY table ORDER BY table"
    ).result_rows
    span = client.query("SELECT min(event_time), max(event_time) FROM violations").result_rows[0]
    print(f"# manager queries: {platform.node()}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"# endpoint {settings.clickhouse_url}, database {settings.clickhouse_database}")
    print(f"# history {span[0]:%Y-%m-%d} … {span[1]:%Y-%m-%d}")
    for table, n in sizes:
        print(f"#   {table:<20} {n:>14,} rows")
    load = Ingest(settings, ingest) if ingest else None
    if load:
        load.start()
    for fn in queries.MANAGER_QUERIES.values():  # warm-up
        fn(client)
    times: dict[str, list[float]] = {name: [] for name in queries.MANAGER_QUERIES}
    t_start = time.monotonic()
    for _ in range(rounds):
        for name, fn in queries.MANAGER_QUERIES.items():
            t0 = time.perf_counter()
            fn(client)
            times[name].append((time.perf_counter() - t0) * 1000)
    elapsed = time.monotonic() - t_start
    if load:
        load.stop.set()
        load.join()
        print(f"# ingest meanwhile: {load.rows / elapsed:,.0f} violations/s inserted (asked {ingest}/s)")
    print(f"# {rounds} rounds; target p95 <= {TARGET_MS:.0f} ms per query")
    print(f"{'query':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  verdict")
    for name, values in times.items():
        p95 = _pct(values, 0.95)
        verdict = "ok" if p95 <= TARGET_MS else "OVER TARGET"
        print(f"{name:<34} {_pct(values, 0.5):>8.1f} {p95:>8.1f} {max(values):>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
