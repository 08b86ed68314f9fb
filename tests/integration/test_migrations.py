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
