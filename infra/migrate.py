"""Versioned, idempotent ClickHouse schema migrations.

Files ``infra/clickhouse/migrations/NNNN_name.sql`` are the one home of Dozor's DDL. Each applied
version is recorded in ``schema_migrations``; running again applies only what is new, and every
statement is written to be safe to repeat (``IF NOT EXISTS``) in case a run died half-way.
Statements name no database: the client's database is where they land, so tests get a fresh one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from dozor.clickhouse import connect
from dozor.settings import Settings

__all__ = [
    "Migration",
    "migrations",
    "migrate",
    "apply_retention",
    "user_statements",
    "RETENTION",
    "MIGRATIONS_DIR",
    "USERS_SQL",
]

log = logging.getLogger("dozor.infra.migrate")

MIGRATIONS_DIR = Path(__file__).with_name("clickhouse") / "migrations"
USERS_SQL = Path(__file__).with_name("clickhouse") / "users.sql"
#: ClickHouse's code for a table that does not exist.
UNKNOWN_TABLE = 60
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


#: Every table's retention: the time it is kept by, and the setting that says for how many days.
#: One home for it, applied by :func:`apply_retention` after the migrations (so a changed setting
#: takes effect on the next start). ``schema_migrations`` is kept for ever.
RETENTION: dict[str, tuple[str, str]] = {
    "violations": ("toDateTime(event_time)", "retention_raw_days"),
    "incident_events": ("toDateTime(event_time)", "retention_raw_days"),
    "dispatch_events": ("toDateTime(event_time)", "retention_raw_days"),
    "incident_responses": ("toDateTime(event_time)", "retention_raw_days"),
    "alerts": ("toDateTime(event_time)", "retention_raw_days"),
    "integrity_reports": ("toDateTime(event_time)", "retention_integrity_days"),
    "call_events": ("toDateTime(event_time)", "retention_raw_days"),
    "violations_by_minute": ("minute", "retention_aggregate_days"),
    "incidents_by_minute": ("minute", "retention_aggregate_days"),
    "violations_by_city_minute": ("minute", "retention_aggregate_days"),
    "violations_by_hour": ("hour", "retention_aggregate_days"),
    "incidents_by_hour": ("hour", "retention_aggregate_days"),
    "incidents_by_day": ("day", "retention_aggregate_days"),
    "incident_response_latest": ("toDateTime(opened_at)", "retention_raw_days"),
    "incident_status": ("opened_day", "retention_aggregate_days"),
    "unit_state": ("toDateTime(last_change)", "retention_aggregate_days"),
    "city_figures": ("minute", "retention_aggregate_days"),
    "audit_log": ("toDateTime(at)", "retention_audit_days"),
    # As long as the simulated rows it marks.
    "simulated_history": ("last_day", "retention_raw_days"),
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file's statements, split on ';' at line end, comments removed."""
        text = "\n".join(
            line for line in self.path.read_text().splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files in version order; a badly named file is an error, not ignored."""
    out = []
    for p in sorted(directory.glob("*.sql")):
        m = _NAME.match(p.name)
        if not m:
            raise ValueError(f"migration file {p.name} does not match NNNN_name.sql")
        out.append(Migration(int(m.group(1)), m.group(2), p))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return out


def migrate(settings: Settings) -> list[Migration]:
    """Create the configured database if needed and apply pending migrations; returns those applied."""
    database = settings.clickhouse_database
    connect(settings, database="default").command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client = connect(settings)
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {r[0] for r in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for m in migrations():
        if m.version in done:
            continue
        for stmt in m.statements():
            client.command(stmt)
        client.insert("schema_migrations", [[m.version, m.name]], column_names=["version", "name"])
        log.info("applied migration %04d_%s to %s", m.version, m.name, database)
        applied.append(m)
    apply_retention(settings, client)
    return applied


def apply_retention(settings: Settings, client: Client) -> list[str]:
    """Set each table's TTL to the configured days where it differs; returns the tables changed.

    Only a changed TTL is altered, and without rewriting the existing parts
    (``materialize_ttl_after_modify = 0``): expired rows leave at the next merge instead of in a
    mutation of the whole table on every start.
    """
    current = dict(
        client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    )
    changed = []
    for table, (expr, setting) in RETENTION.items():
        if table not in current:
            continue
        ttl = f"{expr} + toIntervalDay({int(getattr(settings, setting))})"
        if f"TTL {ttl}" in current[table]:
            continue
        try:
            client.command(
                f"ALTER TABLE {table} MODIFY TTL {ttl}", settings={"materialize_ttl_after_modify": 0}
            )
        except DatabaseError as e:
            # Two processes migrating at once (the worker and the join start together): a table
            # the other one dropped meanwhile (0006 drops incident_state) has no retention to set.
            if getattr(e, "code", None) != UNKNOWN_TABLE:
                raise
            continue
        log.info("retention of %s: %s", table, ttl)
        changed.append(table)
    return changed


def user_statements(settings: Settings) -> list[str]:
    """``infra/clickhouse/users.sql`` for these settings: the writer and reader users and their
    grants, for a real ClickHouse server (the embedded endpoint enforces the same by itself).

    Names are checked to be plain identifiers; passwords go in only as SHA-256 hex.
    """
    import hashlib

    names = {
        "writer": settings.clickhouse_user,
        "reader": settings.clickhouse_reader_user,
        "database": settings.clickhouse_database,
    }
    for key, value in names.items():
        if not _IDENT.match(value):
            raise ValueError(f"{key} name {value!r} is not a plain identifier")
    if names["writer"] == "default":
        raise ValueError("DOZOR_CLICKHOUSE_USER is 'default': on a server, give Dozor's writer its own name")
    for var, secret in (
        ("DOZOR_CLICKHOUSE_PASSWORD", settings.clickhouse_password),
        ("DOZOR_CLICKHOUSE_READER_PASSWORD", settings.clickhouse_reader_password),
    ):
        if not secret.get_secret_value():
            raise ValueError(f"{var} is empty: a server user needs a password")
    values = {
        **names,
        "writer_sha256": hashlib.sha256(settings.clickhouse_password.get_secret_value().encode()).hexdigest(),
        "reader_sha256": hashlib.sha256(
            settings.clickhouse_reader_password.get_secret_value().encode()
        ).hexdigest(),
    }
    text = "\n".join(
        line for line in USERS_SQL.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip().format(**values) for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]
