"""Producer throughput: the simulator and replay into a local Apache Kafka broker.

Run:  .venv/bin/python benchmarks/producers.py [--count 300000] [--profile]

Starts its own broker (the pinned Kafka, on free ports, fresh data), then measures in one run:

1. generation only: the simulator building messages, no Kafka;
2. the library ceiling: kafka-python sending already-built messages in a tight loop, with the
   product's producer settings (acks=all, idempotence, lz4, linger 20 ms);
3. ``dozor simulate --fast`` (``run_simulation``) in one process;
4. the same in two processes at once (different seeds), summed;
5. ``dozor replay`` of a CSV file of violations, as fast as possible;
6. ``dozor replay`` of a year of CAD history (one row per call, ``docs/examples/cad_calls.toml``:
   each row becomes the incident, a dispatch per unit and moment, and the closure), in the same run
   as 5, which is the rate to keep up with (8.5k events/s when 6 was added).

``--replay-only`` runs 5 and 6 alone.

Each line prints events/s and the process's peak RSS. ``--profile`` also samples (3) with py-spy and
prints where the time goes. Results are written to benchmarks/results/producers.txt.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import multiprocessing as mp
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import event_start, free_port, top_frames

from dozor.infra.kafka import KafkaBroker, kafka_version
from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer
from dozor.producers.publish import run_simulation
from dozor.producers.replay import Mapping, ReplayReport, replay
from dozor.producers.simulator import SimConfig, Simulator
from dozor.schemas import INPUT_FAMILIES
from dozor.settings import Settings

RESULTS = Path(__file__).with_name("results") / "producers.txt"
CAD_MAPPING = Path(__file__).resolve().parents[1] / "docs" / "examples" / "cad_calls.toml"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sim_worker(settings: Settings, seed: int, count: int, out: mp.Queue) -> None:
    stats = run_simulation(settings, SimConfig(seed=seed, rate=2000), count=count, paced=False)
    out.put((stats.total, stats.elapsed_s, rss_mb()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300_000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--replay-only", action="store_true", help="Only the replay lines (5 and 6).")
    ap.add_argument("--cad-calls", type=int, default=157_000, help="Calls in the year of CAD history.")
    args = ap.parse_args()
    n = args.count
    lines: list[str] = []

    def report(name: str, events: int, seconds: float, rss: float) -> None:
        line = f"{name:<58} {events / seconds:>10,.0f} events/s   ({events:,} in {seconds:.1f} s, RSS {rss:.0f} MB)"
        print(line, flush=True)
        lines.append(line)

    state = Path(tempfile.mkdtemp(prefix="dozor-bench-"))
    settings = Settings(
        state_dir=state,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        topic_prefix="bench",
    )
    broker = KafkaBroker(settings)
    broker.start()
    try:
        ensure_topics(settings)
        if not args.replay_only:
            _library_and_simulator(settings, n, args.profile, state, report, lines)
        csv_path = state / "violations.csv"
        write_csv(csv_path, n)
        mapping = state / "m.toml"
        mapping.write_text(
            'family = "violations"\ntimezone = "UTC"\n[columns]\n'
            + "".join(f'{c} = "{c}"\n' for c in CSV_COLUMNS)
        )
        rep = _replay(settings, csv_path, Mapping.load(mapping))
        report("5. dozor replay (CSV → validate → Kafka), 1 process", rep.sent_total, rep.elapsed_s, rss_mb())

        cad_path = state / "cad_year.csv"
        write_cad_year(cad_path, args.cad_calls)
        rep = _replay(settings, cad_path, Mapping.load(CAD_MAPPING))
        assert not rep.rejected, rep.summary()
        report(
            f"6. dozor replay, a year of CAD calls ({rep.read:,} rows)",
            rep.sent_total,
            rep.elapsed_s,
            rss_mb(),
        )
        lines.append(
            f"   {rep.read / rep.elapsed_s:,.0f} rows/s; a year of a city of Astana's size in {rep.elapsed_s:.0f} s"
        )
    finally:
        broker.stop()
        shutil.rmtree(state, ignore_errors=True)

    header = [
        f"# Producer throughput, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"# command: .venv/bin/python benchmarks/producers.py --count {n}"
        + (" --profile" if args.profile else "")
        + (" --replay-only" if args.replay_only else ""),
        f"# machine: {mp.cpu_count()} cores; Apache Kafka {kafka_version()} on the same machine; "
        f"messages: the simulator's mix (~375 bytes of JSON)",
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    out = RESULTS.with_name("producers_replay.txt") if args.replay_only else RESULTS
    out.write_text("\n".join(header + lines) + "\n")
    print(f"\nwritten to {out}")


def _replay(settings: Settings, path: Path, mapping: Mapping) -> ReplayReport:
    """``dozor replay`` of ``path`` into the broker, as fast as it goes, every send acknowledged."""
    topics = {f: settings.topic(f) for f in INPUT_FAMILIES}
    pub = Publisher(make_producer(settings))
    try:
        return replay(path, mapping, lambda family, k, v: pub.send(topics[family], k, v), "bench-salt",
                      progress=False)  # fmt: skip
    finally:
        pub.close()


def _library_and_simulator(
    settings: Settings, n: int, profile: bool, state: Path, report: Callable[..., None], lines: list[str]
) -> None:
    """Lines 0 to 4: the Java peer, the simulator alone, the library ceiling, the simulator's sends."""
    cfg = SimConfig(seed=1, rate=2000)
    start = event_start()
    line = java_producer_perf(settings, n)
    print(line, flush=True)
    lines.append(line)

    t = time.perf_counter()
    msgs = list(Simulator(cfg, "bench-salt").messages(start, count=n))
    report("1. simulator, generation only", len(msgs), time.perf_counter() - t, rss_mb())

    topics = {f: settings.topic(f) for f in INPUT_FAMILIES}
    producer = make_producer(settings)
    t = time.perf_counter()
    for m in msgs:
        producer.send(topics[m.family], key=m.key, value=m.value)
    producer.flush()
    report(
        "2. kafka-python ceiling (pre-built messages, raw send)",
        len(msgs),
        time.perf_counter() - t,
        rss_mb(),
    )
    producer.close()
    del msgs

    if profile and shutil.which("py-spy"):
        prof = state / "sim.prof"
        cmd = [
            "py-spy", "record", "-r", "200", "-f", "raw", "-o", str(prof), "--",
            sys.executable, "-m", "dozor", "simulate", "--fast", "--count", str(n), "--seed", "9",
        ]  # fmt: skip
        subprocess.run(cmd, env={**settings_env(settings)}, capture_output=True, check=False)
        lines += ["", "py-spy profile of `dozor simulate --fast` (share of samples):"] + top_frames(prof)
        lines.append("")

    t = time.perf_counter()
    stats = run_simulation(settings, SimConfig(seed=2, rate=2000), count=n, paced=False)
    report("3. dozor simulate --fast, 1 process", stats.total, time.perf_counter() - t, rss_mb())

    q: mp.Queue = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(target=_sim_worker, args=(settings, 10 + i, n // 2, q))
        for i in range(2)
    ]
    t = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t
    report(
        "4. dozor simulate --fast, 2 processes (sum)",
        sum(r[0] for r in results), wall, max(r[2] for r in results),
    )  # fmt: skip


CSV_COLUMNS = (
    "event_id", "event_time", "camera_id", "city", "district", "lat", "lon", "violation_type",
    "speed_kmh", "speed_limit_kmh", "plate",
)  # fmt: skip


def write_csv(path: Path, n: int) -> None:
    """A file shaped like a camera export: the simulator's violations with raw plates."""
    cfg = SimConfig(
        seed=3, rate=2000, incident_share=0, integrity_share=0, call_share=0, late_rate=0, duplicate_rate=0
    )
    start = event_start()
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for i, m in enumerate(Simulator(cfg, "s").messages(start, count=n)):
            p = m.payload
            w.writerow(
                [p["event_id"], p["event_time"], p["camera_id"], p["city"], p["district"], p["lat"],
                 p["lon"], p["violation_type"], p["speed_kmh"] or "", p["speed_limit_kmh"] or "",
                 f"{i % 1000:03d}ABC{i % 17 + 1:02d}"]
            )  # fmt: skip


def write_cad_year(path: Path, calls: int) -> None:
    """A year of a CAD call log shaped like docs/examples/cad_calls.csv: one row per call with its
    date and HH:MM moments, a unit list, the source's call types and beats."""
    rng = random.Random(5)
    beats = {"B1": (51.0951, 71.4190), "B2": (51.1799, 71.3911), "B3": (51.1448, 71.5012),
             "B4": (51.1702, 71.4551), "B5": (51.0601, 71.3402)}  # fmt: skip
    first = dt.date(dt.date.today().year - 1, 1, 1)
    days = sorted(rng.randrange(365) for _ in range(calls))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Incident Number", "Date", "Received", "Dispatched", "Arrived", "Cleared", "Units",
                    "Call Type", "Priority", "Source", "Lat", "Lon", "Beat"])  # fmt: skip
        for i, day in enumerate(days):
            received = dt.datetime.combine(
                first + dt.timedelta(days=day), dt.time(rng.randrange(24), rng.randrange(60))
            )
            dispatched = received + dt.timedelta(minutes=rng.randint(1, 9))
            arrived = dispatched + dt.timedelta(minutes=rng.randint(3, 40))
            cleared = arrived + dt.timedelta(minutes=rng.randint(10, 90))
            beat = rng.choice(list(beats))
            units = ", ".join(rng.sample(["1A12", "1B03", "2C01", "1A07"], k=rng.randint(1, 2)))
            w.writerow([f"{received:%y}-{i:07d}", f"{received:%m/%d/%y}", f"{received:%H:%M}", f"{dispatched:%H:%M}",
                        f"{arrived:%H:%M}", f"{cleared:%H:%M}", units, rng.choice(["BURG", "ACC", "DOM", "NOISE"]),
                        rng.choice(["E", "1", "2", "3"]), "911", *beats[beat], beat])  # fmt: skip


def java_producer_perf(settings: Settings, n: int) -> str:
    """Kafka's own ProducerPerformance (Java client, same settings, 375-byte records): what the
    broker on this machine takes when the client is not Python."""
    from dozor.infra.kafka import default_jar_dir, java_binary

    cmd = [
        java_binary(), "-Xmx512m", "-cp", f"{default_jar_dir(settings)}/*",
        "org.apache.kafka.tools.ProducerPerformance", "--topic", "bench.java-perf",
        "--num-records", str(n), "--record-size", "375", "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={settings.kafka_bootstrap_servers}", "acks=all",
        "enable.idempotence=true", "compression.type=lz4", "linger.ms=20", "batch.size=1048576",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()
    last = out[-1] if out else "no output"
    try:
        rate = f"{float(last.split(' records/sec')[0].split(',')[1]):,.0f}"
    except (IndexError, ValueError):
        rate = "?"
    return f"{'0. peer: Kafka ProducerPerformance (Java client)':<58} {rate:>10} events/s   ({last.split(',')[0]})"


def settings_env(settings: Settings) -> dict[str, str]:
    import os

    return {**os.environ, **settings.to_env()}


if __name__ == "__main__":
    main()
