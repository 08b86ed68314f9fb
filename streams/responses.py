"""The join of incidents and dispatches: response times per incident, and incidents left waiting.

A faust agent reads both topics. They share the key (incident id) and the partition count, so
an incident's events and its units' dispatch steps arrive on the same partition number and faust's
assignor gives that partition of both topics to one worker (co-partitioning). The join state is a
faust Table keyed by incident id, backed by a changelog topic: a worker killed mid-join rebuilds
the state from the changelog before it reads on.

Per incident the state keeps the opening time and attributes, the first assignment and the first
arrival on scene (earliest event time, so out-of-order steps change nothing), the closure, and the
ids of the events merged. Every merge is idempotent (min, max, set union), which is what makes
at-least-once processing safe: a batch read again after a crash changes nothing.

Outputs (faust publishes them before it commits the offsets of the event that caused them):

- ``response_times.v1`` when the incident is closed or cancelled; a later step that changes the
  figures publishes ``revision`` + 1. An event merged before (a replay after a crash) publishes the
  current revision again, with the same ``event_id``: a message whose state reached the changelog
  but not the topic is never lost, and a repeat is recognisable.
- ``alerts.v1`` (``incident_waiting``) once the incident's priority target for the first arrival
  passes in *event time* with no unit on scene. The partition's event time is the newest event
  time read from both of its topics (the lesser of the two). Event time, not the wall clock, so a
  replayed day raises the alerts it raised live; a partition whose dispatches topic is silent
  raises none until it speaks (a known limit, documented in the README's output topics).

The table keeps an incident until the partition's event time passes the incident's newest event by
``DOZOR_JOIN_RETENTION_HOURS`` (24 h) after it closed; an event older than that is not joined (it
could only make a partial revision of an incident already forgotten) and counts as
``dozor_join_events_total{family="too_late"}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import heapq
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from dozor.enrich import Enricher
from dozor.schemas import Alert, DispatchEvent, IncidentEvent, InvalidEvent, ResponseTime, parse_event
from dozor.settings import JOIN_TABLE, Settings
from dozor.streams.deadletter import Rejected, deadletter_record
from dozor.streams.metrics import JOIN_EVENTS, JOIN_EXPIRED, JOIN_OUTPUTS, JOIN_STATE

__all__ = ["install_join", "response_record", "guarded", "NAMESPACE"]

log = logging.getLogger("dozor.join")

#: uuid5 namespace of derived event ids: the same incident and revision always get the same id.
NAMESPACE = uuid.UUID("6f1d3c8e-5a0b-4f0e-9d3e-0b7c2f1a9e44")

_TERMINAL = ("closed", "cancelled")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ms(t: dt.datetime) -> int:
    """Milliseconds since the epoch, truncated: ClickHouse's precision, and exact in JSON."""
    return (t - _EPOCH) // dt.timedelta(milliseconds=1)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def _secs(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else (b - a) / 1000


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def merge(state: dict[str, Any] | None, ev: IncidentEvent | DispatchEvent, district: str) -> dict[str, Any]:
    """Fold one event into an incident's state; idempotent and independent of arrival order."""
    s: dict[str, Any] = dict(state) if state else {"seen": [], "rev": 0, "digest": None}
    t = _ms(ev.event_time)
    if isinstance(ev, IncidentEvent):
        s.update(city=ev.city, district=district or s.get("district", ""), priority=ev.priority,
                 category=ev.category, channel=ev.channel)  # fmt: skip
        s["opened"] = _min(s.get("opened"), _ms(ev.opened_at))
        if ev.status in _TERMINAL and (s.get("end") is None or t < s["end"]):
            s["end"], s["end_status"] = t, ev.status
    else:
        s.setdefault("city", ev.city)
        if not s.get("district"):
            s["district"] = district
        if ev.status == "assigned":
            s["assigned"] = _min(s.get("assigned"), t)
        elif ev.status == "on_scene":
            s["on_scene"] = _min(s.get("on_scene"), t)
    s["last"] = max(s.get("last", t), t)
    eid = str(ev.event_id)
    if eid not in s["seen"]:
        s["seen"] = [*s["seen"], eid]
    return s


def response_record(incident_id: str, s: dict[str, Any], revision: int, targets_s: dict[int, int]) -> dict:
    """The response_times.v1 message of a closed incident (without event_id)."""
    target = targets_s[s["priority"]]
    arrival = _secs(s["opened"], s.get("on_scene"))
    return {
        "schema_version": 1,
        "event_time": _iso(s["end"]),
        "incident_id": incident_id,
        "revision": revision,
        "status": s["end_status"],
        "city": s["city"],
        "district": s.get("district", ""),
        "priority": s["priority"],
        "category": s["category"],
        "channel": s["channel"],
        "opened_at": _iso(s["opened"]),
        "first_assigned_at": _iso(s.get("assigned")),
        "first_on_scene_at": _iso(s.get("on_scene")),
        "closed_at": _iso(s["end"]),
        "time_to_assignment_s": _secs(s["opened"], s.get("assigned")),
        "time_to_arrival_s": arrival,
        "time_to_closure_s": _secs(s["opened"], s["end"]),
        "arrival_target_s": target,
        "arrived_within_target": None if arrival is None else arrival <= target,
    }


def _complete(s: dict[str, Any]) -> bool:
    return s.get("opened") is not None and s.get("end") is not None and s.get("priority") is not None


def _finished(s: dict[str, Any]) -> bool:
    """Closed, or never opened (steps of an incident whose events were all rejected)."""
    return s.get("end") is not None or s.get("opened") is None


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


def install_join(app: faust.App, settings: Settings, enricher: Enricher) -> faust.Table:
    """Add the join agent and its table to ``app``; returns the table (tests and status read it)."""
    targets_s = {int(p): m * 60 for p, m in settings.arrival_target_minutes.items()}
    family_of = {settings.topic("incidents"): "incidents", settings.topic("dispatches"): "dispatches"}
    table = app.Table(
        JOIN_TABLE,
        default=None,
        partitions=settings.topic_partitions,
        key_type=str,
        help="Join state per incident id: opening, first assignment, first arrival, closure.",
    )
    commit_after_changelog(app, table)
    source = app.topic(*family_of, key_serializer="raw", value_serializer="raw")
    responses = app.topic(settings.topic("response_times"), key_serializer="raw", value_serializer="raw")
    alerts = app.topic(settings.topic("alerts"), key_serializer="raw", value_serializer="raw")
    deadletters = app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw")
    # Incidents waiting for a first arrival, per partition: (deadline ms, incident id).
    waiting: dict[int, list[tuple[int, str]]] = {}
    # Incidents done with, per partition: (expiry ms, incident id). A closed incident (or a state
    # that never saw its opening) leaves the table once the partition's event time passes its
    # newest event by the retention, so the table and its changelog stay the size of a day's work.
    expiring: dict[int, list[tuple[int, str]]] = {}
    retention_ms = int(settings.join_retention_hours * 3_600_000)
    progress: dict[tuple[str, int], int] = {}  # newest event time read per (topic, partition)
    # Alerts raised by this process. Not in the table on purpose: after a crash the waiting checks
    # are re-armed and an alert is raised again (same event_id) rather than risk one recorded as
    # raised in the changelog but never published.
    alerted: set[str] = set()

    @table.on_recover
    async def _rebuild_waiting() -> None:
        """After recovery from the changelog, re-arm the waiting checks of incidents still open."""
        waiting.clear()
        expiring.clear()
        alerted.clear()
        n = 0
        for key, s in table.items():
            if s and s.get("on_scene") is None and s.get("end") is None and s.get("opened") is not None:
                deadline = s["opened"] + targets_s[s["priority"]] * 1000
                heapq.heappush(waiting.setdefault(s["p"], []), (deadline, key))
                n += 1
            if s and _finished(s):
                heapq.heappush(expiring.setdefault(s["p"], []), (s["last"] + retention_ms, key))
        log.info("join state recovered: %d incidents, %d waiting for a unit", len(table), n)

    async def publish_response(iid: str, s: dict[str, Any]) -> None:
        rec = response_record(iid, s, s["rev"], targets_s)
        rec["event_id"] = str(uuid.uuid5(NAMESPACE, f"response:{iid}:{s['rev']}"))
        await responses.send(key=iid.encode(), value=ResponseTime.model_validate(rec).to_json())
        JOIN_OUTPUTS.labels("response_times").inc()

    async def check_waiting(partition: int, now_ms: int) -> None:
        heap = waiting.get(partition)
        while heap and heap[0][0] <= now_ms:
            deadline, iid = heapq.heappop(heap)
            s = table.get(iid)
            if not s or iid in alerted:
                continue
            on_scene, end = s.get("on_scene"), s.get("end")
            if (on_scene is not None and on_scene <= deadline) or (end is not None and end <= deadline):
                continue  # a unit arrived, or the case closed, in time
            target = targets_s[s["priority"]]
            alert = Alert(
                event_id=uuid.uuid5(NAMESPACE, f"waiting:{iid}"),
                event_time=dt.datetime.fromtimestamp(deadline / 1000, dt.UTC),
                kind="incident_waiting", city=s["city"], district=s.get("district", ""), incident_id=iid,
                priority=s["priority"], waited_s=float(target), target_s=target,
                detail=f"priority {s['priority']} incident without a unit on scene after {target // 60} min",
            )  # fmt: skip
            await alerts.send(key=s["city"].encode(), value=alert.to_json())
            JOIN_OUTPUTS.labels("alerts").inc()
            alerted.add(iid)

    def expire(partition: int, now_ms: int) -> None:
        """Drop incidents done with from the table (inside the agent: faust writes the tombstone)."""
        heap = expiring.get(partition)
        while heap and heap[0][0] <= now_ms:
            _, iid = heapq.heappop(heap)
            s = table.get(iid)
            if s is None or not _finished(s) or s["last"] + retention_ms > now_ms:
                continue  # gone already, reopened, or touched since (a later entry is queued)
            del table[iid]
            JOIN_EXPIRED.inc()

    async def handle(event: faust.EventT) -> None:
        """Fold one incident or dispatch event into its incident and publish what follows."""
        msg = event.message
        family = family_of[msg.topic]
        try:
            clock = dt.datetime.now(dt.UTC)
            ev = parse_event(family, event.value or b"", clock, settings.unit_id_re, settings.earliest_event)
        except InvalidEvent:
            return  # the ingest service dead-letters it
        assert isinstance(ev, IncidentEvent | DispatchEvent)
        now = min(progress.get((topic, msg.partition), 0) for topic in family_of)
        if _ms(ev.event_time) + retention_ms < now:
            # Older than the retention: its incident may have left the table, and joining it
            # to a fresh state would publish a partial revision. Stored raw by the ingest.
            JOIN_EVENTS.labels("too_late").inc()
            return
        JOIN_EVENTS.labels(family).inc()
        iid = ev.incident_id
        before = table.get(iid)
        replay = before is not None and str(ev.event_id) in before["seen"]
        s = merge(before, ev, enricher.district(ev))
        s["p"] = msg.partition
        newly_open = before is None or before.get("opened") is None
        if newly_open and s.get("opened") is not None and s.get("priority") is not None:
            # Armed even if a unit is already on scene: whether it came in time is decided
            # when the deadline passes (an incident learnt of late may have waited too long).
            deadline = s["opened"] + targets_s[s["priority"]] * 1000
            heapq.heappush(waiting.setdefault(msg.partition, []), (deadline, iid))
        publish = False
        if _complete(s):
            digest = hashlib.sha1(
                orjson.dumps(response_record(iid, s, 0, targets_s), option=orjson.OPT_SORT_KEYS)
            ).hexdigest()
            if digest != s["digest"]:
                s["rev"], s["digest"] = s["rev"] + 1, digest
                publish = True
            else:
                publish = replay  # the current revision may have reached the changelog only
        table[iid] = s
        if _finished(s):
            heapq.heappush(expiring.setdefault(msg.partition, []), (s["last"] + retention_ms, iid))
        if publish:
            await publish_response(iid, s)
        t = _ms(ev.event_time)
        if t > progress.get((msg.topic, msg.partition), 0):
            progress[(msg.topic, msg.partition)] = t
        # The partition's event time is the lesser of the two topics' progress: faust reads
        # the incidents and the dispatches of a partition as separate fetches, so one topic
        # can run ahead, and a unit's arrival must not be judged missing before it is read.
        watermark = min(progress.get((topic, msg.partition), 0) for topic in family_of)
        await check_waiting(msg.partition, watermark)
        expire(msg.partition, watermark)
        JOIN_STATE.set(len(table))

    @app.agent(source)
    async def join(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(handle, event, deadletters.send)

    return table
