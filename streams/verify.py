"""Reconciliation: every message the ingest committed is stored, dead-lettered, or a duplicate.

Why it exists: a worker once reported 52,586 rows written, no dead letters and no lag while the
table held 3,215; counters kept by the worker itself agreed with each other and were all wrong.
This check trusts none of them. For each input partition it reads the retained log up to the
group's committed offset, and accounts for each offset from what is actually there:

- **stored**: a row in the family's table carries that ``(src_partition, src_offset)``;
- **dead-lettered**: the dead-letter topic holds a record from that source offset (read committed,
  reasons of the ingest only: a join's ``processing`` letter is about the join, not storage);
- **duplicate**: its ``event_id`` is stored from an earlier message, or it opens an incident
  whose opening is stored (an incident opens once, whatever its messages' ids);
- **superseded** (city figures only): a higher revision of the same city and minute replaced its
  row, as the table's engine keeps only the highest;
- **unaccounted**: none of these — a loss. ``dozor verify`` prints it in red and exits 1.

It reads every retained message, so it costs a pass over the topics (seconds per million
messages); run it after an import or when figures look wrong, not on a timer.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
from clickhouse_connect.driver.client import Client
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from dozor.clickhouse import connect
from dozor.settings import Settings
from dozor.streams.ingest import INGESTED_FAMILIES
from dozor.streams.sink import TABLES, TableSpec

__all__ = ["Reconciliation", "reconcile", "read_all", "INGEST_REASONS", "JoinAccount", "join_account"]

#: Dead-letter reasons given by the ingest (validation and storage): those account for an offset.
INGEST_REASONS = frozenset(
    {"oversize", "malformed_json", "unsupported_version", "schema", "unknown_city", "bad_position",
     "bad_time", "undecodable", "storage"}
)  # fmt: skip
#: Ids per duplicate look-up query.
_ID_CHUNK = 5_000


@dataclass
class Reconciliation:
    """One family's accounting, over the retained log up to the committed offsets: the messages
    ``consumed`` below them, of which ``stored`` (their row is in the table), ``deadlettered``,
    ``duplicates`` (valid copies of an event id stored once already), ``superseded`` (city-figures
    revisions the table replaced by a later one) and ``unaccounted`` (a loss)."""

    family: str
    topic: str
    consumed: int = 0
    stored: int = 0
    #: Offsets nothing accounts for, as ``partition@offset`` (the first few).
    missing: list[str] = field(default_factory=list)
    deadlettered: int = 0
    duplicates: int = 0
    superseded: int = 0
    unaccounted: int = 0

    @property
    def ok(self) -> bool:
        return self.unaccounted == 0

    def line(self) -> str:
        return (
            f"{self.family:<15} consumed {self.consumed:>10,} = stored {self.stored:>10,} + dead letters "
            f"{self.deadlettered:>7,} + duplicates {self.duplicates:>7,}"
            + (f" + superseded {self.superseded:,}" if self.superseded else "")
            + ("" if self.ok else f"   {self.unaccounted:,} UNACCOUNTED, e.g. {', '.join(self.missing[:5])}")
        )


def _read(consumer: KafkaConsumer, tp: TopicPartition, start: int, end: int) -> list:
    """Messages of ``tp`` at offsets [start, end), in order."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    out: list = []
    while start < end:
        batch = consumer.poll(timeout_ms=5_000, max_records=50_000).get(tp, [])
        if not batch:
            break  # compacted away or deleted by retention between the look-up and the read
        for m in batch:
            if m.offset < end:
                out.append(m)
        start = batch[-1].offset + 1
    return out


def read_all(consumer: KafkaConsumer, topic: str) -> list:
    """Every retained message of ``topic``, partition by partition (committed only, if the
    consumer reads ``read_committed``)."""
    out: list = []
    for p in sorted(consumer.partitions_for_topic(topic) or ()):
        tp = TopicPartition(topic, p)
        out += _read(consumer, tp, consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp])
    return out


def _deadlettered(consumer: KafkaConsumer, topic: str) -> dict[tuple[str, int], set[int]]:
    """Source offsets the dead-letter topic accounts for, per source topic-partition."""
    out: dict[tuple[str, int], set[int]] = defaultdict(set)
    for m in read_all(consumer, topic):
        h = dict(m.headers)
        if h.get("dozor.reason", b"").decode() not in INGEST_REASONS:
            continue
        src = (h["dozor.source.topic"].decode(), int(h["dozor.source.partition"]))
        out[src].add(int(h["dozor.source.offset"]))
    return out


def _event_id(value: bytes | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(orjson.loads(value or b"")["event_id"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _superseded(client: Client, spec: TableSpec, values: dict[int, bytes | None]) -> set[int]:
    """Offsets of city-figures messages whose row a higher revision of the same minute replaced.

    ``city_figures`` keeps the highest revision per city and minute (a ReplacingMergeTree): once
    merged, an earlier revision's row is gone, and the later one accounts for its message.
    """
    if spec.replaced_by_revision_of != ("city", "minute") or not values:
        return set()
    wanted: dict[int, tuple[str, int, int]] = {}
    for offset, value in values.items():
        try:
            doc = orjson.loads(value or b"")
            minute = int(dt.datetime.fromisoformat(doc["minute"]).timestamp())
            wanted[offset] = (str(doc["city"]), minute, int(doc["revision"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    if not wanted:
        return set()
    lo = min(m for _, m, _ in wanted.values())
    hi = max(m for _, m, _ in wanted.values())
    rows = client.query(
        f"SELECT city, toUnixTimestamp(minute), max(revision) FROM {spec.table} "  # noqa: S608
        "WHERE minute >= toDateTime({lo:UInt32}) AND minute <= toDateTime({hi:UInt32}) GROUP BY city, minute",
        parameters={"lo": lo, "hi": hi},
    ).result_rows
    newest = {(c, int(m)): int(r) for c, m, r in rows}
    return {o for o, (c, m, rev) in wanted.items() if newest.get((c, m), 0) > rev}


def _repeated_openings(client: Client, spec: TableSpec, values: dict[int, bytes | None]) -> set[int]:
    """Offsets of openings not stored because their incident's opening is (``TableSpec.once_per``):
    the ingest keeps one opening per incident, whatever its message id."""
    if spec.once_per is None or not values:
        return set()
    key_col, col, value = spec.once_per
    wanted: dict[int, str] = {}
    for offset, raw in values.items():
        try:
            doc = orjson.loads(raw or b"")
            if doc.get(col) == value and doc.get(key_col) is not None:
                wanted[offset] = str(doc[key_col])
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            continue
    if not wanted:
        return set()
    stored = {
        k
        for (k,) in client.query(
            f"SELECT DISTINCT {key_col} FROM {spec.table} WHERE {col} = {{v:String}} "  # noqa: S608
            f"AND {key_col} IN {{keys:Array(String)}}",
            parameters={"v": value, "keys": sorted(set(wanted.values()))},
        ).result_rows
    }
    return {o for o, k in wanted.items() if k in stored}


def reconcile(settings: Settings) -> list[Reconciliation]:
    """Account for every committed offset of every ingested topic (see the module's docstring)."""
    conf = dict(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_config())
    admin = KafkaAdminClient(**conf)
    consumer = KafkaConsumer(**conf, enable_auto_commit=False, isolation_level="read_committed")
    client = connect(settings)
    try:
        group = settings.consumer_group
        committed = {
            tp: getattr(meta, "offset", meta)
            for tp, meta in admin.list_group_offsets({group: None}).get(group, {}).items()
        }
        dead = _deadlettered(consumer, settings.topic_deadletter)
        out = []
        for family in INGESTED_FAMILIES:
            table, topic = TABLES[family].table, settings.topic(family)
            rec = Reconciliation(family, topic)
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                tp = TopicPartition(topic, p)
                start = consumer.beginning_offsets([tp])[tp]
                end = max(committed.get(tp, 0) or 0, 0)
                if end <= start:
                    continue
                stored = {
                    int(o)
                    for (o,) in client.query(
                        f"SELECT src_offset FROM {table} WHERE src_partition = {{p:UInt16}} "  # noqa: S608
                        "AND src_offset >= {lo:UInt64} AND src_offset < {hi:UInt64}",
                        parameters={"p": p, "lo": start, "hi": end},
                    ).result_rows
                }
                dl = dead.get((topic, p), set())
                rest: dict[int, uuid.UUID | None] = {}
                values: dict[int, bytes | None] = {}
                for m in _read(consumer, tp, start, end):
                    rec.consumed += 1
                    if m.offset in stored:
                        rec.stored += 1
                    elif m.offset in dl:
                        rec.deadlettered += 1
                    else:
                        rest[m.offset] = _event_id(m.value)
                        values[m.offset] = m.value
                ids = [str(i) for i in rest.values() if i is not None]
                found: set[str] = set()
                for i in range(0, len(ids), _ID_CHUNK):
                    # Literals, not a bound Array: these are str(uuid.UUID), which can only be hex
                    # and dashes; and a bound list this long goes as a form body the embedded
                    # endpoint does not read yet (docs/clickhouse-endpoint.md).
                    literals = ",".join(f"'{e}'" for e in ids[i : i + _ID_CHUNK])
                    found |= {
                        str(e)
                        for (e,) in client.query(
                            f"SELECT event_id FROM {table} WHERE event_id IN ({literals})",  # noqa: S608
                            settings={"max_query_size": 1 << 20},
                        ).result_rows
                    }
                unfound = {o: v for o, v in values.items() if o in rest}
                later = _superseded(client, TABLES[family], unfound)
                reopened = _repeated_openings(client, TABLES[family], unfound)
                for offset, eid in sorted(rest.items()):
                    if (eid is not None and str(eid) in found) or offset in reopened:
                        rec.duplicates += 1
                    elif offset in later:
                        rec.superseded += 1
                    else:
                        rec.unaccounted += 1
                        if len(rec.missing) < 20:
                            rec.missing.append(f"{p}@{offset}")
            out.append(rec)
        return out
    finally:
        consumer.close()
        admin.close()


@dataclass
class JoinAccount:
    """The join's accounting, from the stored events themselves: ``expected`` incidents that opened
    and have an assignment, an arrival or a closure; of them ``without`` have no response record and
    ``incomplete`` have one that lacks a moment the events have; ``backlog`` is what the join's
    consumer group has still to read on the incidents and dispatches topics, and the ingest on the
    join's response times."""

    expected: int = 0
    without: int = 0
    incomplete: int = 0
    backlog: int = 0

    @property
    def missing(self) -> int:
        return self.without + self.incomplete

    @property
    def ok(self) -> bool:
        """Nothing missing, or everything missing may still come (the join has messages to read)."""
        return self.missing == 0 or self.backlog > 0

    def line(self) -> str:
        head = f"{'join':<15} {self.expected:,} incidents with an assignment, arrival or closure"
        if not self.missing:
            return f"{head}: every one has its response record"
        what = f"{self.without:,} without a response record, {self.incomplete:,} whose record lacks a moment"
        if self.backlog:
            return f"{head}: {what} — the join has {self.backlog:,} messages still to read"
        return (
            f"{head}: {what} — MISSING: the join read everything; it drops live events older than its "
            'retention behind the newest (dozor_join_events_total{family="too_late"}) and events it '
            "could not join (dead letters with reason processing)"
        )


#: Per incident: whether the stored events have each moment, and whether it opened.
_JOIN_ACCOUNT = """
SELECT count(),
       countIf(r.rid = ''),
       countIf(r.rid != '' AND ((m.assigned AND r.a IS NULL) OR (m.arrived AND r.r IS NULL)
                                OR (m.closed AND r.c IS NULL)))
FROM (SELECT incident_id, max(assigned) AS assigned, max(arrived) AS arrived, max(closed) AS closed
      FROM (SELECT incident_id, status = 'assigned' AS assigned, status = 'on_scene' AS arrived,
                   false AS closed
            FROM dispatch_events WHERE status IN ('assigned', 'on_scene')
            UNION ALL
            SELECT incident_id, false, false, true
            FROM incident_events WHERE status IN ('closed', 'cancelled'))
      GROUP BY incident_id) AS m
INNER JOIN (SELECT DISTINCT incident_id AS oid FROM incident_events WHERE status = 'opened') AS o
      ON m.incident_id = o.oid
LEFT JOIN (SELECT incident_id AS rid, argMax(time_to_assignment_s, revision) AS a,
                  argMax(time_to_arrival_s, revision) AS r, argMax(time_to_closure_s, revision) AS c
           FROM incident_responses GROUP BY incident_id) AS r ON m.incident_id = r.rid
SETTINGS join_use_nulls = 0
"""


def join_account(settings: Settings) -> JoinAccount:
    """Account for the join (see :class:`JoinAccount`)."""
    client = connect(settings)
    expected, without, incomplete = client.query(_JOIN_ACCOUNT).result_rows[0]
    conf = dict(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_config())
    admin = KafkaAdminClient(**conf)
    consumer = KafkaConsumer(**conf, enable_auto_commit=False)
    try:
        backlog = 0
        # What the join has still to read, and what the ingest has still to store of the join's output.
        for group, families in (
            (settings.streams_app_id("join"), ("incidents", "dispatches")),
            (settings.consumer_group, ("response_times",)),
        ):
            committed = {
                tp: getattr(meta, "offset", meta)
                for tp, meta in admin.list_group_offsets({group: None}).get(group, {}).items()
            }
            for family in families:
                topic = settings.topic(family)
                tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
                for tp, end in consumer.end_offsets(tps).items():
                    done = committed.get(tp)
                    backlog += max(end - (done if done is not None and done >= 0 else 0), 0)
    finally:
        consumer.close()
        admin.close()
    return JoinAccount(int(expected), int(without), int(incomplete), backlog)
