"""Accepted events into ClickHouse, exactly once.

How "nothing counted twice" holds, whatever happened before (a producer's duplicate send, a replay
of the same file, a worker killed between insert and commit, an insert whose reply was lost):

1. Within a flush, a repeated ``event_id`` is kept once.
2. Before inserting, :meth:`ClickHouseWriter.existing_ids` asks ClickHouse which of the batch's
   event ids it already holds, reading only the batch's event-time ranges (the tables are ordered by
   event time, so this touches a few granules, not the table). Those rows are dropped.
3. Every insert carries an ``insert_deduplication_token`` derived from the batch's partitions and
   offset ranges, so a retried insert after a timeout is discarded by ClickHouse itself.

Why this mechanism and not another (docs/guarantees.md has the long form): a faust table of seen ids
would need a changelog write per event and grows without bound (replays come days later); a
ReplacingMergeTree would leave duplicates until merges and break the aggregating views that keep
dashboards fast. The lookup stays correct for any delay between duplicates, with one read per flush.

It relies on one writer per event id at a time: producers key every family so that all copies of an
event land on one partition, and a partition has one owner in the consumer group.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import operator
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from clickhouse_connect.driver.client import Client

from dozor.schemas import Event
from dozor.streams.metrics import BATCH_ROWS, DUPLICATES, INSERT_SECONDS, LOOKUP_SECONDS, ROWS_WRITTEN

__all__ = ["TableSpec", "TABLES", "Row", "PartitionBatch", "ClickHouseWriter", "time_ranges"]

#: Event times closer than this fall into one lookup range: fewer ranges, a little more read.
RANGE_GAP = dt.timedelta(seconds=2)
#: More ranges than this and the closest are merged: the query text stays small.
MAX_RANGES = 64


@dataclass(frozen=True)
class TableSpec:
    """Where one family's events go: the table and the event fields stored, in column order."""

    table: str
    fields: tuple[str, ...]
    #: Columns the worker derives (:meth:`dozor.enrich.Enricher.extras`), after the event's own.
    extra: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.fields, *self.extra, "src_partition", "src_offset")

    @functools.cached_property
    def _values(self) -> Callable[[dict], tuple]:
        # One C-level itemgetter over the model's field dict instead of a getattr per field.
        # Every table stores several fields, so it always returns a tuple.
        return operator.itemgetter(*self.fields)

    @functools.cached_property
    def district_index(self) -> int | None:
        """Where the district is in a row, for the worker to put the resolved id there."""
        return self.fields.index("district") if "district" in self.fields else None

    def row(self, ev: Event, extras: list[object], partition: int, offset: int) -> list[object]:
        return [*self._values(ev.__dict__), *extras, partition, offset]


TABLES: dict[str, TableSpec] = {
    "violations": TableSpec(
        "violations",
        ("event_id", "event_time", "city", "district", "camera_id", "violation_type", "lat", "lon",
         "speed_kmh", "speed_limit_kmh", "plate_hash", "plate_masked"),
        ("fine_mci", "fine_kzt"),
    ),
    "incidents": TableSpec(
        "incident_events",
        ("event_id", "event_time", "incident_id", "status", "channel", "category", "priority",
         "city", "district", "lat", "lon", "opened_at"),
    ),
    "dispatches": TableSpec(
        "dispatch_events",
        ("event_id", "event_time", "dispatch_id", "incident_id", "unit_id", "crew_type", "status",
         "city", "district"),
    ),
    "integrity": TableSpec("integrity_reports", ("event_id", "event_time", "region", "kind", "service")),
    "response_times": TableSpec(
        "incident_responses",
        ("event_id", "event_time", "incident_id", "revision", "status", "city", "district", "priority",
         "category", "channel", "opened_at", "first_assigned_at", "first_on_scene_at", "closed_at",
         "time_to_assignment_s", "time_to_arrival_s", "time_to_closure_s", "arrival_target_s",
         "arrived_within_target"),
    ),
    "alerts": TableSpec(
        "alerts",
        ("event_id", "event_time", "kind", "city", "district", "incident_id", "priority", "waited_s",
         "target_s", "observed", "baseline", "detail"),
    ),
}  # fmt: skip


@dataclass(slots=True)
class Row:
    """One accepted event, ready for its table; ``ts`` is its event time as a POSIX timestamp."""

    event_id: uuid.UUID
    ts: float
    values: list[object]


@dataclass
class PartitionBatch:
    """What was read from one topic-partition since the last flush."""

    topic: str
    partition: int
    family: str
    first_offset: int = -1
    last_offset: int = -1
    rows: list[Row] = field(default_factory=list)
    #: Messages refused by validation (``dozor.streams.ingest.Rejected``), bound for the DLQ.
    rejected: list = field(default_factory=list)

    def cover(self, offset: int) -> None:
        """Extend the range to ``offset`` (every message read counts, valid or dead-lettered)."""
        if self.first_offset < 0:
            self.first_offset = offset
        self.last_offset = offset

    @property
    def span(self) -> str:
        return f"{self.topic}:{self.partition}:{self.first_offset}-{self.last_offset}"


def time_ranges(times: Iterable[float]) -> list[tuple[float, float]]:
    """Cover ``times`` (POSIX timestamps) with few closed ranges: merge neighbours closer than
    :data:`RANGE_GAP`.

    Timestamps, not datetimes: comparing two aware datetimes calls ``utcoffset`` on both, and
    sorting a batch of them cost more than validating it. A double holds today's timestamps to a
    quarter of a microsecond, so nothing is lost.
    """
    ts = sorted(times)
    if not ts:
        return []
    gap = RANGE_GAP.total_seconds()
    ranges = [[ts[0], ts[0]]]
    for t in ts[1:]:
        if t - ranges[-1][1] <= gap:
            ranges[-1][1] = t
        else:
            ranges.append([t, t])
    if len(ranges) > MAX_RANGES:
        # Keep the widest gaps as the boundaries and close the rest: one sort, not a rescan per
        # merge (a replayed day spreads one batch over thousands of sparse ranges).
        gaps = sorted(range(len(ranges) - 1), key=lambda i: ranges[i + 1][0] - ranges[i][1])
        cuts = sorted(gaps[-(MAX_RANGES - 1) :])
        merged, start = [], 0
        for i in [*cuts, len(ranges) - 1]:
            merged.append([ranges[start][0], ranges[i][1]])
            start = i + 1
        ranges = merged
    return [(a, b) for a, b in ranges]


def _literal(ts: float) -> str:
    """A timestamp as a DateTime64 literal, exact to the microsecond."""
    return f"fromUnixTimestamp64Micro({round(ts * 1_000_000)}, 'UTC')"


#: Settings of every insert. Times arrive as ISO 8601 with a zone offset (orjson's form), which
#: ClickHouse's default parser refuses.
INSERT_SETTINGS = {"date_time_input_format": "best_effort"}


class ClickHouseWriter:
    """Deduplicating inserts into one table.

    Rows go as JSONCompactEachRow, serialised by one ``orjson.dumps`` call per batch, through
    clickhouse-connect's ``raw_insert``. Its ``insert`` builds the Native format in Python (a value
    at a time for UUIDs and times: about a tenth of the worker's CPU in the profile); the JSON form
    costs about a microsecond a row here and leaves the parsing to ClickHouse's C++, in a process
    with a core to spare (benchmarks/results/pipeline.txt). The rows are joined with commas, not wrapped in an
    array: that is how ClickHouse reads several rows of this format from one body.
    """

    def __init__(self, client: Client, spec: TableSpec) -> None:
        self.client = client
        self.spec = spec

    def existing_ids(self, rows: list[Row]) -> set[uuid.UUID]:
        """Event ids among ``rows`` that the table already holds (read by event-time ranges)."""
        if not rows:
            return set()
        ranges = time_ranges([r.ts for r in rows])
        # Stored times are rounded to milliseconds; a millisecond of slack on each side keeps a
        # stored copy inside the range it was read for.
        ms = 0.001
        where = " OR ".join(
            f"(event_time >= {_literal(a - ms)} AND event_time <= {_literal(b + ms)})" for a, b in ranges
        )
        # Literals are built from validated event times, never from user text.
        # Ids come back as 128-bit integers, equal to ``uuid.UUID.int``: a UUID column costs a
        # Python UUID object per row, and ``str(uuid)`` on the batch's side cost 1.4 us an event.
        sql = f"SELECT toUInt128(event_id) FROM {self.spec.table} WHERE {where}"  # noqa: S608
        t0 = time.perf_counter()
        columns = self.client.query(sql).result_columns
        LOOKUP_SECONDS.labels(self.spec.table).observe(time.perf_counter() - t0)
        if not columns or not columns[0]:
            return set()
        stored = set(columns[0])
        return {r.event_id for r in rows if r.event_id.int in stored}

    def write(self, batches: list[PartitionBatch]) -> int:
        """Insert the batches' rows that are new; safe to call again with the same batches."""
        candidates: dict[uuid.UUID, Row] = {}
        for b in batches:
            for r in b.rows:
                candidates.setdefault(r.event_id, r)  # the first copy wins; later ones are repeats
        if not candidates:
            return 0
        existing = self.existing_ids(list(candidates.values()))
        fresh = [r.values for eid, r in candidates.items() if eid not in existing]
        repeats = sum(len(b.rows) for b in batches) - len(fresh)
        if repeats:
            DUPLICATES.labels(self.spec.table).inc(repeats)
        if not fresh:
            return 0
        spans = ",".join(sorted(b.span for b in batches))
        token = f"{self.spec.table}:{hashlib.sha1(spans.encode()).hexdigest()}"
        t0 = time.perf_counter()
        self.client.raw_insert(
            self.spec.table,
            column_names=list(self.spec.columns),
            insert_block=orjson.dumps(fresh)[1:-1],
            settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
            fmt="JSONCompactEachRow",
        )
        INSERT_SECONDS.labels(self.spec.table).observe(time.perf_counter() - t0)
        BATCH_ROWS.labels(self.spec.table).observe(len(fresh))
        ROWS_WRITTEN.labels(self.spec.table).inc(len(fresh))
        return len(fresh)
