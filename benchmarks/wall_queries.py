"""Latency of every wall-screen query through the real ClickHouse endpoint, on months of history.

Each SQL statement of ``dozor.dashboard.queries.WALL_QUERIES`` is timed from clickhouse-connect's
call to its parsed result (what a screen waits for), ``--rounds`` times, after one warm-up round.
Printed: p50 / p95 / max per statement and per screen panel, with the table sizes read. The
committed results (2026-11-23) were read on history from the generator ``dozor backfill`` replaced
(50M violations in 30 days, the same views); rerun them on ``dozor backfill`` history.

    dozor backfill --days 30 --scale 300     # once: ~48M violations, through the same views
    python benchmarks/wall_queries.py --rounds 200 > benchmarks/results/wall_queries.txt
"""

from __future__ import annotations

import datetime as dt
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dozor.clickhouse import connect  # noqa: E402
from dozor.dashboard import queries  # noqa: E402
from dozor.settings import Settings  # noqa: E402

TARGET_MS = 30.0


def _names() -> dict[str, str]:
    """SQL text → the constant's name in dashboard/queries/wall.py."""
    return {
        v: k.lstrip("_")
        for k, v in vars(queries.wall).items()
        if k.isupper() and isinstance(v, str) and "SELECT" in v
    }


class Timed:
    """A clickhouse-connect client that records how long each statement took, by name."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.names = _names()
        self.times: dict[str, list[float]] = defaultdict(list)

    def query(self, sql: str, parameters: dict | None = None) -> object:
        t0 = time.perf_counter()
        result = self.client.query(sql, parameters=parameters)  # type: ignore[attr-defined]
        self.times[self.names.get(sql, sql[:40])].append((time.perf_counter() - t0) * 1000)
        return result


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


@click.command()
@click.option("--rounds", default=200, show_default=True, type=click.IntRange(10))
def main(rounds: int) -> None:
    settings = Settings()
    client = connect(settings, send_receive_timeout=120)
    sizes = {
        t: client.command(f"SELECT count() FROM {t}")  # noqa: S608 - fixed table names
        for t in ("violations", "violations_by_minute", "incident_events", "incident_status", "dispatch_events",
                  "unit_state", "incident_responses", "alerts")
    }  # fmt: skip
    span = client.query("SELECT min(event_time), max(event_time) FROM violations").result_rows[0]
    timed = Timed(client)
    panels: dict[str, list[float]] = defaultdict(list)
    for fn in queries.WALL_QUERIES.values():
        fn(timed)  # warm-up: first reads of parts, compiled expressions
    timed.times.clear()
    for _ in range(rounds):
        for name, fn in queries.WALL_QUERIES.items():
            t0 = time.perf_counter()
            fn(timed)
            panels[name].append((time.perf_counter() - t0) * 1000)

    now = dt.datetime.now(dt.UTC)
    print(f"# Wall-screen query latency, {now:%Y-%m-%d %H:%M} UTC, {platform.machine()}, 2 cores")
    print(f"# command: python benchmarks/wall_queries.py --rounds {rounds}")
    print(f"# endpoint: {settings.clickhouse_url} database {settings.clickhouse_database}")
    print(f"# history: violations {span[0]:%Y-%m-%d %H:%M} … {span[1]:%Y-%m-%d %H:%M} UTC")
    for table, n in sizes.items():
        print(f"#   {table:22} {n:>12,} rows")
    print(f"\n{'statement':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target p95 ≤ {TARGET_MS:.0f} ms")
    worst = 0.0
    for name, values in timed.times.items():
        p95 = _pct(values, 0.95)
        worst = max(worst, p95)
        mark = "ok" if p95 <= TARGET_MS else "OVER"
        print(f"{name:28} {statistics.median(values):8.1f} {p95:8.1f} {max(values):8.1f}  {mark}")
    print(f"\n{'panel (all its statements)':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in panels.items():
        print(f"{name:28} {statistics.median(values):8.1f} {_pct(values, 0.95):8.1f} {max(values):8.1f}")
    total = [sum(vals) for vals in zip(*panels.values(), strict=True)]
    print(
        f"{'one whole screen refresh':28} {statistics.median(total):8.1f} {_pct(total, 0.95):8.1f} {max(total):8.1f}"
    )
    print(
        f"\nslowest statement p95: {worst:.1f} ms ({'within' if worst <= TARGET_MS else 'over'} the target)"
    )


if __name__ == "__main__":
    main()
