"""The join's rules on one incident, without a broker: order, replays, revisions, the changelog form."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import orjson

from dozor.schemas import DispatchEvent, IncidentEvent, ResponseTime, ResponseTimeV2
from dozor.streams.join_state import JoinState, merge, overdue, response_record, revise, seen, waiting

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
TARGETS = {1: 600, 2: 900, 3: 1800, 4: 3600}


def incident(status: str, minute: float, priority: int = 2) -> IncidentEvent:
    return IncidentEvent.model_validate({
        "event_id": str(uuid.uuid4()), "event_time": (T0 + dt.timedelta(minutes=minute)).isoformat(),
        "incident_id": "INC-1", "status": status, "channel": "call_102", "category": "theft",
        "priority": priority, "city": "astana", "district": "yesil", "lat": 51.1, "lon": 71.4,
        "opened_at": T0.isoformat(),
    })  # fmt: skip


def step(status: str, minute: float, unit: str = "AST-P001") -> DispatchEvent:
    return DispatchEvent.model_validate({
        "event_id": str(uuid.uuid4()), "event_time": (T0 + dt.timedelta(minutes=minute)).isoformat(),
        "dispatch_id": f"INC-1-{unit}", "incident_id": "INC-1", "unit_id": unit, "crew_type": "car",
        "status": status, "city": "astana",
    })  # fmt: skip


LIFE = [
    incident("opened", 0),
    step("assigned", 1.5),
    step("assigned", 2, unit="AST-P002"),
    step("on_scene", 12, unit="AST-P002"),
    step("on_scene", 9),
    incident("closed", 50),
    incident("closed", 70),  # a second closure, later: the first one stands
]


def fold(events: list) -> JoinState | None:
    s = None
    for ev in events:
        s = merge(s, ev, "yesil", 3)
    return s


def figures(s: JoinState) -> dict:
    return response_record("INC-1", s, 1, TARGETS)


def test_every_order_of_arrival_gives_the_same_figures() -> None:
    expected = {
        "first_assigned_at": "2026-03-01T08:01:30.000+00:00",
        "first_on_scene_at": "2026-03-01T08:09:00.000+00:00",
        "closed_at": "2026-03-01T08:50:00.000+00:00",
        "time_to_assignment_s": 90.0,
        "time_to_arrival_s": 540.0,
        "time_to_closure_s": 3000.0,
        "arrived_within_target": True,  # 9 min against priority 2's 15
    }
    for order in itertools.permutations(LIFE):
        got = figures(fold(list(order)))
        assert {k: got[k] for k in expected} == expected, [e.status for e in order]


def test_an_event_read_twice_changes_nothing_and_is_recognised() -> None:
    once = fold(LIFE)
    twice = fold([*LIFE, LIFE[3], LIFE[0]])
    assert twice.merged == once.merged and figures(twice) == figures(once)
    assert all(seen(once, ev) for ev in LIFE)
    assert not seen(once, step("on_scene", 5))


def test_v2_is_published_from_the_first_assignment_v1_at_the_closure_each_only_when_a_figure_changes() -> (
    None
):
    s, publish = revise("INC-1", fold(LIFE[:1]), False, TARGETS)
    assert (s.v2_revision, s.revision, publish) == (0, 0, ()), "opened, nobody assigned: nothing yet"
    s, publish = revise("INC-1", fold(LIFE[:2]), False, TARGETS)
    assert (s.v2_revision, s.revision, publish) == (1, 0, (2,)), "assigned: v2, with its time to assignment"
    assert figures(s)["time_to_assignment_s"] == 90.0 and figures(s)["time_to_arrival_s"] is None
    s, publish = revise("INC-1", fold_onto(s, LIFE[2:5]), False, TARGETS)
    assert (s.v2_revision, s.revision, publish) == (2, 0, (2,)), "on scene: v2 revised"
    s, publish = revise("INC-1", fold_onto(s, LIFE[5:]), False, TARGETS)
    assert (s.v2_revision, s.revision, publish) == (3, 1, (2, 1)), "closed: v2 revised, v1 first"
    late = step("on_scene", 4, unit="AST-P003")  # an earlier arrival, read after the closure
    s2, publish = revise("INC-1", merge(s, late, "yesil", 3), False, TARGETS)
    assert (s2.v2_revision, s2.revision, publish) == (4, 2, (2, 1))
    assert figures(s2)["time_to_arrival_s"] == 240.0
    s3, publish = revise("INC-1", merge(s2, step("en_route", 3), "yesil", 3), False, TARGETS)
    assert (s3.v2_revision, s3.revision, publish) == (4, 2, ()), "an en-route step changes no figure"
    s4, publish = revise("INC-1", merge(s3, late, "yesil", 3), True, TARGETS)
    assert (s4.v2_revision, s4.revision, publish) == (4, 2, (2, 1)), "a replay re-sends the current ones"


def test_the_open_record_carries_the_arrival_and_validates_against_its_schema() -> None:
    s, _ = revise("INC-1", fold(LIFE[:5]), False, TARGETS)
    rec = ResponseTimeV2.model_validate({**response_record("INC-1", s, 1, TARGETS), "event_id": uuid.uuid4()})
    assert (rec.status, rec.closed_at, rec.time_to_closure_s) == ("open", None, None)
    assert (rec.time_to_arrival_s, rec.time_to_assignment_s, rec.arrived_within_target) == (540.0, 90.0, True)
    assert rec.event_time == T0 + dt.timedelta(minutes=9), "stamped at the first arrival"
    closed = fold(LIFE)
    v1 = ResponseTime.model_validate(
        {**response_record("INC-1", closed, 1, TARGETS, version=1), "event_id": uuid.uuid4()}
    )
    assert (v1.status, v1.time_to_closure_s) == ("closed", 3000.0)
    assert v1.event_time == T0 + dt.timedelta(minutes=50), "stamped at the closure"


def test_an_incident_closed_before_any_unit_came_is_published_at_its_closure() -> None:
    s, publish = revise("INC-1", fold([LIFE[0], LIFE[1], incident("cancelled", 5)]), False, TARGETS)
    assert publish == (2, 1)
    rec = response_record("INC-1", s, s.v2_revision, TARGETS)
    assert (rec["status"], rec["time_to_arrival_s"], rec["time_to_closure_s"]) == ("cancelled", None, 300.0)


def test_a_changelog_written_before_v2_loads_with_v2_not_published_yet() -> None:
    s, _ = revise("INC-1", fold(LIFE), False, TARGETS)
    old = {k: v for k, v in s.asdict().items() if k not in ("v2_revision", "v2_digest")}
    back = JoinState.loads(orjson.dumps(old))
    assert (back.revision, back.v2_revision) == (1, 0)
    back, publish = revise("INC-1", back, False, TARGETS)
    assert (back.revision, back.v2_revision, publish) == (1, 1, (2,)), "v1 is not sent again"


def test_the_changelog_form_reads_back_equal() -> None:
    s = fold(LIFE)
    back = JoinState.loads(s.dumps())
    assert back == s and figures(back) == figures(s)
    assert b"__faust" not in s.dumps(), "the changelog carries the fields, not class names"


def test_overdue_means_no_arrival_and_no_closure_by_the_deadline() -> None:
    opened = fold(LIFE[:1])
    deadline = opened.opened + TARGETS[2] * 1000
    assert overdue(opened, deadline)
    assert not overdue(fold(LIFE[:5]), deadline), "on scene at 9 min, deadline 15 min"
    late_arrival = merge(opened, step("on_scene", 20), "yesil", 3)
    assert overdue(late_arrival, deadline)
    assert not overdue(merge(opened, incident("closed", 10), "yesil", 3), deadline)


def test_history_is_joined_but_never_waited_for() -> None:
    opened = merge(None, LIFE[0], "yesil", 3, historical=True)
    deadline = opened.opened + TARGETS[2] * 1000
    assert not waiting(opened) and not overdue(opened, deadline), "an import of old calls raises nothing"
    s, publish = revise("INC-1", fold_onto(opened, LIFE[1:]), False, TARGETS)
    assert publish and figures(s)["time_to_arrival_s"] == 540.0, "its response times are still published"
    live = merge(None, LIFE[0], "yesil", 3)
    assert waiting(live) and overdue(live, deadline)


def fold_onto(s: JoinState, events: list) -> JoinState:
    for ev in events:
        s = merge(s, ev, "yesil", 3)
    return s
