"""Accepted events into ClickHouse, exactly once.

How "nothing counted twice" holds, whatever happened before (a producer's duplicate send, a replay
of the same file, a worker killed between insert and commit, an insert whose reply was lost):

1. Within a flush, a repeated ``event_id`` is kept once.
2. Before inserting, :meth:`ClickHouseWriter.existing_ids` asks ClickHouse which of the batch's
   event ids it already holds, reading only the batch's event-time ranges (the tables are ordered by
   event time, so this touches a few granules, not the table). Those rows are dropped.
3. Every insert carries an ``insert_deduplication_token`` derived from its rows' event ids, so a
   retried insert after a timeout is discarded by ClickHouse itself.

How "nothing lost" holds on the way in:

- An insert touches at most :data:`MAX_DAYS_PER_INSERT` days of event time. ClickHouse refuses an
  insert block that spans more than ``max_partitions_per_insert_block`` (100) partitions, and the
  raw tables are partitioned by day: a replayed backlog of several years would otherwise fail.
- What the server says it wrote is checked against what was sent: fewer rows written than sent
  is accepted only if the lookup then finds every row stored (a deduplicated retry writes none);
  otherwise :class:`~dozor.errors.InsertNotStored` keeps the offsets uncommitted.
- Errors are typed (:func:`classify`): :class:`~dozor.errors.ClickHouseUnavailable` pauses and
  retries the whole flush; :class:`~dozor.errors.ClickHouseDataError` (the engine refused a value)
  splits the insert in halves until the rows that fail are found, which come back to the caller for
  the dead-letter topic while every other row is stored.

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
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from dozor.errors import ClickHouseDataError, ClickHouseUnavailable, InsertNotStored
from dozor.schemas import Event
from dozor.streams.metrics import (
    BATCH_ROWS,
    DUPLICATES,
    INSERT_SECONDS,
    LOOKUP_SECONDS,
    NOT_STORED,
    ROWS_WRITTEN,
)

__all__ = [
    "TableSpec",
    "TABLES",
    "Row",
    "PartitionBatch",
    "ClickHouseWriter",
    "StorageRefusal",
    "time_ranges",
    "classify",
    "DATA_ERROR_CODES",
    "MAX_DAYS_PER_INSERT",
]

#: Event times closer than this fall into one lookup range: fewer ranges, a little more read.
RANGE_GAP = dt.timedelta(seconds=2)
#: More ranges than this and the closest are merged: the query text stays small.
MAX_RANGES = 64
#: Days of event time one insert may span. ClickHouse refuses an insert block touching more than
#: ``max_partitions_per_insert_block`` (100) partitions; the raw tables are partitioned by day (UTC
#: or coarser), and 50 UTC days touch at most 51 days in any zone, well inside the limit.
MAX_DAYS_PER_INSERT = 50
#: How long to wait before retrying after ClickHouse was unavailable, if the error does not say.
RETRY_AFTER_S = 1.0

#: ClickHouse error codes that mean "these values cannot be stored", not "the server cannot serve":
#: parse and conversion failures, out-of-range values, constraint violations, too many partitions.
#: Retrying the same rows fails forever; splitting finds the rows at fault.
DATA_ERROR_CODES = frozenset(
    {
        6,    # CANNOT_PARSE_TEXT
        26,   # CANNOT_PARSE_QUOTED_STRING
        27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,   # ATTEMPT_TO_READ_AFTER_EOF
        33,   # CANNOT_READ_ALL_DATA
        38,   # CANNOT_PARSE_DATE
        41,   # CANNOT_PARSE_DATETIME
        53,   # TYPE_MISMATCH
        69,   # ARGUMENT_OUT_OF_BOUND
        70,   # CANNOT_CONVERT_TYPE
        72,   # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        130,  # CANNOT_READ_ARRAY_FROM_TEXT
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        252,  # TOO_MANY_PARTS (per insert block: a smaller insert goes through)
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        407,  # DECIMAL_OVERFLOW
        467,  # CANNOT_PARSE_BOOL
        469,  # VIOLATED_CONSTRAINT
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)  # fmt: skip


@dataclass(frozen=True)
class TableSpec:
    """Where one family's events go: the table and the event fields stored, in column order."""

    table: str
    fields: tuple[str, ...]
    #: Columns the worker derives (:meth:`dozor.enrich.Enricher.extras`), after the event's own.
    extra: tuple[str, ...] = ()
    #: Store event_time only to the local day (the midnight of the place's zone, dozor.localtime),
    #: not the moment.
    day_only: bool = False
    #: For a ReplacingMergeTree keeping the highest ``revision`` per these columns: a stored row
    #: may be merged away by a later revision, which then accounts for it (``dozor verify``).
    replaced_by_revision_of: tuple[str, ...] = ()
    #: ``(key column, column, value)``: at most one stored row per key among the rows whose column
    #: has that value — an incident opens once, however many messages say so under other ids
    #: (two sources, an export and its correction). The roll-ups then count incidents, not messages.
    once_per: tuple[str, str, str] | None = None

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
         "city", "district", "lat", "lon", "opened_at", "source_code", "source_area"),
        once_per=("incident_id", "status", "opened"),
    ),
    "dispatches": TableSpec(
        "dispatch_events",
        ("event_id", "event_time", "dispatch_id", "incident_id", "unit_id", "crew_type", "status",
         "city", "district"),
    ),
    # Integrity reports to the day only: the moment of a report, with its region and service,
    # could point at the officer who made it; the integrity unit reads them by region and month.
    "integrity": TableSpec(
        "integrity_reports", ("event_id", "event_time", "region", "kind", "service"), day_only=True
    ),
    # A 102 call's moments: the caller is not in them, the operator only as a position.
    "calls": TableSpec(
        "call_events",
        ("event_id", "event_time", "call_id", "status", "channel", "city", "district", "offered_at",
         "position_id", "incident_id"),
    ),
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
    "city_figures": TableSpec(
        "city_figures",
        ("event_id", "event_time", "city", "minute", "revision", "violations", "incidents_opened",
         "responses_closed", "response_p50_s", "response_p90_s", "late_events"),
        ("digest", "body"),
        replaced_by_revision_of=("city", "minute"),
    ),
}  # fmt: skip


@dataclass(slots=True)
class Row:
    """One accepted event, ready for its table; ``ts`` is its event time as a POSIX timestamp.

    ``source`` is the Kafka record it came from (topic, partition, offset, key, value), kept so that
    a row ClickHouse refuses can go to the dead-letter topic as it arrived.
    """

    event_id: uuid.UUID
    ts: float
    values: list[object]
    source: object = None


@dataclass(frozen=True, slots=True)
class StorageRefusal:
    """A row ClickHouse would not store, and why (for the dead-letter record)."""

    row: Row
    error: ClickHouseDataError


def classify(exc: BaseException) -> ClickHouseDataError | ClickHouseUnavailable:
    """Sort a failed insert: the data's fault (split and dead-letter) or the server's (wait, retry).

    Anything unknown counts as unavailability: retrying an insert that could have succeeded costs
    time, dead-lettering good rows would lose them.
    """
    if isinstance(exc, ClickHouseDataError | ClickHouseUnavailable):
        return exc
    code = getattr(exc, "code", None)
    if isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError) and code in DATA_ERROR_CODES:
        return ClickHouseDataError(str(exc), code)
    return ClickHouseUnavailable(f"{type(exc).__name__}: {exc}", RETRY_AFTER_S)


@dataclass
class PartitionBatch:
    """What was read from one topic-partition since the last flush."""

    topic: str
    partition: int
    family: str
    first_offset: int = -1
    last_offset: int = -1
    rows: list[Row] = field(default_factory=list)
    #: Messages refused by validation (``dozor.streams.deadletter.Rejected``), bound for the DLQ.
    rejected: list = field(default_factory=list)

    def cover(self, offset: int) -> None:
        """Extend the range to ``offset`` (every message read counts, valid or dead-lettered)."""
        if self.first_offset < 0:
            self.first_offset = offset
        self.last_offset = offset


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

    def _once_per_key(self, rows: list[Row]) -> list[Row]:
        """``rows`` without those whose key (:attr:`TableSpec.once_per`) is stored already or came
        earlier in the batch. Looked up like the event ids, by the rows' event-time ranges: a second
        message about the same opening carries the same opening time."""
        assert self.spec.once_per is not None
        key_col, col, value = self.spec.once_per
        k, c = self.spec.fields.index(key_col), self.spec.fields.index(col)
        marked = [r for r in rows if r.values[c] == value]
        if not marked:
            return rows
        ranges = time_ranges([r.ts for r in marked])
        ms = 0.001
        where = " OR ".join(
            f"(event_time >= {_literal(a - ms)} AND event_time <= {_literal(b + ms)})" for a, b in ranges
        )
        # Identifiers are the spec's own; the value and keys are bound parameters.
        sql = (
            f"SELECT DISTINCT {key_col} FROM {self.spec.table} WHERE {col} = {{v:String}} "  # noqa: S608
            f"AND {key_col} IN {{keys:Array(String)}} AND ({where})"
        )
        try:
            stored = {
                row[0]
                for row in self.client.query(
                    sql, parameters={"v": value, "keys": sorted({str(r.values[k]) for r in marked})}
                ).result_rows
            }
        except Exception as e:
            raise ClickHouseUnavailable(
                f"opening lookup in {self.spec.table} failed: {e}", RETRY_AFTER_S
            ) from e
        seen: set[str] = set(stored)
        out = []
        for r in rows:
            if r.values[c] == value:
                key = str(r.values[k])
                if key in seen:
                    continue
                seen.add(key)
            out.append(r)
        return out

    def write(self, batches: list[PartitionBatch]) -> tuple[int, list[StorageRefusal]]:
        """Insert the batches' rows that are new; safe to call again with the same batches.

        Returns the rows written and the rows ClickHouse refused (for the dead-letter topic). Raises
        :class:`~dozor.errors.ClickHouseUnavailable` (or its :class:`~dozor.errors.InsertNotStored`)
        when the caller must keep the batch and retry.
        """
        candidates: dict[uuid.UUID, Row] = {}
        for b in batches:
            for r in b.rows:
                candidates.setdefault(r.event_id, r)  # the first copy wins; later ones are repeats
        if not candidates:
            return 0, []
        try:
            existing = self.existing_ids(list(candidates.values()))
        except Exception as e:  # a lookup that failed is never the data's fault: wait and retry
            raise ClickHouseUnavailable(
                f"duplicate lookup in {self.spec.table} failed: {e}", RETRY_AFTER_S
            ) from e
        fresh = [r for eid, r in candidates.items() if eid not in existing]
        if self.spec.once_per is not None:
            fresh = self._once_per_key(fresh)
        repeats = sum(len(b.rows) for b in batches) - len(fresh)
        if repeats:
            DUPLICATES.labels(self.spec.table).inc(repeats)
        if not fresh:
            return 0, []
        written, refused = 0, []
        for chunk in _by_days(fresh):
            n, bad = self._insert(chunk)
            written += n
            refused += bad
        return written, refused

    def _insert(self, rows: list[Row]) -> tuple[int, list[StorageRefusal]]:
        """One insert of ``rows``; on a data error, each half on its own, down to the rows at fault."""
        try:
            self._send(rows)
            return len(rows), []
        except ClickHouseDataError as e:
            if len(rows) == 1:
                return 0, [StorageRefusal(rows[0], e)]
        half = len(rows) // 2
        a, bad_a = self._insert(rows[:half])
        b, bad_b = self._insert(rows[half:])
        return a + b, bad_a + bad_b

    def _send(self, rows: list[Row]) -> None:
        # The token is the rows' ids: a retry of the same rows is discarded by ClickHouse, and
        # different rows never share a token (one derived from topic offsets collided when a topic
        # was recreated and its offsets began again at 0, and the server dropped the new rows).
        digest = hashlib.blake2b(b"".join(r.event_id.bytes for r in rows), digest_size=16).hexdigest()
        token = f"{self.spec.table}:{digest}"
        try:
            block = orjson.dumps([r.values for r in rows])[1:-1]
        except (orjson.JSONEncodeError, TypeError) as e:  # e.g. an integer beyond 64 bits
            raise ClickHouseDataError(f"cannot serialise the row for ClickHouse: {e}", None) from e
        t0 = time.perf_counter()
        try:
            summary = self.client.raw_insert(
                self.spec.table,
                column_names=list(self.spec.columns),
                insert_block=block,
                settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
                fmt="JSONCompactEachRow",
            )
        except Exception as e:
            raise classify(e) from e
        INSERT_SECONDS.labels(self.spec.table).observe(time.perf_counter() - t0)
        written = getattr(summary, "written_rows", None)
        if written is not None and written < len(rows):
            # A deduplicated retry writes nothing and is fine; anything else is loss.
            stored = self.existing_ids(rows)
            missing = len(rows) - len(stored)
            if missing:
                NOT_STORED.labels(self.spec.table).inc(missing)
                raise InsertNotStored(
                    f"ClickHouse answered an insert of {len(rows)} rows into {self.spec.table} with "
                    f"written_rows={written}, and {missing} of them are not stored; not committing",
                    RETRY_AFTER_S,
                )
        BATCH_ROWS.labels(self.spec.table).observe(len(rows))
        ROWS_WRITTEN.labels(self.spec.table).inc(len(rows))


def _by_days(rows: list[Row]) -> list[list[Row]]:
    """``rows`` in inserts of at most :data:`MAX_DAYS_PER_INSERT` UTC days of event time each.

    A live batch spans seconds and stays whole (one pass for the bounds); a replayed backlog is
    grouped by day, oldest first.
    """
    lo = min(r.ts for r in rows)
    hi = max(r.ts for r in rows)
    if int(hi // 86400) - int(lo // 86400) < MAX_DAYS_PER_INSERT:
        return [rows]
    by_day: dict[int, list[Row]] = {}
    for r in rows:
        by_day.setdefault(int(r.ts // 86400), []).append(r)
    days = sorted(by_day)
    return [
        [r for d in days[i : i + MAX_DAYS_PER_INSERT] for r in by_day[d]]
        for i in range(0, len(days), MAX_DAYS_PER_INSERT)
    ]
