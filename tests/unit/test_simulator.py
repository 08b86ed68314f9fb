"""The simulator's feed is realistic, deterministic and honest about its own faults."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict

import orjson
import pytest

from dozor.producers.publish import fast_start
from dozor.producers.simulator import BAD_KINDS, SimConfig, Simulator
from dozor.schemas import InvalidEvent, parse_event

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
START = NOW - dt.timedelta(days=1)


def feed(**kw) -> list:
    cfg = SimConfig(**{"seed": 4, "rate": 1.0, **kw})
    return list(Simulator(cfg, "salt").messages(START, until=NOW - dt.timedelta(hours=5), drain=True))


@pytest.fixture(scope="module")
def day() -> list:
    return feed(incident_share=0.1, bad_rate=0.03, late_rate=0.02, duplicate_rate=0.01)


def test_same_seed_same_messages():
    a = [m.value for m in Simulator(SimConfig(seed=9), "s").messages(START, count=3000)]
    b = [m.value for m in Simulator(SimConfig(seed=9), "s").messages(START, count=3000)]
    c = [m.value for m in Simulator(SimConfig(seed=10), "s").messages(START, count=3000)]
    assert a == b != c


def test_every_message_is_what_it_claims(day):
    kinds = Counter()
    for m in day:
        if m.valid:
            ev = parse_event(m.family, m.value, now=NOW)
            assert str(ev.event_id) == m.event_id
        else:
            with pytest.raises(InvalidEvent) as e:
                parse_event(m.family, m.value, now=NOW)
            assert e.value.reason == m.bad_reason, m.value[:200]
            kinds[m.bad_reason] += 1
    assert set(kinds) == set(BAD_KINDS.values()), "every kind of defect appears in a day"


def test_all_families_and_keys(day):
    fams = Counter(m.family for m in day if m.valid)
    assert fams["violations"] > fams["dispatches"] > fams["incidents"] > fams["integrity"] > 0
    for m in day:
        if m.valid and m.family in ("incidents", "dispatches"):
            assert m.key == m.payload["incident_id"].encode(), "joins need incident-id keys"
        if m.valid and m.family == "calls":
            assert m.key == m.payload["call_id"].encode(), "a call's moments stay in order on one partition"
    assert fams["calls"] > fams["integrity"]


def test_cities_weighted_by_population(day):
    cities = Counter(m.payload["city"] for m in day if m.valid and m.family == "violations")
    assert cities["almaty"] > cities["astana"] > cities["karaganda"] > cities["ekibastuz"]


def test_daily_profile_rush_hour_busier_than_night(day):
    by_hour = Counter(
        (dt.datetime.fromisoformat(m.payload["event_time"]) + dt.timedelta(hours=5)).hour
        for m in day if m.valid and m.family == "violations"
    )  # fmt: skip
    assert by_hour[8] > 4 * by_hour[3]


def test_duplicates_repeat_the_event_id_and_late_ones_arrive_out_of_order(day):
    dups = [m for m in day if m.duplicate]
    assert dups
    first = {m.event_id: m.value for m in day if m.valid and not m.duplicate}
    assert all(first[d.event_id] == d.value for d in dups)
    event_times = [dt.datetime.fromisoformat(m.payload["event_time"]) for m in day if m.valid]
    inversions = sum(1 for a, b in zip(event_times, event_times[1:], strict=False) if b < a)
    assert inversions > 0, "late sends must put some events out of event-time order"


def test_incident_lifecycle_is_plausible():
    per_incident = defaultdict(list)
    for m in feed(incident_share=0.2, late_rate=0.05):
        if m.valid and not m.duplicate and m.family in ("incidents", "dispatches"):
            per_incident[m.payload["incident_id"]].append(m.payload)
    response_min = defaultdict(list)
    for events in per_incident.values():
        inc = [e for e in events if "channel" in e]
        statuses = [e["status"] for e in sorted(inc, key=lambda e: e["event_time"])]
        assert statuses[0] == "opened" and statuses[-1] in ("closed", "cancelled")
        opened = dt.datetime.fromisoformat(inc[0]["opened_at"])
        disp = defaultdict(list)
        for e in events:
            if "dispatch_id" in e:
                disp[e["dispatch_id"]].append(e)
        for steps in disp.values():
            order = [s["status"] for s in sorted(steps, key=lambda s: s["event_time"])]
            assert order == ["assigned", "en_route", "on_scene", "cleared"]
            on_scene = dt.datetime.fromisoformat(
                next(s for s in steps if s["status"] == "on_scene")["event_time"]
            )
            response_min[inc[0]["priority"]].append((on_scene - opened).total_seconds() / 60)
    medians = [statistics.median(response_min[p]) for p in (1, 2, 3, 4)]
    assert medians == sorted(medians), f"P1 must be answered fastest: {medians}"
    assert 3 < medians[0] < 15


def test_valid_messages_never_carry_a_raw_plate(day):
    for m in day:
        if m.valid and m.family == "violations":
            assert len(m.payload["plate_hash"]) == 64 and "*" in m.payload["plate_masked"]


def test_values_are_compact_json(day):
    m = next(m for m in day if m.valid)
    assert orjson.loads(m.value) == m.payload


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2026, 11, 23, 22, 0, tzinfo=dt.UTC),  # 03:00 in Astana, the night trough
        dt.datetime(2026, 11, 29, 1, 30, tzinfo=dt.UTC),  # a Sunday night
        dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC),  # the morning rush
    ],
)
def test_fast_run_sends_the_whole_count_before_now_at_any_hour(now):
    # `dozor simulate --fast --count N` stops at the present: a start too late sent fewer than N.
    cfg = SimConfig(seed=2, rate=50.0)
    start = fast_start(cfg, 20_000, now)
    msgs = list(Simulator(cfg, "s").messages(start, count=20_000, until=now))
    assert len(msgs) == 20_000
    assert max(orjson.loads(m.value)["event_time"] for m in msgs if m.valid) < now.isoformat()
    # ... and still ends near now, not hours before it (the feed is meant to look current).
    assert now - msgs[-1].send_time < dt.timedelta(hours=1)


def test_the_fastest_speeding_is_still_a_valid_event():
    cfg = SimConfig(seed=3, incident_share=0, integrity_share=0, call_share=0, duplicate_rate=0, late_rate=0)
    sim = Simulator(cfg, "s")
    draw = sim.rng.expovariate
    # The far tail of the excess over the limit (mean 18 km/h), every time; other draws as they come.
    sim.rng.expovariate = lambda lambd: 1e6 if lambd == 1 / 18 else draw(lambd)
    speeding = [
        ev
        for m in sim.messages(START, count=200)
        if (ev := parse_event("violations", m.value, NOW)).violation_type == "speeding"
    ]
    assert speeding and all(ev.speed_kmh <= 400 for ev in speeding)
