"""Memory of the simulator and the join over hours: where each levels off, and why.

Three measurements, each printing RSS (MiB) at regular points:

- ``simulator --hours 26``: the simulator alone, run in simulated time (as fast as it can), with
  the number of messages it holds scheduled ahead (an incident's later steps, up to hours). Its
  memory follows that number, which follows the daily profile: it levels off at the evening peak.
- ``join --hours 30``: ``dozor up`` without its simulator; N hours of incidents and dispatches
  produced as fast as the broker takes them, and the join worker's RSS and table size sampled each
  minute of wall time against the event time it has reached. The table keeps a closed incident for
  ``DOZOR_JOIN_RETENTION_HOURS`` (24 h) of event time, so it levels off once a day has passed.
- ``live --minutes 60``: ``dozor up`` at the default rate, RSS per process each minute (as
  ``wall_screen.py soak`` does for Streamlit).

    python benchmarks/memory_soak.py simulator --hours 26 > benchmarks/results/memory_soak.txt
    python benchmarks/memory_soak.py join --hours 30 >> benchmarks/results/memory_soak.txt
    (or DOZOR_JOIN_RETENTION_HOURS=6 … join --hours 12: the same shape in a quarter of the time)
    python benchmarks/memory_soak.py live --minutes 60 >> benchmarks/results/memory_soak.txt
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import sys
import threading
import time
import urllib.request
from pathlib import Path

import click
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wall_screen import stack  # noqa: E402

from dozor.producers.kafka import Publisher, make_producer  # noqa: E402
from dozor.producers.simulator import SimConfig, Simulator  # noqa: E402
from dozor.settings import Settings  # noqa: E402

MIB = 2**20
#: Which ``dozor up`` child is which, by its command line.
ROLES = (
    ("join", "worker --role join"),
    ("worker", " worker"),
    ("simulator", " simulate"),
    ("clickhouse", "clickhouse serve"),
    ("kafka", "kafka.Kafka"),
    ("dashboard", "streamlit"),
    ("oidc", "oidc serve"),
)


def _header(title: str, command: str) -> None:
    now = dt.datetime.now(dt.UTC)
    print(f"# {title}, {now:%Y-%m-%d %H:%M} UTC, {platform.machine()}, {psutil.cpu_count()} cores")
    print(f"# command: {command}", flush=True)


def _services(up: psutil.Process) -> dict[str, psutil.Process]:
    found: dict[str, psutil.Process] = {}
    for p in up.children(recursive=True):
        try:
            line = " ".join(p.cmdline())
        except psutil.Error:
            continue
        for role, needle in ROLES:
            if needle in line and role not in found:
                found[role] = p
                break
    return found


def _metric(port: int, name: str) -> float | None:
    """One metric from a worker's /metrics, summed over its labels; None if it cannot be read."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    values = [
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    ]
    return sum(values) if values else None


def _rss(p: psutil.Process | None) -> float:
    try:
        return p.memory_info().rss / MIB if p else float("nan")
    except psutil.Error:
        return float("nan")


@click.group()
def cli() -> None:
    """Memory soaks of the simulator and the join."""


@cli.command()
@click.option("--hours", default=26.0, show_default=True, help="Simulated hours.")
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    help="Root events/s of event time (dozor up before the volume model; now about --rate 2100).",
)
@click.option("--keep-payload", is_flag=True, help="Keep the payload dicts, as the tests' simulator does.")
def simulator(hours: float, rate: float, keep_payload: bool) -> None:
    """The simulator alone, in simulated time: messages held ahead and peak RSS per simulated hour."""
    _header(
        "Simulator memory over a simulated day",
        f"python benchmarks/memory_soak.py simulator --hours {hours:g} --rate {rate:g}"
        + (" --keep-payload" if keep_payload else ""),
    )
    sim = Simulator(SimConfig(rate=rate, keep_payload=keep_payload), "soak-salt")
    start = dt.datetime.now(dt.UTC).replace(hour=19, minute=0, second=0, microsecond=0) - dt.timedelta(days=2)
    print(
        f"# event time from {start:%Y-%m-%d %H:%M} UTC (00:00 in Astana), {rate:g} events/s on the daily profile"
    )
    print(f"\n{'hour':>5} {'local':>6} {'sent':>11} {'held ahead':>11} {'peak RSS MiB':>13}")
    nxt, sent = start, 0
    t0 = time.perf_counter()
    for m in sim.messages(start, until=start + dt.timedelta(hours=hours)):
        sent += 1
        if m.send_time >= nxt:
            h = (nxt - start) // dt.timedelta(hours=1)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            local = (nxt + dt.timedelta(hours=5)).strftime("%H:%M")
            print(f"{h:>5} {local:>6} {sent:>11,} {len(sim._pending):>11,} {rss:>13.0f}", flush=True)
            nxt += dt.timedelta(hours=1)
    print(f"\n{sent:,} messages in {time.perf_counter() - t0:.0f} s of CPU")


def _produce(settings: Settings, start: dt.datetime, until: dt.datetime, rate: float, done: list) -> None:
    """The incidents and dispatches of [start, until) as fast as the broker takes them."""
    sim = Simulator(SimConfig(rate=rate, keep_payload=False), settings.plate_salt.get_secret_value())
    pub = Publisher(make_producer(settings))
    topics = {f: settings.topic(f) for f in ("incidents", "dispatches")}
    n = 0
    for m in sim.messages(start, until=until, drain=True):
        if m.family in topics:
            pub.send(topics[m.family], m.key, m.value)
            n += 1
    pub.close()
    done.append(n)


@cli.command()
@click.option("--hours", default=30.0, show_default=True, help="Hours of event time, ending now.")
@click.option("--rate", default=200.0, show_default=True, help="Events/s of the feed the hours come from.")
def join(hours: float, rate: float) -> None:
    """The join worker's RSS and table size while it reads N hours of incidents and dispatches."""
    retention = os.environ.get("DOZOR_JOIN_RETENTION_HOURS")
    _header(
        "Join memory over hours of event time",
        (f"DOZOR_JOIN_RETENTION_HOURS={retention} " if retention else "")
        + f"python benchmarks/memory_soak.py join --hours {hours:g} --rate {rate:g}",
    )
    with stack(rate=None) as (settings, streamlit):
        up = streamlit.parent()
        services = _services(up)
        port = settings.worker_web_port + 1
        end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        start = end - dt.timedelta(hours=hours)
        done: list[int] = []
        producer = threading.Thread(target=_produce, args=(settings, start, end, rate, done), daemon=True)
        producer.start()
        print(
            f"# {hours:g} h of incidents and dispatches at {rate:g} events/s of feed, produced at full speed;"
        )
        print(f"# join retention {settings.join_retention_hours:g} h of event time; sampled each minute\n")
        print(f"{'minute':>6} {'join events':>12} {'table':>9} {'join RSS MiB':>13} {'ingest RSS':>11}")
        t0, minute, last = time.monotonic(), 0, -1.0
        while True:
            while time.monotonic() < t0 + 60 * minute:
                time.sleep(1)
            read = _metric(port, "dozor_join_events_total") or 0
            table = _metric(port, "dozor_join_incidents")
            print(f"{minute:>6} {read:>12,.0f} {table or 0:>9,.0f} {_rss(services.get('join')):>13.0f} "
                  f"{_rss(services.get('worker')):>11.0f}", flush=True)  # fmt: skip
            if done and read == last:
                break  # everything produced has been read: the join is idle
            last, minute = read, minute + 1
        print(f"\nproduced {done[0]:,} incident and dispatch messages; the join read {read:,.0f}")


@cli.command()
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1))
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    help="Root events/s of event time (dozor up before the volume model; now about --rate 2100).",
)
def live(minutes: int, rate: float) -> None:
    """``dozor up`` at the default rate: RSS of every process each minute."""
    _header("Live stack memory", f"python benchmarks/memory_soak.py live --minutes {minutes} --rate {rate:g}")
    with stack(rate=rate) as (settings, streamlit):
        services = _services(streamlit.parent())
        names = [r for r, _ in ROLES if r in services]
        port = settings.worker_web_port + 1
        print(
            f"# dozor up, simulator at {rate:g}/s, RSS MiB per process each minute; 'table' is the join's\n"
        )
        print(f"{'minute':>6} " + " ".join(f"{n:>10}" for n in names) + f" {'table':>8}")
        t0 = time.monotonic()
        for minute in range(minutes + 1):
            while time.monotonic() < t0 + 60 * minute:
                time.sleep(1)
            table = _metric(port, "dozor_join_incidents") or 0
            print(f"{minute:>6} " + " ".join(f"{_rss(services[n]):>10.0f}" for n in names) + f" {table:>8,.0f}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    cli()
