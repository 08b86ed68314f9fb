"""One incident's join state, and the pure functions that fold events into it.

The join (``dozor.streams.responses``) keeps one :class:`JoinState` per incident id in a faust
Table; the table serialises it to its changelog as plain JSON (``include_metadata=False``: the
table's ``value_type`` says what it is, so the changelog carries no class names). Everything
here is a plain function of its arguments, so the rules of the join (first arrival wins, a
closure is the earliest terminal event, a replayed event changes nothing) are unit-tested
without a broker: ``tests/unit/test_join_state.py``.

Times are integer milliseconds since the epoch (ClickHouse's precision, exact in JSON). Every
merge is idempotent and independent of arrival order (min, max, union), which is what makes
at-least-once processing safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import faust
import orjson

from dozor.schemas import DispatchEvent, IncidentEvent

__all__ = [
    "JoinState",
    "merge",
    "seen",
    "complete",
    "responded",
    "finished",
    "waiting",
    "arrival_deadline",
    "response_record",
    "response_digest",
    "revise",
    "overdue",
    "to_ms",
    "history_base",
    "HISTORY_EPOCH_S",
]

_TERMINAL = ("closed", "cancelled")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class JoinState(faust.Record, serializer="json", include_metadata=False):
    """What the join knows of one incident. ``None`` is "not seen yet" for every moment."""

    #: Partition of the incident's events (the waiting and expiry checks are per partition).
    partition: int = -1
    #: The revision last published on ``response_times.v1`` (0: none yet), and a digest of its
    #: content, so a step that changes no figure publishes nothing.
    revision: int = 0
    digest: str | None = None
    #: The same for ``response_times.v2``, which also publishes at the first arrival. Fields of their
    #: own, added after v1's: a changelog written before them loads with v2 not published yet.
    v2_revision: int = 0
    v2_digest: str | None = None
    #: Space-separated 64-bit digests of the events merged (a replay after a crash is recognised
    #: by its event id); 17 bytes an event instead of a 36-character id in a list.
    merged: str = ""
    city: str | None = None
    district: str = ""
    priority: int | None = None
    category: str | None = None
    channel: str | None = None
    opened: int | None = None
    first_assigned: int | None = None
    first_on_scene: int | None = None
    #: The earliest terminal event (closed or cancelled) and which one it was.
    ended: int | None = None
    end_status: str | None = None
    #: The newest event time merged: the retention runs from it.
    last: int | None = None
    #: From a historical import (``dozor replay --historical``): joined, never alerted about.
    historical: bool = False


#: Where a historical incident's revisions start: the seconds since 2020 when its state was made
#: (:func:`history_base`). History is joined by processing time (an import of 2021 after one of 2024
#: is as welcome as the other), and its state leaves the table after a day without events; should the
#: same call come again later (a second export), its new state numbers its revisions above every
#: earlier one, so a consumer that keeps the highest revision keeps the newest, most complete record.
HISTORY_EPOCH_S = 1_577_836_800  # 2020-01-01T00:00Z


def history_base(now_s: float) -> int:
    """The revision a historical incident's new state counts from (see :data:`HISTORY_EPOCH_S`)."""
    return max(int(now_s) - HISTORY_EPOCH_S, 0)


def to_ms(t: dt.datetime) -> int:
    """Milliseconds since the epoch, truncated: ClickHouse's precision, and exact in JSON."""
    return (t - _EPOCH) // dt.timedelta(milliseconds=1)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def _secs(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else (b - a) / 1000


def _earliest(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def _event_digest(event_id: str) -> str:
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


def seen(state: JoinState | None, ev: IncidentEvent | DispatchEvent) -> bool:
    """Whether ``ev`` was merged into ``state`` before (a re-read after a crash, or a duplicate)."""
    return state is not None and _event_digest(str(ev.event_id)) in state.merged.split()


def merge(
    state: JoinState | None, ev: IncidentEvent | DispatchEvent, district: str, partition: int,
    historical: bool = False,
) -> JoinState:  # fmt: skip
    """``state`` with ``ev`` folded in; ``district`` is the event's resolved district (enricher)."""
    s = state or JoinState()
    t = to_ms(ev.event_time)
    change: dict = {"partition": partition, "last": t if s.last is None else max(s.last, t),
                    "historical": s.historical or historical}  # fmt: skip
    if isinstance(ev, IncidentEvent):
        change.update(city=ev.city, district=district or s.district, priority=ev.priority,
                      category=ev.category, channel=ev.channel,
                      opened=_earliest(s.opened, to_ms(ev.opened_at)))  # fmt: skip
        if ev.status in _TERMINAL and (s.ended is None or t < s.ended):
            change.update(ended=t, end_status=ev.status)
    else:
        change.update(city=s.city or ev.city, district=s.district or district)
        if ev.status == "assigned":
            change["first_assigned"] = _earliest(s.first_assigned, t)
        elif ev.status == "on_scene":
            change["first_on_scene"] = _earliest(s.first_on_scene, t)
    if not seen(s, ev):
        change["merged"] = f"{s.merged} {_event_digest(str(ev.event_id))}".lstrip()
    return s.derive(**change)


def complete(s: JoinState) -> bool:
    """Opened and closed (or cancelled): the response times can be published on v1."""
    return s.opened is not None and s.ended is not None and s.priority is not None


def responded(s: JoinState) -> bool:
    """Opened, and a unit assigned, a unit on scene or a closure: the response times can be
    published on v2. From the assignment on: a call assigned and never reached (a CAD log has
    thousands) still has its time to assignment, and the managers' percentiles must count it."""
    came = s.first_assigned is not None or s.first_on_scene is not None or s.ended is not None
    return s.opened is not None and s.priority is not None and came


def finished(s: JoinState) -> bool:
    """Closed, or never opened (steps of an incident whose events were all rejected)."""
    return s.ended is not None or s.opened is None


def waiting(s: JoinState) -> bool:
    """Opened, live (not history), and neither a unit on scene nor a closure yet."""
    return (
        s.opened is not None and s.priority is not None and s.first_on_scene is None and s.ended is None
        and not s.historical
    )  # fmt: skip


def arrival_deadline(s: JoinState, targets_s: dict[int, int]) -> int:
    """When the first arrival is due (ms), by the incident's priority target."""
    assert s.opened is not None and s.priority is not None
    return s.opened + targets_s[s.priority] * 1000


def response_record(
    incident_id: str, s: JoinState, revision: int, targets_s: dict[int, int], version: int = 2
) -> dict:
    """The response_times message (v2, or v1 of a complete incident), without event_id."""
    assert s.priority is not None and s.opened is not None and (s.ended is not None or version == 2)
    target = targets_s[s.priority]
    arrival = _secs(s.opened, s.first_on_scene)
    return {
        "schema_version": version,
        "event_time": _iso(next(t for t in (s.ended, s.first_on_scene, s.first_assigned) if t is not None)),
        "incident_id": incident_id,
        "revision": revision,
        "status": s.end_status or "open",
        "city": s.city,
        "district": s.district,
        "priority": s.priority,
        "category": s.category,
        "channel": s.channel,
        "opened_at": _iso(s.opened),
        "first_assigned_at": _iso(s.first_assigned),
        "first_on_scene_at": _iso(s.first_on_scene),
        "closed_at": _iso(s.ended),
        "time_to_assignment_s": _secs(s.opened, s.first_assigned),
        "time_to_arrival_s": arrival,
        "time_to_closure_s": _secs(s.opened, s.ended),
        "arrival_target_s": target,
        "arrived_within_target": None if arrival is None else arrival <= target,
    }


def response_digest(incident_id: str, s: JoinState, targets_s: dict[int, int], version: int = 2) -> str:
    """A digest of the figures a revision would publish: equal digests, nothing new to say."""
    body = orjson.dumps(response_record(incident_id, s, 0, targets_s, version), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha1(body).hexdigest()


#: Per published version: when it can be published, and the state's revision and digest fields.
_VERSIONS = ((2, responded, "v2_revision", "v2_digest"), (1, complete, "revision", "digest"))


def revise(
    incident_id: str, s: JoinState, replayed: bool, targets_s: dict[int, int]
) -> tuple[JoinState, tuple[int, ...]]:
    """``s`` with its revisions advanced where its figures changed, and the versions to publish.

    v2 publishes from the first arrival (or the closure, if no unit came first), v1 from the
    closure. An event merged before (``replayed``) publishes the current revisions again,
    unchanged: its state may have reached the changelog before a crash while the message did not
    reach the topic.
    """
    publish = []
    for version, ready, revision, digest_of in _VERSIONS:
        if not ready(s):
            continue
        digest = response_digest(incident_id, s, targets_s, version)
        if digest != getattr(s, digest_of):
            s = s.derive(**{revision: getattr(s, revision) + 1, digest_of: digest})
        elif not replayed:
            continue
        publish.append(version)
    return s, tuple(publish)


def overdue(s: JoinState, deadline: int) -> bool:
    """No unit on scene and no closure by ``deadline`` (ms): the incident waited too long.

    Never for history: an import of last year's calls is not news to a duty officer.
    """
    arrived = s.first_on_scene is not None and s.first_on_scene <= deadline
    closed = s.ended is not None and s.ended <= deadline
    return not (arrived or closed or s.historical)
