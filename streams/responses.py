"""The join of incidents and dispatches: response times per incident, and incidents left waiting.

A faust agent reads both topics. They share the key (incident id) and the partition count, so
an incident's events and its units' dispatch steps arrive on the same partition number and faust's
assignor gives that partition of both topics to one worker (co-partitioning). The join state is a
faust Table keyed by incident id, backed by a changelog topic: a worker killed mid-join rebuilds
the state from the changelog before it reads on.

Per incident the state is a :class:`~dozor.streams.join_state.JoinState`: the opening time and
attributes, the first assignment and the first arrival on scene (earliest event time, so
out-of-order steps change nothing), the closure, and digests of the events merged. The rules live
in ``join_state.py`` as plain functions; this module is the agent around them: reading, the
partition's event time, the waiting and expiry checks, and publishing.

The join parses each event again with the ingest's validator (``parse_event``), because it reads
the same raw topics as the ingest, in parallel, not a validated stream: there is no verdict to
reuse. The same function decides for both, so an event the ingest dead-letters is one the join
skips.

Outputs (faust publishes them before it commits the offsets of the event that caused them):

- ``response_times.v2`` as soon as a unit is assigned (``status`` ``open``: a call assigned and
  never reached still has its time to assignment), again when one is on scene, and at the closure
  or cancellation; ``response_times.v1`` (kept for the consumers built on it) at the
  closure only. On both, a later step that changes the figures publishes ``revision`` + 1. An
  event merged before (a replay after a crash) publishes the current revisions again, with the
  same ``event_id``s: a message whose state reached the changelog but not the topic is never
  lost, and a repeat is recognisable. The ingest stores v2.
- ``alerts.v1`` (``incident_waiting``) once the incident's priority target for the first arrival
  passes in *event time* with no unit on scene. The partition's event time is the newest event
  time read from both of its topics (the lesser of the two). Event time, not the wall clock, so a
  replayed day raises the alerts it raised live; a partition whose dispatches topic is silent
  raises none until it speaks (a known limit, documented in the README's output topics).

The table keeps a live incident until the partition's event time passes the incident's newest event
by ``DOZOR_JOIN_RETENTION_HOURS`` (24 h) after it closed; a live event older than that is not joined
(it could only make a partial revision of an incident already forgotten) and counts as
``dozor_join_events_total{family="too_late"}``.

History (``dozor replay --historical``) never meets that clock: imports come in any order of time —
a 2021 export after a 2024 one, beside the live feed — and every historical event is joined. A
historical incident leaves the table after the retention of *processing* time without an event,
finished or not, and a new state for the same incident (the call in a later export) numbers its
revisions above every earlier one (``join_state.history_base``), so the highest revision is the
newest record. Historical events do not move the partition's event time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import faust

from dozor.enrich import Enricher
from dozor.names import JOIN_TABLE
from dozor.schemas import (
    ENGINE_EARLIEST,
    HISTORICAL_HEADER,
    RESPONSE_TIMES_V1,
    Alert,
    DispatchEvent,
    IncidentEvent,
    InvalidEvent,
    ResponseTime,
    ResponseTimeV2,
    is_historical,
    parse_event,
)
from dozor.settings import Settings
from dozor.streams.deadletter import Rejected, deadletter_record
from dozor.streams.join_state import (
    JoinState,
    arrival_deadline,
    finished,
    history_base,
    merge,
    overdue,
    response_record,
    revise,
    seen,
    to_ms,
    waiting,
)
from dozor.streams.metrics import JOIN_EVENTS, JOIN_EXPIRED, JOIN_OUTPUTS, JOIN_STATE

__all__ = ["install_join", "guarded", "NAMESPACE", "DueHeaps", "PartitionClock"]

log = logging.getLogger("dozor.join")

#: uuid5 namespace of derived event ids: the same incident and revision always get the same id.
NAMESPACE = uuid.UUID("6f1d3c8e-5a0b-4f0e-9d3e-0b7c2f1a9e44")


class DueHeaps:
    """Incident ids due at a time (ms), per partition: the waiting checks, and the expiries."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}

    def push(self, partition: int, due_ms: int, incident_id: str) -> None:
        heapq.heappush(self._heaps.setdefault(partition, []), (due_ms, incident_id))

    def pop_due(self, partition: int, now_ms: int) -> Iterator[tuple[int, str]]:
        """The entries due by ``now_ms``, earliest first, each removed as it is yielded."""
        heap = self._heaps.get(partition)
        while heap and heap[0][0] <= now_ms:
            yield heapq.heappop(heap)

    def clear(self) -> None:
        self._heaps.clear()


class PartitionClock:
    """A partition's event time: the newest event time read, the lesser over the joined topics.

    faust reads the incidents and the dispatches of a partition as separate fetches, so one
    topic can run ahead; a unit's arrival must not be judged missing before it is read.
    """

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics
        self._newest: dict[tuple[str, int], int] = {}

    def advance(self, topic: str, partition: int, t_ms: int) -> None:
        if t_ms > self._newest.get((topic, partition), 0):
            self._newest[(topic, partition)] = t_ms

    def now(self, partition: int) -> int:
        return min(self._newest.get((topic, partition), 0) for topic in self._topics)


#: How long a commit waits for the join table's changelog writes before it gives up (and fails).
CHANGELOG_ACK_TIMEOUT_S = 60.0


def commit_after_changelog(app: faust.App, table: faust.Table) -> None:
    """Hold every offset commit until the table's changelog writes are acknowledged by the broker.

    faust writes a table change with ``send_soon`` into its own producer buffer, and flushes that
    buffer before it commits the source offsets; but ``ProducerBuffer.flush`` returns as soon as
    100 ms pass without a message leaving the buffer (faust-streaming 0.11 to 0.15,
    ``faust/transport/producer.py``), e.g. while the buffer's task waits for the metadata of a
    changelog partition on a busy machine. The offset of an event could then be committed while its
    state change was still in the buffer, and a ``kill -9`` lost that change for good: in CI, one
    incident of 688 came back without its first assignment. Each changelog write returns a future
    that resolves on the broker's acknowledgement; the commit now waits for all of them, and fails
    (the offsets stay uncommitted, the events are read again) if one failed or took a minute.
    """
    pending: set[asyncio.Future] = set()
    send_changelog = table.send_changelog

    def tracked_send_changelog(*args: Any, **kwargs: Any) -> Any:
        fut = send_changelog(*args, **kwargs)
        pending.add(fut)
        fut.add_done_callback(pending.discard)
        return fut

    producer = app.producer
    flush = producer.flush

    async def flush_then_wait_for_changelog() -> None:
        await flush()
        if not pending:
            return
        waiting = set(pending)
        done, late = await asyncio.wait(waiting, timeout=CHANGELOG_ACK_TIMEOUT_S)
        if late:
            raise RuntimeError(f"{len(late)} join changelog writes unacknowledged after "
                               f"{CHANGELOG_ACK_TIMEOUT_S:.0f} s; not committing")  # fmt: skip
        failed = [f for f in done if f.cancelled() or f.exception() is not None]
        if failed:
            cause = None if failed[0].cancelled() else failed[0].exception()
            raise RuntimeError(f"{len(failed)} join changelog writes failed; not committing") from cause

    table.send_changelog = tracked_send_changelog  # type: ignore[method-assign]
    producer.flush = flush_then_wait_for_changelog  # type: ignore[method-assign]


async def guarded(
    handle: Callable[[Any], Awaitable[None]], event: Any, send: Callable[..., Awaitable[Any]]
) -> bool:
    """Run ``handle(event)``; if it fails, dead-letter the event (reason ``processing``) and go on.

    One event must never stop the join: an exception out of a faust agent restarts it, and the same
    event comes first again after the restart, so one poison would stall its partition for good
    (a ``0001-01-01`` opened_at did exactly that, before times were bounded at the door). The
    event is still stored by the ingest, which validates it on its own; only its join is lost, and
    the dead letter says so. Returns whether the event was handled.
    """
    try:
        await handle(event)
        return True
    except Exception as e:
        msg = event.message
        JOIN_EVENTS.labels("failed").inc()
        log.exception(
            "join failed on %s[%d]@%d; dead-lettered, going on", msg.topic, msg.partition, msg.offset
        )
        rejected = Rejected(
            msg.topic, msg.partition, msg.offset, msg.key, event.value, "processing",
            f"join: {type(e).__name__}: {e}",
        )  # fmt: skip
        value, headers = deadletter_record(rejected, dt.datetime.now(dt.UTC).isoformat().encode())
        await send(key=msg.key, value=value, headers=headers)
        return False


def _wall_ms() -> int:
    return int(time.time() * 1000)


def install_join(app: faust.App, settings: Settings, enricher: Enricher) -> faust.Table:
    """Add the join agent and its table to ``app``; returns the table (tests and status read it)."""
    targets_s = {int(p): m * 60 for p, m in settings.arrival_target_minutes.items()}
    family_of = {settings.topic("incidents"): "incidents", settings.topic("dispatches"): "dispatches"}
    table = app.Table(
        JOIN_TABLE,
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        value_type=JoinState,
        help="Join state per incident id: opening, first assignment, first arrival, closure.",
    )
    commit_after_changelog(app, table)
    source = app.topic(*family_of, key_serializer="raw", value_serializer="raw")
    responses = {
        version: app.topic(name, key_serializer="raw", value_serializer="raw")
        for version, name in (
            (2, settings.topic("response_times")),
            (1, RESPONSE_TIMES_V1.topic(settings.topic_prefix)),
        )
    }
    alerts = app.topic(settings.topic("alerts"), key_serializer="raw", value_serializer="raw")
    deadletters = app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw")
    due_arrival = DueHeaps()
    # A closed incident (or a state that never saw its opening) leaves the table once the
    # partition's event time passes its newest event by the retention, so the table and its
    # changelog stay the size of a day's work.
    due_expiry = DueHeaps()
    # History is not judged by the live clock (an import of 2021 after one of 2024, or beside the
    # live feed, would be "too late"): a historical incident leaves the table after the retention
    # of processing time without an event, finished or not (a log without closure times).
    due_expiry_history = DueHeaps()
    retention_ms = int(settings.join_retention_hours * 3_600_000)
    clock = PartitionClock(list(family_of))
    # Alerts raised by this process. Not in the table on purpose: after a crash the waiting checks
    # are re-armed and an alert is raised again (same event_id) rather than risk one recorded as
    # raised in the changelog but never published.
    alerted: set[str] = set()
    # When each historical incident was last touched (processing time, ms): its expiry runs from it.
    touched: dict[str, int] = {}

    @table.on_recover
    async def _rebuild_waiting() -> None:
        """After recovery from the changelog, re-arm the waiting checks of incidents still open."""
        due_arrival.clear()
        due_expiry.clear()
        due_expiry_history.clear()
        alerted.clear()
        n = 0
        wall = _wall_ms()
        for key, s in table.items():
            if s.historical:
                due_expiry_history.push(s.partition, wall + retention_ms, key)
                continue
            if waiting(s):
                due_arrival.push(s.partition, arrival_deadline(s, targets_s), key)
                n += 1
            if finished(s):
                due_expiry.push(s.partition, s.last + retention_ms, key)
        log.info("join state recovered: %d incidents, %d waiting for a unit", len(table), n)

    async def publish_response(iid: str, s: JoinState, version: int) -> None:
        revision = s.v2_revision if version == 2 else s.revision
        rec = response_record(iid, s, revision, targets_s, version)
        # v1's ids are those it always had; v2's have a namespace of their own.
        name = f"response:{iid}:{revision}" if version == 1 else f"response.v2:{iid}:{revision}"
        rec["event_id"] = str(uuid.uuid5(NAMESPACE, name))
        model = ResponseTime if version == 1 else ResponseTimeV2
        # History stays history downstream: the ingest accepts an old record only with the mark.
        headers = [(HISTORICAL_HEADER, b"1")] if s.historical else None
        value = model.model_validate(rec).to_json()
        await responses[version].send(key=iid.encode(), value=value, headers=headers)
        JOIN_OUTPUTS.labels(f"response_times.v{version}").inc()

    async def check_waiting(partition: int, now_ms: int) -> None:
        for deadline, iid in due_arrival.pop_due(partition, now_ms):
            s = table.get(iid)
            if s is None or iid in alerted or not overdue(s, deadline):
                continue
            target = targets_s[s.priority]
            alert = Alert(
                event_id=uuid.uuid5(NAMESPACE, f"waiting:{iid}"),
                event_time=dt.datetime.fromtimestamp(deadline / 1000, dt.UTC),
                kind="incident_waiting", city=s.city, district=s.district, incident_id=iid,
                priority=s.priority, waited_s=float(target), target_s=target,
                detail=f"priority {s.priority} incident without a unit on scene after {target // 60} min",
            )  # fmt: skip
            await alerts.send(key=s.city.encode(), value=alert.to_json())
            JOIN_OUTPUTS.labels("alerts").inc()
            alerted.add(iid)

    def expire(partition: int, now_ms: int) -> None:
        """Drop incidents done with from the table (inside the agent: faust writes the tombstone)."""
        for _, iid in due_expiry.pop_due(partition, now_ms):
            s = table.get(iid)
            if s is None or s.historical or not finished(s) or s.last + retention_ms > now_ms:
                continue  # gone already, reopened, history, or touched since (a later entry is queued)
            del table[iid]
            JOIN_EXPIRED.inc()
        wall = _wall_ms()
        for due, iid in due_expiry_history.pop_due(partition, wall):
            s = table.get(iid)
            if s is None or not s.historical or touched.get(iid, 0) + retention_ms > due:
                continue
            del table[iid]
            touched.pop(iid, None)
            JOIN_EXPIRED.inc()

    async def handle(event: faust.EventT) -> None:
        """Fold one incident or dispatch event into its incident and publish what follows."""
        msg = event.message
        family = family_of[msg.topic]
        historical = is_historical(msg.headers)
        try:
            clock_now = dt.datetime.now(dt.UTC)
            oldest = ENGINE_EARLIEST if historical else settings.earliest_event
            retained = settings.retained_since(family, clock_now)
            ev = parse_event(family, event.value or b"", clock_now, settings.unit_id_re, oldest, retained)
        except InvalidEvent:
            return  # the ingest service dead-letters it
        assert isinstance(ev, IncidentEvent | DispatchEvent)
        t = to_ms(ev.event_time)
        if not historical and t + retention_ms < clock.now(msg.partition):
            # Older than the retention: its incident may have left the table, and joining it
            # to a fresh state would publish a partial revision. Stored raw by the ingest.
            # History is never judged by this clock (see due_expiry_history).
            JOIN_EVENTS.labels("too_late").inc()
            return
        JOIN_EVENTS.labels(family).inc()
        iid = ev.incident_id
        before = table.get(iid)
        if before is None and historical:
            base = history_base(_wall_ms() / 1000)
            before = JoinState(revision=base, v2_revision=base)
        s = merge(before, ev, enricher.district(ev), msg.partition, historical)
        newly_open = (before is None or before.opened is None) and s.opened is not None
        if newly_open and s.priority is not None and not s.historical:
            # Armed even if a unit is already on scene: whether it came in time is decided
            # when the deadline passes (an incident learnt of late may have waited too long).
            due_arrival.push(msg.partition, arrival_deadline(s, targets_s), iid)
        s, publish = revise(iid, s, seen(before, ev), targets_s)
        table[iid] = s
        if s.historical:
            touched[iid] = wall = _wall_ms()
            due_expiry_history.push(msg.partition, wall + retention_ms, iid)
        elif finished(s):
            due_expiry.push(msg.partition, s.last + retention_ms, iid)
        for version in publish:
            await publish_response(iid, s, version)
        if not historical:
            clock.advance(msg.topic, msg.partition, t)
        watermark = clock.now(msg.partition)
        await check_waiting(msg.partition, watermark)
        expire(msg.partition, watermark)
        JOIN_STATE.set(len(table))

    @app.agent(source)
    async def join(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(handle, event, deadletters.send)

    return table
