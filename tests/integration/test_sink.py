"""The sink against the real engine: what it reports written is what ClickHouse stores.

Each test makes its own table in its own database and drives :class:`ClickHouseWriter` as the
worker does; the truth is the rows the test built, counted back with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from clickhouse_connect.driver.summary import QuerySummary

from dozor.clickhouse import connect
from dozor.errors import ClickHouseUnavailable, InsertNotStored
from dozor.streams.sink import ClickHouseWriter, PartitionBatch, Row, TableSpec

pytestmark = pytest.mark.integration

SPEC = TableSpec("guarded", ("event_id", "event_time", "v"))
DAY0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def client(settings):
    admin = connect(settings, database="default")
    admin.command(f"CREATE DATABASE {settings.clickhouse_database}")
    c = connect(settings)
    # Partitioned by day like the raw tables; the constraint stands for any value the engine
    # refuses (it answers code 469, a data error like a parse or range failure).
    c.command(
        "CREATE TABLE guarded (event_id UUID, event_time DateTime64(3, 'UTC'), v UInt32, "
        "src_partition UInt16, src_offset UInt64, CONSTRAINT small CHECK v < 1000) "
        "ENGINE = MergeTree PARTITION BY toYYYYMMDD(event_time) ORDER BY event_time "
        "SETTINGS non_replicated_deduplication_window = 1000"
    )
    yield c
    admin.command(f"DROP DATABASE {settings.clickhouse_database}")


def _batch(values: list[tuple[dt.datetime, int]], partition: int = 0) -> PartitionBatch:
    b = PartitionBatch("t", partition, "violations")
    for offset, (t, v) in enumerate(values):
        eid = uuid.uuid4()
        b.cover(offset)
        b.rows.append(Row(eid, t.timestamp(), [str(eid), t.isoformat(), v, partition, offset], offset))
    return b


def test_three_years_in_one_write_are_all_stored_once(client):
    times = [DAY0 + dt.timedelta(hours=7 * i) for i in range(3 * 365 * 24 // 7)]  # ~1,100 days
    batch = _batch([(t, i % 1000) for i, t in enumerate(times)])
    writer = ClickHouseWriter(client, SPEC)
    written, refused = writer.write([batch])
    assert (written, refused) == (len(times), [])
    assert client.query("SELECT count(), uniqExact(event_id) FROM guarded").result_rows == [(len(times),) * 2]
    per_day = dict(client.query("SELECT toDate(event_time), count() FROM guarded GROUP BY 1").result_rows)
    truth: dict[dt.date, int] = {}
    for t in times:
        truth[t.date()] = truth.get(t.date(), 0) + 1
    assert per_day == truth
    # Written again (a crash before the commit): nothing new, nothing twice.
    assert writer.write([batch]) == (0, [])
    assert client.command("SELECT count() FROM guarded") == len(times)


def test_rows_the_engine_refuses_come_back_and_the_rest_is_stored(client):
    values = [
        (DAY0 + dt.timedelta(minutes=i), 5000 if i in (3, 377, 378, 999) else i % 1000) for i in range(1000)
    ]
    batch = _batch(values)
    written, refused = ClickHouseWriter(client, SPEC).write([batch])
    assert written == 996
    assert sorted(r.row.source for r in refused) == [3, 377, 378, 999]
    assert {r.error.code for r in refused} == {469}
    assert "small" in str(refused[0].error)
    stored = {v for (v,) in client.query("SELECT v FROM guarded").result_rows}
    assert 5000 not in stored and client.command("SELECT count() FROM guarded") == 996


def test_a_value_that_cannot_be_serialised_is_refused_alone(client):
    batch = _batch([(DAY0, 1), (DAY0 + dt.timedelta(seconds=1), 2**70), (DAY0 + dt.timedelta(seconds=2), 3)])
    written, refused = ClickHouseWriter(client, SPEC).write([batch])
    assert written == 2
    assert [r.row.source for r in refused] == [1]
    assert refused[0].error.code is None and "serialise" in str(refused[0].error)


def test_a_server_side_failure_is_held_for_retry_not_dead_lettered(client):
    # A missing table (migrations not applied yet) is the server's state, not the rows' fault:
    # dead-lettering here would throw away valid events.
    with pytest.raises(ClickHouseUnavailable):
        ClickHouseWriter(client, TableSpec("no_such_table", SPEC.fields)).write([_batch([(DAY0, 1)])])


def test_an_insert_answered_as_written_but_not_stored_is_refused(client, monkeypatch):
    # The fault of the old endpoint (chdb's streaming insert): 200 OK with written_rows for rows
    # the engine dropped. Reproduced by answering the insert without sending it.
    monkeypatch.setattr(client, "raw_insert", lambda *a, **k: QuerySummary({"written_rows": "0"}))
    with pytest.raises(InsertNotStored, match="not stored"):
        ClickHouseWriter(client, SPEC).write([_batch([(DAY0, 1), (DAY0, 2)])])


def test_an_incident_opens_once_whatever_its_messages_ids(settings):
    from dozor.infra.migrate import migrate
    from dozor.streams.sink import TABLES

    migrate(settings)
    c = connect(settings)
    spec = TABLES["incidents"]
    opened = DAY0 + dt.timedelta(hours=5)

    def opening(iid: str, status: str = "opened", at: dt.datetime = opened) -> Row:
        eid = uuid.uuid4()
        values = [str(eid), at.isoformat(), iid, status, "call_102", "theft", 2, "astana", "yesil",
                  None, None, opened.isoformat(), "", ""]  # fmt: skip
        return Row(eid, at.timestamp(), [*values, 0, 0])

    writer = ClickHouseWriter(c, spec)
    first = PartitionBatch("t", 0, "incidents")
    # Two sources report the same opening under their own ids, in one batch; another incident too.
    first.rows += [opening("INC-1"), opening("INC-1"), opening("INC-2")]
    assert writer.write([first])[0] == 2
    later = PartitionBatch("t", 0, "incidents")
    later.rows += [opening("INC-1"), opening("INC-1", "closed", opened + dt.timedelta(hours=1))]
    assert writer.write([later])[0] == 1, "a third opening is dropped, the closure is stored"
    rows = c.query("SELECT incident_id, status, count() FROM incident_events GROUP BY 1, 2 ORDER BY 1, 2")
    assert rows.result_rows == [("INC-1", "closed", 1), ("INC-1", "opened", 1), ("INC-2", "opened", 1)]
    assert c.command("SELECT sum(opened) FROM incidents_by_hour WHERE city = 'astana'") == 2
