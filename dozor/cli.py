"""The ``dozor`` command: thin wrappers over library functions, one clear line on any failure."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr, ValidationError

from dozor.errors import DozorError
from dozor.logs import configure_logging
from dozor.settings import Settings

__all__ = ["main", "cli"]

log = logging.getLogger("dozor.cli")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        err = e.errors()[0]
        name = "DOZOR_" + str(err["loc"][0]).upper() if err["loc"] else "configuration"
        raise click.ClickException(f"{name}: {err['msg']}") from None
    except DozorError as e:
        raise click.ClickException(str(e)) from None


def _unreachable(e: BaseException, settings: Settings | None) -> str | None:
    """One line for an exception that means Kafka or ClickHouse cannot be reached, else None."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
    from kafka.errors import KafkaError

    kafka_at = settings.kafka_bootstrap_servers if settings else "DOZOR_KAFKA_BOOTSTRAP_SERVERS"
    clickhouse_at = settings.clickhouse_url if settings else "DOZOR_CLICKHOUSE_URL"
    first = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    if isinstance(e, KafkaError) or type(e).__module__.startswith("aiokafka"):
        return f"cannot reach Kafka at {kafka_at} (DOZOR_KAFKA_BOOTSTRAP_SERVERS): {first}"
    if isinstance(e, OperationalError):
        return f"cannot reach ClickHouse at {clickhouse_at} (DOZOR_CLICKHOUSE_URL): {first}"
    if isinstance(e, DatabaseError):
        return f"ClickHouse at {clickhouse_at} refused: {first}"
    return None


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn DozorError, and an unreachable Kafka or ClickHouse, into one line (exit 1) instead of a
    traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DozorError as e:
            raise click.ClickException(str(e)) from None
        except Exception as e:
            settings = next((a for a in args if isinstance(a, Settings)), None)
            line = _unreachable(e, settings)
            if line is None:
                raise
            raise click.ClickException(line) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group()
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (default: DOZOR_LOG_LEVEL).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """Dozor: live traffic violations and patrol activity for Kazakhstan's control centres."""
    settings = _settings()
    configure_logging(log_level or settings.log_level)
    ctx.obj = settings


# --- infrastructure ------------------------------------------------------------------------------


@cli.group()
def kafka() -> None:
    """The embedded Apache Kafka broker (KRaft, single node)."""


@kafka.command("start")
@click.pass_obj
@_guard
def kafka_start(settings: Settings) -> None:
    """Start the broker in the foreground until Ctrl-C.

    Example: dozor kafka start
    """
    from dozor.infra.kafka import KafkaBroker
    from dozor.infra.stack import stop_on_signals

    stop_on_signals()
    broker = KafkaBroker(settings)
    proc = broker.start()
    if broker.sasl:
        broker.grant_dozor()  # Dozor's own user, with ACLs on its topics, groups, transactions
    click.echo(f"Kafka ready on {settings.kafka_bootstrap_servers} (log: {broker.log_path})")
    from dozor.infra.stack import wait_for_interrupt

    wait_for_interrupt([proc])
    broker.stop()


@kafka.command("stop")
@click.pass_obj
@_guard
def kafka_stop(settings: Settings) -> None:
    """Stop a broker started from this state directory.

    Example: dozor kafka stop
    """
    from dozor.infra.kafka import KafkaBroker

    click.echo("stopped" if KafkaBroker(settings).stop() else "no broker was running")


@kafka.command("fetch")
@click.pass_obj
@_guard
def kafka_fetch(settings: Settings) -> None:
    """Download the pinned Kafka jars with Maven (done automatically on first start).

    Example: dozor kafka fetch
    """
    from dozor.infra.kafka import default_jar_dir, fetch_jars

    click.echo(str(fetch_jars(default_jar_dir(settings))))


@cli.group()
def clickhouse() -> None:
    """The embedded ClickHouse engine (chdb) behind the ClickHouse HTTP protocol."""


@clickhouse.command("serve")
@click.pass_obj
@_guard
def clickhouse_serve(settings: Settings) -> None:
    """Serve the embedded engine on DOZOR_CLICKHOUSE_URL's host and port until Ctrl-C.

    The engine runs in this process, replaced by a confined one that holds no secret
    (docs/clickhouse-endpoint.md): passwords reach it hashed, through a pipe.

    Example: dozor clickhouse serve
    """
    from dozor.infra.chdb_http import EndpointConfig, User, check_users, launch
    from dozor.infra.chdb_policy import READER, WRITER
    from dozor.infra.procs import ensure_port_free

    host, port = settings.clickhouse_host_port
    users = [
        User(settings.clickhouse_user, settings.clickhouse_password.get_secret_value(), WRITER),
        User(settings.clickhouse_reader_user, settings.clickhouse_reader_password.get_secret_value(), READER),
    ]
    check_users(users, host, settings.environment == "production")
    ensure_port_free("ClickHouse endpoint", host, port, "DOZOR_CLICKHOUSE_URL")
    launch(
        EndpointConfig(
            data_dir=str((settings.state_dir / "clickhouse").resolve()),
            host=host,
            port=port,
            users=[u.hashed() for u in users],
            handles=settings.chdb_handles,
            reader_handles=settings.chdb_handles,
            reader_queue=settings.chdb_reader_queue,
            socket_timeout_s=settings.chdb_socket_timeout_s,
            max_body_bytes=settings.clickhouse_max_body_mb * 1024 * 1024,
            log_level=logging.getLevelName(logging.getLogger().level),
        )
    )


@clickhouse.command("create-users")
@click.option(
    "--print", "print_only", is_flag=True, help="Print the statements (passwords hashed); run nothing."
)
@click.pass_obj
@_guard
def clickhouse_create_users(settings: Settings, print_only: bool) -> None:
    """Create Dozor's writer and reader users with their grants on a real ClickHouse server.

    Connects as DOZOR_CLICKHOUSE_ADMIN_USER / DOZOR_CLICKHOUSE_ADMIN_PASSWORD (a user with access
    management); the users are DOZOR_CLICKHOUSE_USER and DOZOR_CLICKHOUSE_READER_USER with their
    passwords (infra/clickhouse/users.sql). The embedded endpoint needs none of this.

    Example: dozor clickhouse create-users --print
    """
    from dozor.clickhouse import connect
    from dozor.infra.migrate import user_statements

    try:
        statements = user_statements(settings)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if print_only:
        click.echo(";\n".join(statements) + ";")
        return
    admin = settings.model_copy(
        update={
            "clickhouse_user": os.environ.get("DOZOR_CLICKHOUSE_ADMIN_USER", "default"),
            "clickhouse_password": SecretStr(os.environ.get("DOZOR_CLICKHOUSE_ADMIN_PASSWORD", "")),
        }
    )
    client = connect(admin, database="default")
    for stmt in statements:
        client.command(stmt)
    click.echo(
        f"users {settings.clickhouse_user} (writer) and {settings.clickhouse_reader_user} (reader) ready"
    )


@cli.group()
def oidc() -> None:
    """The local OIDC provider for development sign-in (never in production)."""


@oidc.command("serve")
@click.pass_obj
@_guard
def oidc_serve(settings: Settings) -> None:
    """Serve the local OIDC provider with the access file's demo users until Ctrl-C.

    Example: dozor oidc serve
    """
    from dozor.infra.oidc_dev import serve
    from dozor.infra.procs import ensure_port_free

    ensure_port_free("OIDC provider", "127.0.0.1", settings.oidc_port, "DOZOR_OIDC_PORT")
    with contextlib.suppress(KeyboardInterrupt):
        serve(settings)


@cli.command()
@click.pass_obj
@_guard
def migrate(settings: Settings) -> None:
    """Apply pending ClickHouse migrations (idempotent).

    Example: dozor migrate
    """
    from dozor.infra.migrate import migrate as run

    applied = run(settings)
    click.echo(f"applied {len(applied)} migration(s) to {settings.clickhouse_database}")


@cli.command()
@click.pass_obj
@_guard
def topics(settings: Settings) -> None:
    """Create Dozor's Kafka topics with the configured partitions and replication.

    Example: DOZOR_TOPIC_PARTITIONS=12 dozor topics
    """
    from dozor.infra.topics import ensure_topics

    created = ensure_topics(settings)
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@cli.group()
def schemas() -> None:
    """The published JSON Schema files of Dozor's topics."""


@schemas.command("export")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory (default: docs/schemas in the repository).",
)
@click.option("--check", is_flag=True, help="Fail if the files on disk differ from the models.")
def schemas_export(out: Path | None, check: bool) -> None:
    """Regenerate the JSON Schema of every event family from the canonical models.

    Example: dozor schemas export --check
    """
    import tempfile

    from dozor.schemas import SCHEMA_DIR, export_schemas

    target = out or SCHEMA_DIR
    if not check:
        for p in export_schemas(target):
            click.echo(str(p))
        return
    with tempfile.TemporaryDirectory() as tmp:
        stale = [
            p.name
            for p in export_schemas(Path(tmp))
            if not (target / p.name).exists() or (target / p.name).read_bytes() != p.read_bytes()
        ]
    if stale:
        raise click.ClickException(
            f"stale schema files in {target}: {', '.join(stale)}; run `dozor schemas export`"
        )
    click.echo("schemas are up to date")


# --- application ---------------------------------------------------------------------------------


@cli.command("tail")
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained message, not the newest.")
@click.option("-n", "--max", "max_messages", type=click.IntRange(min=1), default=None, help="Stop after N.")
@click.option(
    "--idle",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Stop after this many seconds without a message.",
)
@click.pass_obj
@_guard
def tail_cmd(
    settings: Settings, topic: str, from_beginning: bool, max_messages: int | None, idle: float | None
) -> None:
    """Pretty-print a topic's messages, checking each against its published JSON Schema.

    TOPIC is a family (violations, incidents, dispatches, integrity, calls, response_times, alerts,
    city_figures: its current version) or a full topic name, such as dozor.response_times.v1.
    Exits 1 if any message broke the schema.

    Example: dozor tail alerts --from-beginning --idle 5
    """
    from dozor.tail import resolve_family, tail

    family = resolve_family(settings, topic)
    try:
        stats = tail(
            settings, family, from_beginning=from_beginning, max_messages=max_messages, idle_seconds=idle
        )
    except KeyboardInterrupt:
        return
    schema = f"{family.name}.v{family.version}"
    click.echo(f"{stats.read} messages read, {stats.invalid} breaking the {schema} schema", err=True)
    if stats.invalid:
        sys.exit(1)


@cli.command()
@click.option(
    "--role",
    type=click.Choice(["ingest", "join", "all"]),
    default="ingest",
    show_default=True,
    help="ingest: Kafka → ClickHouse; join: incidents ⋈ dispatches → response times and alerts.",
)
@click.pass_obj
@_guard
def worker(settings: Settings, role: str) -> None:
    """Run a stream worker (faust): ingest into ClickHouse, or the incident join.

    Example: dozor worker && dozor worker --role join
    """
    from faust.worker import Worker

    from dozor.infra.migrate import migrate as run_migrations
    from dozor.infra.topics import ensure_topics
    from dozor.streams.app import create_app

    ensure_topics(settings)
    run_migrations(settings)
    app = create_app(settings, role)
    # Everything alive now (modules, pydantic's validators, settings) lives as long as the worker:
    # out of the collector's sight, full collections stop re-scanning it. Validation of a 50k
    # batch is about a tenth faster for it (benchmarks/results/validate.txt).
    gc.collect()
    gc.freeze()
    Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False).execute_from_commandline()


def _share(default: float, help_text: str) -> dict:
    """A share option's settings: a fraction from 0 to 1 with its default shown."""
    return {"type": click.FloatRange(0, 1), "default": default, "show_default": True, "help": help_text}


@cli.command()
@click.option(
    "--rate",
    type=click.FloatRange(min=0.001, max=100_000),
    default=None,
    help="Volume, times a real country's (producers/volume.py): 1 is real, the default "
    "DOZOR_SIMULATE_RATE; more for a load test.",
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same messages.")
@click.option(
    "--fast",
    is_flag=True,
    help="As fast as possible; needs --count. Event times then run up to now from the past.",
)
@click.option("--bad-rate", **_share(0.0, "Share of messages replaced by malformed ones of many kinds."))
@click.option(
    "--late-rate", **_share(0.01, "Share of messages sent late (up to 5 minutes), hence out of order.")
)
@click.option("--duplicate-rate", **_share(0.005, "Share of messages sent twice."))
@click.option(
    "--incident-share",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of root events that open an incident (each brings about 8 messages); default: the "
    "volume model's (about 0.36).",
)
@click.pass_obj
@_guard
def simulate(
    settings: Settings,
    rate: float | None,
    count: int | None,
    seed: int,
    fast: bool,
    bad_rate: float,
    late_rate: float,
    duplicate_rate: float,
    incident_share: float | None,
) -> None:
    """Produce a simulated feed: violations, incidents, dispatches, 102 calls, integrity reports, at a real
    country's volume (the simulated history's too: producers/volume.py) times --rate.

    Example: dozor simulate --rate 100 --bad-rate 0.01
    """
    import dataclasses

    from dozor.producers.publish import run_simulation
    from dozor.producers.simulator import SimConfig
    from dozor.producers.volume import live_config

    if fast and count is None:
        raise click.UsageError("--fast needs --count: event times must not run past the present")
    base = SimConfig(seed=seed, late_rate=late_rate, duplicate_rate=duplicate_rate, bad_rate=bad_rate)
    cfg = live_config(base, rate or settings.simulate_rate or 1.0)
    if incident_share is not None:
        cfg = dataclasses.replace(cfg, incident_share=incident_share)
    stats = run_simulation(settings, cfg, count=count, paced=not fast)
    click.echo(stats.summary(), err=True)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "mapping_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file mapping the file's columns to the canonical schema (docs/replay.md).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.0001),
    default=None,
    help="1 = original pace, 10 = ten times faster; default: as fast as possible.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write rejected events (row number, family, reason, detail) here as JSON lines.",
)
@click.option(
    "--dry-run", is_flag=True,
    help="Map and validate only: print what would be sent and what rejected, by reason, with examples.",
)  # fmt: skip
@click.option(
    "--historical", is_flag=True,
    help="History, not news: accept any date ClickHouse stores, raise no alerts, publish no live figures.",
)  # fmt: skip
@click.pass_obj
@_guard
def replay(
    settings: Settings, file: Path, mapping_path: Path, speed: float | None, rejects: Path | None,
    dry_run: bool, historical: bool,
) -> None:  # fmt: skip
    """Replay real-world records (CSV, JSONL, Parquet) into the input topics of their families.

    Events older than DOZOR_EARLIEST_EVENT_DATE (2020-01-01) are refused as bad_time, unless
    --historical: then every message is marked as history (a Kafka header), and the workers
    store it whatever its date, without waiting or spike alerts and without live city figures.

    Example: dozor replay calls.csv --mapping docs/examples/cad_calls.toml --dry-run
    """
    import datetime as dt

    from dozor.producers.replay import Mapping
    from dozor.producers.replay import replay as run
    from dozor.schemas import ENGINE_EARLIEST, HISTORICAL_HEADER

    mapping = Mapping.load(mapping_path)
    salt = settings.plate_salt.get_secret_value()
    progress = sys.stderr.isatty()
    retention = dt.timedelta(hours=settings.join_retention_hours)
    earliest = ENGINE_EARLIEST if historical else settings.earliest_event
    kept = {family: settings.retained_since(family) for family in mapping.families}
    if dry_run:
        report = run(file, mapping, None, salt, rejects=rejects, progress=progress,
                     earliest=earliest, join_retention=retention, retained_since=kept)  # fmt: skip
        click.echo(f"dry run, nothing sent: {report.summary(dry_run=True)}")
        return
    from dozor.infra.topics import ensure_topics
    from dozor.producers.kafka import Publisher, make_producer

    ensure_topics(settings)
    topics = {family: settings.topic(family) for family in mapping.families}
    headers = [(HISTORICAL_HEADER, b"1")] if historical else None
    pub = Publisher(make_producer(settings))
    try:
        report = run(
            file, mapping, lambda family, k, v: pub.send(topics[family], k, v, headers), salt, speed=speed,
            rejects=rejects, progress=progress, earliest=earliest, join_retention=retention,
            retained_since=kept,
        )  # fmt: skip
    finally:
        pub.close()
    click.echo(f"{', '.join(topics.values())}: {report.summary()}")


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default DOZOR_DASHBOARD_PORT.")
@click.option("--address", default="127.0.0.1", show_default=True, help="0.0.0.0 to serve wall screens.")
@click.pass_obj
@_guard
def dashboard(settings: Settings, port: int | None, address: str) -> None:
    """Serve the Streamlit dashboard.

    Example: dozor dashboard --address 0.0.0.0
    """
    from dozor.infra.procs import ensure_port_free

    port = port or settings.dashboard_port
    ensure_port_free("Dashboard", address, port, "DOZOR_DASHBOARD_PORT")
    from dozor.infra.stack import streamlit_cmd, streamlit_env

    os.execvpe(sys.executable, streamlit_cmd(settings, port, address), streamlit_env(settings))


@cli.command()
@click.pass_obj
@_guard
def status(settings: Settings) -> None:
    """Lag, ingest rates, freshness and dead letters of a running stack.

    Example: dozor status
    """
    from dozor.streams.status import collect

    try:
        click.echo(collect(settings).render())
    except Exception as e:  # an unreachable broker or ClickHouse is the answer, not a crash
        raise click.ClickException(f"cannot read the stack's status: {e}") from None


@cli.command()
@click.pass_obj
@_guard
def verify(settings: Settings) -> None:
    """Account for every consumed message: stored + dead-lettered + duplicate; exit 1 on any loss.

    Reads the retained input topics up to the committed offsets and checks each offset against
    ClickHouse and the dead-letter topic (streams/verify.py). Run it after an import.

    Example: dozor verify
    """
    from dozor.streams.verify import join_account, reconcile

    try:
        results = reconcile(settings)
        joined = join_account(settings)
    except Exception as e:  # an unreachable broker or ClickHouse is the answer, not a crash
        raise click.ClickException(f"cannot reconcile: {e}") from None
    for r in results:
        click.secho(r.line(), fg=None if r.ok else "red", bold=not r.ok)
    click.secho(joined.line(), fg=None if not joined.missing else "yellow" if joined.ok else "red",
                bold=not joined.ok)  # fmt: skip
    lost = sum(r.unaccounted for r in results)
    if lost:
        click.secho(f"{lost:,} consumed messages are neither stored, dead-lettered nor duplicates", fg="red")
    if not joined.ok:
        click.secho(f"{joined.missing:,} incidents have no complete response record", fg="red")
    if lost or not joined.ok:
        sys.exit(1)
    click.secho("every consumed message is accounted for", fg="green")


@cli.command("backfill")
@click.option("--days", type=click.IntRange(min=1, max=3660), required=True, help="Days of history.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same history.")
@click.option(
    "--scale", type=click.FloatRange(min=0.01, max=1000), default=1.0, show_default=True,
    help="Volume multiplier (1: a plausible city's; benchmarks use more).",
)  # fmt: skip
@click.pass_obj
@_guard
def backfill_cmd(settings: Settings, days: int, seed: int, scale: float) -> None:
    """Generate simulated history ending yesterday inside ClickHouse (through the same tables and
    views as live data; marked simulated). Volumes: producers/backfill.py.

    Example: dozor backfill --days 400
    """
    from dozor.infra.migrate import migrate as run_migrations

    run_migrations(settings)
    _run_backfill(settings, days, seed, scale)


# --- the whole stack -----------------------------------------------------------------------------


@cli.command()
@click.option(
    "--rate", type=click.FloatRange(min=0.001, max=100_000), default=None,
    help="The simulated feed's volume, times a real country's (1, real, by default); the wall marks "
    "a load test.",
)  # fmt: skip
@click.option("--no-simulator", is_flag=True, help="Start everything but the simulator.")
@click.pass_obj
@_guard
def up(settings: Settings, rate: float | None, no_simulator: bool) -> None:
    """Start broker, ClickHouse endpoint, worker, simulator and dashboard; Ctrl-C stops them all.

    Example: dozor up            (a load test: dozor up --rate 100)
    """
    from dozor.infra.stack import Stack, Stopped, stop_on_signals

    # Any stop signal, at any moment of the start or after it, ends in stack.stop(): Ctrl-C, a
    # SIGTERM, the terminal closing; each service also dies with this process if it is killed.
    stop_on_signals()
    stack = Stack(settings, echo=click.echo)
    try:
        url = stack.start(
            rate=rate, simulator=not no_simulator,
            first_start=lambda: _first_start_history(settings) if settings.up_history_days else None,
        )  # fmt: skip
        stack.say(f"\nDozor is up. Dashboard: {url}\nLogs: {stack.logs}\nPress Ctrl-C to stop.\n")
        with contextlib.suppress(Exception):
            import webbrowser

            if os.environ.get("DISPLAY") or sys.platform == "darwin":
                webbrowser.open(url)
        stack.wait()
    except (Stopped, KeyboardInterrupt):
        pass
    finally:
        stack.stop()


#: A stack stopped for longer than this gets its gap filled with simulated history at the next start.
_GAP = 15 * 60


def _first_start_history(settings: Settings) -> None:
    """Simulated history up to this start, so that the live feed takes over without a hole.

    On an empty database, ``DOZOR_UP_HISTORY_DAYS`` of it up to now (a day that began before the
    start is already full, and "today against yesterday" compares like with like). A generation an
    earlier start did not finish (Ctrl-C during the first start) is finished, for the same days. A
    database whose newest event is older than a quarter of an hour (the stack was stopped) gets the
    gap since then: without it, every day the stack was down read as a fall to nothing.
    """
    import datetime as dt

    from dozor.clickhouse import connect
    from dozor.producers.backfill import unfinished

    client = connect(settings)
    now = dt.datetime.now(dt.UTC)
    left = unfinished(client)
    if left is not None:
        first, last, seed = left
        days = (last - first).days + 1
        click.echo(f"finishing the simulated history of {first} … {last} an earlier start began …")
        _run_backfill(settings, days, seed=seed, today=last + dt.timedelta(days=1), through=now)
        return
    stored = client.query("SELECT (SELECT count() FROM simulated_history) + (SELECT count() FROM violations)")
    if not stored.result_rows[0][0]:
        click.echo(f"first start: generating {settings.up_history_days} days of simulated history …")
        _run_backfill(settings, settings.up_history_days, seed=1, through=now)
        return
    newest = client.command("SELECT toUnixTimestamp(max(event_time)) FROM violations")
    if not newest or now.timestamp() - float(newest) < _GAP:
        return
    since = dt.datetime.fromtimestamp(float(newest), dt.UTC)
    days = min((now - since).days + 2, settings.up_history_days)
    click.echo(f"the stack was stopped since {since:%Y-%m-%d %H:%M} UTC: simulating the gap …")
    _run_backfill(settings, days, seed=int(now.timestamp()) % 1_000_000, through=now, since=since)


def _run_backfill(
    settings: Settings, days: int, seed: int, scale: float = 1.0, today: object | None = None,
    through: object | None = None, since: object | None = None,
) -> None:  # fmt: skip
    from tqdm import tqdm

    from dozor.clickhouse import connect
    from dozor.producers.backfill import backfill as generate

    with tqdm(total=days, unit=" days", desc="history", mininterval=0.5) as bar:
        done = generate(
            connect(settings), settings, days, seed=seed, progress=bar.update, scale=scale,
            today=today, through=through, since=since,  # type: ignore[arg-type]
        )  # fmt: skip
    click.echo(
        f"simulated history {done.first_day} … {done.last_day}: {done.violations:,} violations, "
        f"{done.incidents:,} incidents (marked simulated)"
    )


def main() -> None:
    """Console entry point."""
    cli(prog_name="dozor")
