"""The wall never contradicts itself: over a simulated hour with late, duplicate and malformed
events, at every refresh instant every figure equals a truth computed here from the messages
produced up to that instant, and nested windows nest (minute ≤ hour ≤ today; a city is the sum of
its districts).

The feed goes through Kafka and the worker like the live one; the figures are read through the
page's own query function (``queries.wall_snapshot``) at instants every four minutes through the
hour, and once through the page itself (AppTest), whose stated instant decides the truth.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from dozor.access import KIOSK
from dozor.cities import resolve_district
from dozor.clickhouse import connect
from dozor.dashboard import queries
from dozor.geo import district_map
from dozor.producers.simulator import SimConfig, Simulator
from tests.helpers.apptest import page_as
from tests.helpers.stack import WORKER, Truth, produce, wait_for_truth

pytestmark = pytest.mark.integration

TZ = "Asia/Almaty"
WALL = Path(__file__).resolve().parents[2] / "dashboard" / "app_pages" / "wall.py"
TARGETS = {1: 600, 2: 1200, 3: 2400, 4: 3600}


def _events(msgs: list) -> tuple[list[dict], list[dict], list[dict]]:
    """The valid violations, incident events and dispatch events produced, each event id once."""
    seen: set[str] = set()
    out: dict[str, list[dict]] = {"violations": [], "incidents": [], "dispatches": []}
    for m in msgs:
        if not m.valid or m.event_id in seen or m.family not in out:
            continue
        seen.add(m.event_id)
        d = orjson.loads(m.value)
        t = dt.datetime.fromisoformat(d["event_time"])
        d["t"] = t.replace(microsecond=t.microsecond // 1000 * 1000)  # stored to the millisecond
        if d.get("district"):
            # Sources name districts their own way ("Бостандыкский"): the reference data says which.
            d["district"] = resolve_district(d["city"], d["district"]) or ""
        elif d.get("lat") is not None:
            # A camera that sends no district is placed by the published district boundaries.
            d["district"] = district_map().district_at(d["city"], d["lat"], d["lon"])
        out[m.family].append(d)
    return out["violations"], out["incidents"], out["dispatches"]


def _truth(violations, incidents, dispatches, t0: dt.datetime) -> dict:
    """Every figure of the wall at ``t0``, by the definitions of dashboard/queries/wall.py."""
    zone = ZoneInfo(TZ)
    d0 = dt.datetime.combine(t0.astimezone(zone).date(), dt.time(), zone)
    windows = {"minute": t0 - dt.timedelta(seconds=60), "hour": t0 - dt.timedelta(hours=1)}
    counts: Counter = Counter()
    for v in violations:
        if d0 <= v["t"] <= t0:
            for key in ((v["city"],), (v["city"], v["district"])):
                counts[("today", *key)] += 1
                for w, lo in windows.items():
                    if v["t"] > lo:
                        counts[(w, *key)] += 1
    opened, ended, reached = {}, set(), set()
    for e in incidents:
        if e["t"] <= t0 and e["t"] >= t0 - dt.timedelta(days=3):
            if e["status"] == "opened":
                opened[e["incident_id"]] = e
                if e["t"] >= d0:
                    counts[("opened_today", e["city"], e["district"])] += 1
            if e["status"] in ("closed", "cancelled"):
                ended.add(e["incident_id"])
    for d in dispatches:
        if d["status"] == "on_scene" and t0 - dt.timedelta(days=3) <= d["t"] <= t0:
            reached.add(d["incident_id"])
    for iid, e in opened.items():
        if iid in ended:
            continue
        counts[("open", e["city"])] += 1
        if iid not in reached:
            counts[("waiting", e["city"])] += 1
            waited = (t0 - dt.datetime.fromisoformat(e["opened_at"])).total_seconds()
            if waited > TARGETS[e["priority"]]:
                counts[("past", e["city"], e["priority"])] += 1
    return counts


def t0_of(snap: queries.Snapshot) -> str:
    return snap.read_at.isoformat()


def _check(snap: queries.Snapshot, truth: Counter, focus: str) -> None:
    for city, r in snap.overview.items():
        shown = (r.minute, r.hour, r.today)
        assert shown == (truth[("minute", city)], truth[("hour", city)], truth[("today", city)]), city
        assert r.minute <= r.hour <= r.today
        assert r.incidents_open == truth[("open", city)], city
        assert r.waiting == truth[("waiting", city)], city
        assert r.past_target == {k[2]: n for k, n in truth.items() if k[0] == "past" and k[1] == city}, city
    for city in {k[1] for k in truth if k[0] == "today"}:
        assert city in snap.overview, f"{city} has violations today and no row"
    for d in snap.districts:
        got = (d.minute, d.hour, d.today, d.incidents_today)
        want = tuple(truth[(k, focus, d.district)] for k in ("minute", "hour", "today", "opened_today"))
        assert got == want, (d.district, t0_of(snap))
        assert d.minute <= d.hour <= d.today
    focus_row = snap.overview[focus]
    assert (sum(d.today for d in snap.districts), sum(d.hour for d in snap.districts)) == (
        focus_row.today, focus_row.hour,
    ), "a city is the sum of its districts"  # fmt: skip
    assert [w.past_target for w in snap.waiting] == sorted(
        (w.past_target for w in snap.waiting), reverse=True
    )


def test_every_figure_at_every_instant_equals_the_truth_and_windows_nest(
    settings, start_service, monkeypatch
):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(minutes=66)
    cfg = SimConfig(seed=26, rate=2.0, incident_share=0.15, integrity_share=0.0, late_rate=0.05,
                    duplicate_rate=0.03, bad_rate=0.02, daily_profile=False)  # fmt: skip
    msgs = list(Simulator(cfg, "wall-salt").messages(start, until=now - dt.timedelta(minutes=2)))
    assert any(m.duplicate for m in msgs) and any(not m.valid for m in msgs)
    truth = Truth()
    start_service(WORKER, settings, "worker")
    produce(settings, msgs, truth)
    wait_for_truth(settings, truth, timeout_s=180)

    violations, incidents, dispatches = _events(msgs)
    reader = connect(settings, reader=True)
    focus = "almaty"  # the most districts
    for minutes in range(0, 68, 4):
        t0 = start + dt.timedelta(minutes=minutes, seconds=17)
        snap = queries.wall_snapshot(reader, focus, TZ, KIOSK, TARGETS, t0)
        _check(snap, _truth(violations, incidents, dispatches, t0), focus)
        assert snap.read_at == t0

    # The page itself, at the instant it states.
    at = page_as(settings, monkeypatch, KIOSK, WALL, city=focus, lang="en")
    at.run()
    assert not at.exception, at.exception
    text = "\n".join(m.value for m in at.markdown)
    t0 = dt.datetime.fromisoformat(re.search(r"data-instant='([^']+)'", text).group(1))
    want = _truth(violations, incidents, dispatches, t0)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Almaty · last minute"] == f"{want[('minute', focus)]:,}"
    assert shown["Almaty · last hour"] == f"{want[('hour', focus)]:,}"
    assert shown["Almaty · today"] == f"{want[('today', focus)]:,}"
    assert shown["open incidents"] == f"{want[('open', focus)]:,}"

    # The worker beats while it runs, caught up (lag 0), and the page does not call the feed stale
    # although the newest event is two minutes old.
    beat = queries.heartbeat(reader)
    assert beat is not None and beat.lag == 0
    assert (dt.datetime.now(dt.UTC) - beat.at).total_seconds() < 30
    assert "STALE" not in text and "STOPPED" not in text
