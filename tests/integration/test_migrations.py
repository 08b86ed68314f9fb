"""Schema migrations create the tables once and are safe to run again."""

from __future__ import annotations

import pytest

from dozor.clickhouse import connect
from dozor.infra.migrate import migrate, migrations

pytestmark = pytest.mark.integration


def test_migrations_apply_once_and_are_recorded(settings):
    first = migrate(settings)
    assert [m.version for m in first] == [m.version for m in migrations()]
    assert migrate(settings) == []
    c = connect(settings)
    assert c.command("EXISTS TABLE violations") == 1
    recorded = [r[0] for r in c.query("SELECT version FROM schema_migrations ORDER BY version").result_rows]
    assert recorded == [m.version for m in migrations()]


def test_violations_table_is_ordered_for_city_time_queries(settings):
    migrate(settings)
    key = connect(settings).command(
        "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'violations'"
    )
    assert key.startswith("city, event_time")


def test_every_table_has_the_configured_retention(settings_factory):
    settings = settings_factory(
        retention_raw_days=400, retention_aggregate_days=800, retention_integrity_days=90
    )
    migrate(settings)
    c = connect(settings)
    engines = dict(
        c.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
            "AND engine LIKE '%MergeTree'"
        ).result_rows
    )
    without = sorted(t for t, e in engines.items() if " TTL " not in e and t != "schema_migrations")
    assert without == [], f"tables with no retention: {without}"
    assert "toIntervalDay(400)" in engines["violations"]
    assert "toIntervalDay(90)" in engines["integrity_reports"]
    assert "toIntervalDay(800)" in engines["violations_by_minute"]
    # Rows past their retention leave at the next merge; younger ones stay.
    c.command(
        "INSERT INTO integrity_reports (event_id, event_time, region, kind, service) "
        "SELECT generateUUIDv4(), now64(3) - toIntervalDay(d), 'astana', 'integrity_check', 'patrol' "
        "FROM values('d UInt16', 100, 80)"
    )
    c.command("OPTIMIZE TABLE integrity_reports FINAL")
    assert c.command("SELECT count() FROM integrity_reports") == 1
    # A changed setting takes effect on the next start.
    migrate(settings.model_copy(update={"retention_integrity_days": 30}))
    assert "toIntervalDay(30)" in c.command(
        "SELECT engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'integrity_reports'"
    )


def test_server_users_script_is_valid_clickhouse_and_holds_no_password(settings_factory):
    from dozor.infra.migrate import user_statements

    settings = settings_factory(
        clickhouse_user="dozor_writer",
        clickhouse_password="w-pass-81",
        clickhouse_reader_password="r-pass-92",
    )
    statements = user_statements(settings)
    assert any(s.startswith("GRANT SELECT ON") and "dozor_reader" in s for s in statements)
    # Parsed by the engine's own parser (a real server runs them; the embedded one needs none).
    c = connect(settings_factory(), database="default")
    for stmt in statements:
        assert "w-pass-81" not in stmt and "r-pass-92" not in stmt
        canonical = c.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": stmt}).result_rows
        assert canonical[0][0].split()[0] in ("CREATE", "ALTER", "GRANT")
    with pytest.raises(ValueError, match="plain identifier"):
        user_statements(settings.model_copy(update={"clickhouse_reader_user": "x; DROP USER y"}))


def test_the_code_writes_exactly_the_columns_the_migrations_make(settings):
    """Column lists in code (the sink's TABLES, the audit writer's)
    against the tables the migrations made: a renamed or forgotten column fails here, not in an
    insert at night. Columns the code leaves out must have a default."""
    from dozor.dashboard.signin import _AUDIT_COLUMNS
    from dozor.streams.ingest import HEARTBEAT_COLUMNS
    from dozor.streams.sink import TABLES

    migrate(settings)
    c = connect(settings)
    rows = c.query(
        "SELECT table, name, default_kind FROM system.columns WHERE database = currentDatabase()"
    ).result_rows
    columns: dict[str, dict[str, str]] = {}
    for table, name, default_kind in rows:
        columns.setdefault(table, {})[name] = default_kind
    written = {spec.table: spec.columns for spec in TABLES.values()}
    written["audit_log"] = tuple(_AUDIT_COLUMNS)
    written["worker_heartbeats"] = HEARTBEAT_COLUMNS
    for table, cols in written.items():
        assert table in columns, f"{table} is written but no migration makes it"
        unknown = set(cols) - set(columns[table])
        assert not unknown, f"{table}: the code writes columns the table lacks: {sorted(unknown)}"
        missing = {n for n, kind in columns[table].items() if n not in cols and not kind}
        assert not missing, f"{table}: columns with no default the code never writes: {sorted(missing)}"
