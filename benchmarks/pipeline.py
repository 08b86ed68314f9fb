"""End-to-end ingest throughput: input topic → validation → deduplication → ClickHouse rows.

Run:  .venv/bin/python benchmarks/pipeline.py [--count 300000]

Starts its own broker and embedded ClickHouse endpoint, fills one 6-partition violations topic with
``--count`` valid simulated events, then measures on that same topic and endpoint:

- source ceiling: Kafka's ConsumerPerformance tool (pinned kafka-tools jar) reading the topic;
- sink ceiling: clickhouse-connect bulk inserts of the same rows (batches of 50k) into the endpoint;
- Dozor with 1 and with 2 worker processes (``dozor worker``), from worker start to the last row
  and in the steady state (from when rows flow and the consumer group has settled to the last
  row), with each worker's peak RSS and the CPU each process spent per event;
- the peer: the same validate → deduplicate → insert written with quixstreams.

Results go to benchmarks/results/pipeline.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
from clickhouse_connect.driver.client import Client
from common import event_start, free_port, top_frames

from dozor.clickhouse import connect
from dozor.enrich import Enricher
from dozor.infra.kafka import KafkaBroker, default_jar_dir, java_binary, kafka_version
from dozor.infra.migrate import migrate
from dozor.infra.procs import port_open, wait_until
from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import Publisher, make_producer
from dozor.producers.simulator import SimConfig, Simulator
from dozor.schemas import parse_event
from dozor.settings import Settings
from dozor.streams.ingest import INGESTED_FAMILIES
from dozor.streams.sink import TABLES

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "pipeline.txt"
#: py-spy comes with the bench extra, beside this interpreter (the venv is rarely on PATH).
PY_SPY = Path(sys.executable).parent / "py-spy"


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


_clients: dict[str, Client] = {}


def count_rows(settings: Settings) -> int:
    """Rows in the run's violations table, through one client per database.

    Connecting anew for every poll cost the endpoint 21 ms of CPU and this process 15 ms (the
    client's set-up queries): at ten polls a second, a quarter of a core taken from the run.
    """
    try:
        client = _clients.get(settings.clickhouse_database)
        if client is None:
            client = _clients[settings.clickhouse_database] = connect(settings)
        return int(client.command("SELECT count() FROM violations"))
    except Exception:
        return 0


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far."""
    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except psutil.Error:
            out[name] = float("nan")
    return out


def group_settled(ports: list[int], partitions: int) -> bool:
    """Whether the workers serving on ``ports`` split all ``partitions`` between them, each once."""
    owned: list[str] = []
    for port in ports:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
        except OSError:
            return False
        mine = orjson.loads(body)["partitions"]
        if not mine:
            return False
        owned += mine
    return len(owned) == len(set(owned)) == partitions


@dataclass
class Run:
    """One consumer run: rates, and where the CPU went while rows were arriving."""

    total_rate: float  # events/s from process start to the last row
    steady_rate: float  # rows stored once the group settled and rows flowed, over the time they took
    rss_mb: list[float]
    cpu_us_per_event: dict[str, float]  # CPU microseconds per event stored in the steady window


def run_consumers(
    settings: Settings,
    cmds: list[list[str]],
    n: int,
    logs: Path,
    others: dict[str, int],
    profile: Path | None = None,
    partitions: int | None = None,
) -> Run:
    """Start the consumer processes and wait for ``n`` rows.

    The steady window opens once rows are arriving and, for Dozor's workers (``partitions``: how
    many the group reads in all), once the group has settled: every worker owns some partitions
    and none is owned twice, as their ``/health`` says. Only rows stored after that count, over
    the time they took. Counting the first flush's rows would credit the window with work done
    before it, and the group starts with the first worker to join reading everything alone (the
    broker does not wait for more members), which is start-up, not the sustained rate.
    """
    env = {**os.environ, **settings.to_env()}
    procs = []
    ports = []
    t0 = time.perf_counter()
    for i, cmd in enumerate(cmds):
        ports.append(free_port())
        e = {**env, "DOZOR_WORKER_WEB_PORT": str(ports[-1])}
        procs.append(
            subprocess.Popen(cmd, env=e, stdout=open(logs / f"c{i}.log", "wb"), stderr=subprocess.STDOUT)
        )
    pids = {**{f"consumer {i + 1}": p.pid for i, p in enumerate(procs)}, **others}
    first = None
    first_count = 0
    cpu0: dict[str, float] = {}
    spy: subprocess.Popen | None = None
    rss: list[float] = []
    try:
        deadline = time.perf_counter() + 900
        while time.perf_counter() < deadline:
            c = count_rows(settings)
            now = time.perf_counter()
            if c and first is None and (partitions is None or group_settled(ports, partitions)):
                first, first_count, cpu0 = now, c, cpu_seconds(pids)
                if profile is not None and PY_SPY.exists():
                    spy = subprocess.Popen(
                        [str(PY_SPY), "record", "--pid", str(procs[0].pid), "--duration", "4", "-r", "200",
                         "-f", "raw", "-o", str(profile), "--threads"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
            if c >= n:
                break
            time.sleep(0.1)
        done = time.perf_counter()
        cpu1 = cpu_seconds(pids)
        rss = [peak_rss_mb(p.pid) for p in procs]
        if spy is not None:
            spy.wait(30)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    if count_rows(settings) != n:
        raise SystemExit(f"expected {n} rows, found {count_rows(settings)}; see {logs}")
    stored = max(1, n - first_count)
    return Run(
        total_rate=n / (done - t0),
        steady_rate=stored / max(1e-9, done - (first or t0)),
        rss_mb=rss,
        cpu_us_per_event={k: (cpu1[k] - cpu0.get(k, 0.0)) / stored * 1e6 for k in cpu1},
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=300_000)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--profile", action="store_true", help="py-spy the 1-worker run for 4 s")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each Dozor setting (the table shows the median)"
    )
    args = ap.parse_args()
    n = args.count
    state = Path(tempfile.mkdtemp(prefix="dozor-pipe-"))
    ch_port = free_port()
    base = Settings(
        state_dir=state,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        clickhouse_url=f"http://127.0.0.1:{ch_port}",
        topic_prefix="pipe",
        topic_partitions=6,
    )
    broker = KafkaBroker(base)
    broker.start()
    ch = subprocess.Popen(
        [sys.executable, "-m", "dozor", "clickhouse", "serve"],
        env={**os.environ, **base.to_env()},
        stdout=open(state / "ch.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        wait_until("ClickHouse endpoint", lambda: port_open("127.0.0.1", ch_port), 60, ch)
        ensure_topics(base)
        topic = base.topic("violations")
        cfg = SimConfig(
            seed=5,
            rate=2000,
            incident_share=0,
            integrity_share=0,
            call_share=0,
            late_rate=0,
            duplicate_rate=0,
        )
        start = event_start()
        values: list[bytes] = []
        pub = Publisher(make_producer(base))
        t = time.perf_counter()
        for m in Simulator(cfg, "bench").messages(start, count=n):
            pub.send(topic, m.key, m.value)
            values.append(m.value)
        pub.close()
        print(f"(filled {topic} with {n:,} events in {time.perf_counter() - t:.1f} s)", flush=True)

        # Source ceiling
        perf = subprocess.run(
            [java_binary(), "-Xmx512m", "-cp", f"{default_jar_dir(base)}/*",
             "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
             base.kafka_bootstrap_servers, "--topic", topic, "--messages", str(n), "--timeout", "60000"],
            capture_output=True, text=True, check=False,
        ).stdout.strip().splitlines()  # fmt: skip
        # header: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
        try:
            source = float(perf[-1].split(",")[5])
        except (IndexError, ValueError):
            source = float("nan")

        # Sink ceiling
        sink_settings = base.model_copy(update={"clickhouse_database": "sink_ceiling"})
        migrate(sink_settings)
        spec = TABLES["violations"]
        enricher = Enricher(base.mci_kzt)
        rows = []
        for v in values:
            ev = parse_event("violations", v)
            rows.append(spec.row(ev, enricher.extras(ev), 0, 0))
        client = connect(sink_settings)
        t = time.perf_counter()
        for i in range(0, n, 50_000):
            client.insert("violations", rows[i : i + 50_000], column_names=list(spec.columns))
        sink = n / (time.perf_counter() - t)
        del rows, values

        others = {"ClickHouse endpoint": ch.pid, "Kafka broker": int(broker.pid_file.read_text())}
        all_runs: dict[int, list[Run]] = {1: [], 2: []}
        for i in range(args.repeat):
            for workers in (1, 2):
                s = base.model_copy(
                    update={
                        "clickhouse_database": f"dozor_w{workers}_{i}",
                        "consumer_group": f"w{workers}_{i}",
                    }
                )
                migrate(s)
                prof = state / "worker.prof" if args.profile and workers == 1 and i == 0 else None
                all_runs[workers].append(
                    run_consumers(
                        s,
                        [[sys.executable, "-m", "dozor", "worker"]] * workers,
                        n,
                        state,
                        others,
                        prof,
                        partitions=base.topic_partitions * len(INGESTED_FAMILIES),
                    )  # fmt: skip
                )
                if prof is not None:
                    time.sleep(5)
                    profile_lines = top_frames(prof) if prof.exists() else ["(py-spy wrote nothing)"]
        results = {w: sorted(rs, key=lambda r: r.steady_rate)[len(rs) // 2] for w, rs in all_runs.items()}

        peer = None
        if not args.skip_peer:
            s = base.model_copy(update={"clickhouse_database": "quix_peer", "consumer_group": "quix"})
            migrate(s)
            cmd = [sys.executable, str(HERE / "quix_peer.py"), s.kafka_bootstrap_servers, topic, "quix",
                   s.clickhouse_url, "quix_peer"]  # fmt: skip
            peer = run_consumers(s, [cmd], n, state, others)
    finally:
        ch.terminate()
        ch.wait(30)
        broker.stop()

    dozor1 = results[1].steady_rate
    out(
        f"# End-to-end ingest, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Kafka {kafka_version()}"
    )
    out(
        f"# command: .venv/bin/python benchmarks/pipeline.py --count {n} --repeat {args.repeat}"
        + (" --profile" if args.profile else "")
    )
    out(
        f"# {n:,} valid violation events (~375 B JSON) in one 6-partition topic; ClickHouse: embedded chdb endpoint"
    )
    out(
        "# steady = rows stored after the first ones appeared and (Dozor) the consumer group settled,"
        " over the time they took"
    )
    out("")
    out(f"{'':<52} {'events/s':>10} {'ratio to Dozor (1 worker)':>26}")
    out(f"{'source ceiling: Kafka ConsumerPerformance':<52} {source:>10,.0f} {source / dozor1:>25.1f}x")
    out(f"{'sink ceiling: clickhouse-connect bulk insert':<52} {sink:>10,.0f} {sink / dozor1:>25.1f}x")
    runs = [(f"Dozor, {w} worker(s)", r) for w, r in results.items()]
    if peer:
        runs.append(("peer: quixstreams, same work", peer))
    for name, r in runs:
        rss_s = ", ".join(f"{m:.0f}" for m in r.rss_mb)
        out(
            f"{name + ', steady':<52} {r.steady_rate:>10,.0f} {r.steady_rate / dozor1:>25.2f}x   RSS MB: {rss_s}"
        )
        out(f"{name + ', including start-up':<52} {r.total_rate:>10,.0f} {r.total_rate / dozor1:>25.2f}x")
    if args.repeat > 1:
        for w, rs in all_runs.items():
            rates = ", ".join(f"{r.steady_rate:,.0f}" for r in rs)
            out(f"  Dozor, {w} worker(s), steady, every run (the table shows the median): {rates}")
    out("")
    out("CPU per event stored in the steady window, microseconds (2 cores = 40 us per event at 50k/s)")
    for name, r in runs:
        parts = "  ".join(f"{k}: {v:.1f}" for k, v in r.cpu_us_per_event.items())
        out(f"  {name + ':':<30} total {sum(r.cpu_us_per_event.values()):5.1f}   {parts}")
    if args.profile:
        out("")
        out("py-spy, 1 worker, 4 s of steady ingest: share of samples by function (own time; all threads)")
        for line in profile_lines:
            out(line)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
