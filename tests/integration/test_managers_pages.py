"""The managers' pages under AppTest, on the real engine, against truths counted here from the raw
rows the test wrote: CompStat counts and changes across a year boundary and on a leap day,
response-time percentiles (latest revision of each incident), the incident list, trends; and the
scope: an edited URL is refused, a district head sees only its district.

The rows are written as the worker stores them (raw tables; the hourly roll-ups fill through the
materialized views). Local days are Kazakhstan's by Python's own tz database (UTC+6 until
2024-03-01, UTC+5 since), not by ClickHouse's.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import uuid
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from dozor.access import AccessDenied, Scope
from dozor.clickhouse import connect
from dozor.dashboard import queries
from dozor.dashboard.queries import Area
from dozor.infra.migrate import migrate
from tests.helpers.apptest import page_as

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TZ = "Asia/Almaty"
ZONE = ZoneInfo(TZ)
ANALYST = Scope("analyst@mvd.kz", "ministry_analyst", None, integrity=True, audit=True)
ASTANA_HEAD = Scope("astana.head@police.kz", "city_head", frozenset({"astana"}))
YESIL_HEAD = Scope("yesil.head@police.kz", "district_head", frozenset({"astana"}), frozenset({"yesil"}))
TYPES = ["speeding", "red_light", "bus_lane"]
DISTRICTS = ["yesil", "saryarka", "almaty"]
CATEGORIES = ["theft", "domestic", "traffic_accident"]
CHANNELS = ["call_102", "app_102", "sos_button"]
TARGET_S = {1: 600, 2: 1200, 3: 2400, 4: 3600}


def _insert(client, table: str, rows: list, columns: list[str]) -> None:
    """One insert per UTC month: the raw tables are partitioned by day and ClickHouse refuses an
    insert into more than 100 partitions (the worker splits its inserts the same way)."""
    months: dict[tuple[int, int], list] = {}
    for r in rows:
        months.setdefault((r[1].year, r[1].month), []).append(r)
    for batch in months.values():
        client.insert(table, batch, column_names=columns)


def _local_midnight(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(), ZONE)


def _history(settings, seed: int = 7) -> dict[str, list]:
    """Raw rows around 2023-12-01 … 2025-01-10 in Astana (and some in Almaty, which Astana's
    figures must not count), with events on the edges of local days."""
    migrate(settings)
    rng = random.Random(seed)
    lo = _local_midnight(dt.date(2022, 12, 20)).timestamp()
    hi = _local_midnight(dt.date(2025, 1, 10)).timestamp()
    edges = [
        _local_midnight(dt.date(2025, 1, 1)) - dt.timedelta(milliseconds=1),  # 2024-12-31 23:59:59.999
        _local_midnight(dt.date(2025, 1, 1)),
        _local_midnight(dt.date(2024, 2, 29)),  # UTC+6 then: 2024-02-28T18:00Z
        _local_midnight(dt.date(2024, 3, 1)) - dt.timedelta(milliseconds=1),
        _local_midnight(dt.date(2023, 2, 28)) + dt.timedelta(hours=23, minutes=59),
    ]
    times = [dt.datetime.fromtimestamp(rng.uniform(lo, hi), dt.UTC) for _ in range(4000)]
    times += [e.astimezone(dt.UTC) for e in edges for _ in range(3)]
    violations = []
    for i, t in enumerate(times):
        city = "almaty" if i % 10 == 0 else "astana"
        district = rng.choice(DISTRICTS) if city == "astana" else "medeu"
        violations.append([uuid.uuid4(), t, city, district, f"cam-{i % 7}", rng.choice(TYPES), 51.1, 71.4,
                           None, None, "0" * 64, "1****AB", 0, i])  # fmt: skip
    _insert(
        connect(settings), "violations", violations,
        ["event_id", "event_time", "city", "district", "camera_id", "violation_type", "lat",
                      "lon", "speed_kmh", "speed_limit_kmh", "plate_hash", "plate_masked", "src_partition",
                      "src_offset"],
    )  # fmt: skip
    incidents, responses, events, dispatches = [], [], [], []
    for i, t in enumerate(times[::2]):
        city = "almaty" if i % 10 == 0 else "astana"
        district = rng.choice(DISTRICTS) if city == "astana" else "medeu"
        prio, cat, chan = rng.randint(1, 4), rng.choice(CATEGORIES), rng.choice(CHANNELS)
        iid = f"INC-{i}"
        incidents.append((iid, t, city, district, prio, cat, chan))
        events.append(
            [uuid.uuid4(), t, iid, "opened", chan, cat, prio, city, district, 51.1, 71.4, t, 0, 2 * i]
        )
        if i % 9 == 4:
            continue  # still open: no closure, no response record
        assign = rng.uniform(20, 200)
        arrive = None if i % 13 == 0 else assign + rng.lognormvariate(6.5, 0.5)
        close = (arrive or assign) + rng.uniform(600, 6000)
        closed = t + dt.timedelta(seconds=close)
        # A unit on scene and no closure yet (or an export without closure times): the join's open
        # record (response_times.v2) has the arrival and no closure.
        still_open = i % 17 == 3 and arrive is not None
        if not still_open:
            events.append([uuid.uuid4(), closed, iid, "closed", chan, cat, prio, city, district, 51.1, 71.4,
                           t, 0, 2 * i + 1])  # fmt: skip
        if arrive is not None:
            dispatches.append([uuid.uuid4(), t + dt.timedelta(seconds=arrive), f"D-{i}", iid, "AST-1", "car",
                               "on_scene", city, district, 0, i])  # fmt: skip
        revisions = [(1, arrive)]
        if i % 5 == 0 and arrive is not None:
            # A late step: the join republishes with a shorter arrival; only revision 2 counts.
            revisions.append((2, arrive * 0.5))
        for rev, arr in revisions:
            on_scene = None if arr is None else t + dt.timedelta(seconds=arr)
            status, end, to_close = ("open", None, None) if still_open else ("closed", closed, close)
            responses.append([uuid.uuid4(), end or on_scene, iid, rev, status, city, district, prio, cat,
                              chan, t, t + dt.timedelta(seconds=assign), on_scene, end, assign, arr, to_close,
                              TARGET_S[prio], None if arr is None else arr <= TARGET_S[prio], 0,
                              10 * i + rev])  # fmt: skip
    c = connect(settings)
    _insert(
        c, "incident_events", events,
        ["event_id", "event_time", "incident_id", "status", "channel", "category", "priority",
                      "city", "district", "lat", "lon", "opened_at", "src_partition", "src_offset"],
    )  # fmt: skip
    _insert(
        c, "dispatch_events", dispatches,
        ["event_id", "event_time", "dispatch_id", "incident_id", "unit_id", "crew_type",
                      "status", "city", "district", "src_partition", "src_offset"],
    )  # fmt: skip
    _insert(
        c, "incident_responses", responses,
        ["event_id", "event_time", "incident_id", "revision", "status", "city", "district",
                      "priority", "category", "channel", "opened_at", "first_assigned_at",
                      "first_on_scene_at", "closed_at", "time_to_assignment_s", "time_to_arrival_s",
                      "time_to_closure_s", "arrival_target_s", "arrived_within_target", "src_partition",
                      "src_offset"],
    )  # fmt: skip
    return {"violations": violations, "incidents": incidents, "responses": responses}


def _day(t: dt.datetime) -> dt.date:
    return t.astimezone(ZONE).date()


def _periods(day: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """CompStat's periods written out from the definition on the page."""
    d = dt.timedelta
    ly = day - d(days=364)
    try:
        ytd_ly_end = day.replace(year=day.year - 1)
    except ValueError:
        ytd_ly_end = dt.date(day.year - 1, 2, 28)
    return {
        "week": (day - d(days=6), day), "prev_week": (day - d(days=13), day - d(days=7)),
        "week_ly": (ly - d(days=6), ly), "d28": (day - d(days=27), day), "d28_ly": (ly - d(days=27), ly),
        "ytd": (dt.date(day.year, 1, 1), day), "ytd_ly": (dt.date(day.year - 1, 1, 1), ytd_ly_end),
    }  # fmt: skip


def _app(settings, monkeypatch, scope: Scope, page: str, **params: str) -> AppTest:
    at = page_as(settings, monkeypatch, scope, APP, timeout_s=60, **params)
    at.switch_page(f"app_pages/{page}.py")
    return at


@pytest.mark.parametrize(
    "day", [dt.date(2025, 1, 2), dt.date(2024, 2, 29)], ids=["year-boundary", "leap-day"]
)
def test_compstat_counts_and_changes_equal_the_raw_rows(settings_factory, monkeypatch, day):
    settings = settings_factory()
    raw = _history(settings)
    periods = _periods(day)
    truth: dict[tuple[str, str], Counter] = {}
    for row in raw["violations"]:
        if row[2] != "astana":
            continue
        local = _day(row[1])
        for p, (lo, hi) in periods.items():
            if lo <= local <= hi:
                truth.setdefault(("violations", row[5]), Counter())[p] += 1
                truth.setdefault(("violations", ""), Counter())[p] += 1
    for _iid, t, city, _district, prio, cat, chan in raw["incidents"]:
        if city != "astana":
            continue
        local = _day(t)
        for p, (lo, hi) in periods.items():
            if lo <= local <= hi:
                for family, key in (("category", cat), ("channel", chan), ("priority", str(prio))):
                    truth.setdefault((family, key), Counter())[p] += 1
                    truth.setdefault((family, ""), Counter())[p] += 1
    latest: dict[str, list] = {}
    for r in raw["responses"]:
        if r[5] == "astana" and (r[2] not in latest or r[3] > latest[r[2]][3]):
            latest[r[2]] = r
    for r in latest.values():
        local = _day(r[10])
        for p, (lo, hi) in periods.items():
            if lo <= local <= hi:
                if r[15] is not None:
                    truth.setdefault(("arrivals", str(r[7])), Counter())[p] += 1
                    truth.setdefault(("arrivals", ""), Counter())[p] += 1
                if r[18]:
                    truth.setdefault(("within_target", str(r[7])), Counter())[p] += 1
                    truth.setdefault(("within_target", ""), Counter())[p] += 1

    rows = queries.compstat(connect(settings, reader=True), ASTANA_HEAD, Area("astana"), day, TZ)
    got = {(r.family, r.key): {p: n for p, n in r.counts.items() if n} for r in rows}
    assert {k: v for k, v in got.items() if v} == {k: dict(v) for k, v in truth.items()}

    # The page shows the same numbers, the change in % and the flag only beyond chance.
    at = _app(settings, monkeypatch, ASTANA_HEAD, "compstat", lang="en", city="astana", day=day.isoformat())
    at.run()
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader][:1] == ["Traffic violations by type"]
    shown = at.dataframe[0].value.to_dict("records")
    total = truth[("violations", "")]
    assert shown[0]["Figure"] == "Total"
    assert shown[0]["Week"] == total["week"] and shown[0]["Year to date"] == total["ytd"]
    assert shown[0]["Same week last year"] == total["week_ly"]
    a, b = total["d28"], total["d28_ly"]
    # The change is a number (the CSV's too), its flag a column of its own.
    assert shown[0]["Δ 28 days"] == round((a - b) / b * 100, 1)
    flag = ("▲" if a > b else "▼") if abs(2 * (a**0.5 - b**0.5)) > 3 else ""
    assert shown[0]["Δ 28 days · beyond chance"] == flag
    for line in shown[1:]:
        key = {"speeding": "speeding", "red light": "red_light", "bus lane": "bus_lane"}[line["Figure"]]
        assert line["Week"] == truth[("violations", key)]["week"]


def test_poisson_flag_does_not_cry_wolf_on_small_counts():
    small = queries.CompstatRow("violations", "", {"week": 7, "prev_week": 3})
    large = queries.CompstatRow("violations", "", {"week": 400, "prev_week": 300})
    assert small.change("week", "prev_week") > 1 and not small.significant("week", "prev_week")
    assert large.change("week", "prev_week") < small.change("week", "prev_week")
    assert large.significant("week", "prev_week")


def _percentile(values: list[float], q: float) -> float:
    """The inclusive (Excel PERCENTILE.INC) percentile, from the standard library."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def test_response_percentiles_equal_the_latest_revisions(settings_factory, monkeypatch):
    settings = settings_factory()
    raw = _history(settings, seed=11)
    start, end = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    latest: dict[str, list] = {}
    for r in raw["responses"]:
        if r[5] == "astana" and (r[2] not in latest or r[3] > latest[r[2]][3]):
            latest[r[2]] = r
    by_priority: dict[int, list] = {}
    for r in latest.values():
        if start <= _day(r[10]) <= end:
            by_priority.setdefault(r[7], []).append(r)
    stats = queries.response_stats(connect(settings, reader=True), ANALYST, Area("astana"), start, end,
                                   "priority", TZ)  # fmt: skip
    assert {int(s.key) for s in stats} == set(by_priority)
    for s in stats:
        group = by_priority[int(s.key)]
        arrivals = [r[15] for r in group if r[15] is not None]
        closures = [r[16] for r in group if r[16] is not None]
        assert len(closures) < len(group), "some incidents are open with a unit on scene"
        assert s.incidents == len(group) and s.arrived == len(arrivals) and s.closed == len(closures)
        for got, q in zip(s.arrive_s, (0.5, 0.9, 0.95), strict=True):
            assert got == pytest.approx(_percentile(arrivals, q), abs=1e-6)
        assert s.close_s[1] == pytest.approx(_percentile(closures, 0.9), abs=1e-6)
        assert s.within_target == sum(1 for r in group if r[18])

    at = _app(settings, monkeypatch, ANALYST, "responses", lang="en", city="astana", range="custom",
              **{"from": start.isoformat(), "to": end.isoformat()})  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    shown = {r["priority"]: r for r in at.dataframe[0].value.to_dict("records")}
    calls = Counter(
        p for _i, t, city, _d, p, *_ in raw["incidents"] if city == "astana" and start <= _day(t) <= end
    )
    for prio, group in by_priority.items():
        arrivals = [r[15] for r in group if r[15] is not None]
        assert shown[f"P{prio}"]["arrival p90, min"] == f"{_percentile(arrivals, 0.9) / 60:,.1f}"
        # Every call of the range, and how many reached each moment.
        assert shown[f"P{prio}"]["calls"] == calls[prio] > len(group), "calls never closed nor reached count"
        assert shown[f"P{prio}"]["on scene"] == len(arrivals)
        assert shown[f"P{prio}"]["assigned"] == sum(1 for r in group if r[14] is not None)


def test_incident_list_pages_through_every_incident_of_the_range(settings_factory, monkeypatch):
    settings = settings_factory()
    raw = _history(settings, seed=3)
    start, end = dt.date(2024, 12, 1), dt.date(2024, 12, 31)
    truth = {iid for iid, t, city, *_ in raw["incidents"] if city == "astana" and start <= _day(t) <= end}
    c = connect(settings, reader=True)
    seen: list[str] = []
    offset = 0
    while True:
        rows, total = queries.incident_list(c, ASTANA_HEAD, Area("astana"), start, end, TZ, sort="priority",
                                            descending=False, limit=37, offset=offset)  # fmt: skip
        assert total == len(truth)
        if not rows:
            break
        assert [r.priority for r in rows] == sorted(r.priority for r in rows)
        seen += [r.incident_id for r in rows]
        offset += 37
    assert sorted(seen) == sorted(truth)
    # Sorted by first arrival (the other query path): the same incidents' arrivals, in order.
    astana = Area("astana")
    by_arrival, total = queries.incident_list(c, ASTANA_HEAD, astana, start, end, TZ, sort="first_arrival",
                                              descending=False, limit=10_000)  # fmt: skip
    by_priority, _ = queries.incident_list(c, ASTANA_HEAD, astana, start, end, TZ, sort="priority",
                                           limit=10_000)  # fmt: skip
    assert total == len(truth)
    arrivals = [r.first_arrival for r in by_arrival if r.first_arrival is not None]
    assert arrivals == sorted(arrivals)
    assert {r.incident_id: r.first_arrival for r in by_arrival} == {
        r.incident_id: r.first_arrival for r in by_priority
    }
    at = _app(settings, monkeypatch, ASTANA_HEAD, "incidents", lang="en", city="astana", range="custom",
              **{"from": start.isoformat(), "to": end.isoformat()})  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value.to_dict("records")
    assert len(shown) == min(50, len(truth)) and {r["id"] for r in shown} <= truth
    assert not {"plate", "caller", "officer", "unit"} & {k.lower() for k in shown[0]}


def test_trend_series_equal_the_raw_rows_and_the_year_before(settings_factory):
    settings = settings_factory()
    raw = _history(settings, seed=5)
    start, end = dt.date(2024, 12, 20), dt.date(2025, 1, 5)
    per_day = Counter(_day(r[1]) for r in raw["violations"] if r[2] == "astana")
    series = queries.daily_series(connect(settings, reader=True), ASTANA_HEAD, Area("astana"), start, end,
                                  "violations", TZ)  # fmt: skip
    assert [d for d, _, _ in series] == [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    for d, n, before in series:
        assert (n, before) == (per_day[d], per_day[d - dt.timedelta(days=364)])
    cells = queries.heatmap(connect(settings, reader=True), ASTANA_HEAD, Area("astana"), start, end,
                            "violations", TZ)  # fmt: skip
    truth = Counter(
        (r[1].astimezone(ZONE).isoweekday(), r[1].astimezone(ZONE).hour)
        for r in raw["violations"] if r[2] == "astana" and start <= _day(r[1]) <= end
    )  # fmt: skip
    assert cells == dict(truth)


def test_an_edited_url_outside_the_scope_is_refused_and_recorded(settings_factory, monkeypatch):
    settings = settings_factory()
    _history(settings, seed=2)
    for page in ("compstat", "trends", "responses", "incidents"):
        at = _app(settings, monkeypatch, ASTANA_HEAD, page, lang="en", city="almaty")
        at.run()
        assert not at.exception, at.exception
        assert at.error and "Access refused" in at.error[0].value
        assert not at.dataframe, f"{page} showed a table for a city outside the scope"
    at = _app(settings, monkeypatch, YESIL_HEAD, "compstat", lang="en", city="astana", district="saryarka")
    at.run()
    assert at.error and "Access refused" in at.error[0].value and not at.dataframe
    refused = (
        connect(settings)
        .query("SELECT user, page, detail FROM audit_log WHERE action = 'refused' ORDER BY at")
        .result_rows
    )
    assert [(u, p) for u, p, _ in refused] == [("astana.head@police.kz", p) for p in
                                               ("compstat", "trends", "responses", "incidents")] + [
        ("yesil.head@police.kz", "compstat")]  # fmt: skip
    with pytest.raises(AccessDenied):
        queries.compstat(connect(settings, reader=True), ASTANA_HEAD, Area("almaty"), dt.date(2025, 1, 2), TZ)


def test_a_district_head_sees_only_its_district(settings_factory, monkeypatch):
    settings = settings_factory()
    raw = _history(settings, seed=9)
    day = dt.date(2025, 1, 2)
    lo, hi = day - dt.timedelta(days=6), day
    truth = sum(
        1 for r in raw["violations"] if r[2] == "astana" and r[3] == "yesil" and lo <= _day(r[1]) <= hi
    )
    at = _app(settings, monkeypatch, YESIL_HEAD, "compstat", lang="en", city="astana", day=day.isoformat())
    at.run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value.to_dict("records")[0]["Week"] == truth
    rows = queries.compstat(connect(settings, reader=True), YESIL_HEAD, Area("astana"), day, TZ)
    assert next(r for r in rows if (r.family, r.key) == ("violations", "")).n("week") == truth


def test_filters_in_the_url_narrow_every_figure_to_them(settings_factory, monkeypatch):
    settings = settings_factory()
    raw = _history(settings, seed=13)
    start, end = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    truth = {
        iid for iid, t, city, _d, prio, cat, _ch in raw["incidents"]
        if city == "astana" and start <= _day(t) <= end and cat in ("theft", "domestic") and prio == 1
    }  # fmt: skip
    at = _app(settings, monkeypatch, ASTANA_HEAD, "incidents", lang="en", city="astana", range="custom",
              category="theft,domestic", priority="1", sort="opened_at",
              **{"from": start.isoformat(), "to": end.isoformat()})  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    assert f"of {-(-len(truth) // 50)} · {len(truth)}" in [c.value for c in at.caption]
    shown = at.dataframe[0].value.to_dict("records")
    assert shown and all(r["priority"] == 1 and r["category"] in ("theft", "domestic") for r in shown)
    assert {r["id"] for r in shown} <= truth


def test_the_trends_page_shows_each_districts_total_of_the_range(settings_factory, monkeypatch):
    settings = settings_factory()
    raw = _history(settings, seed=17)
    start, end = dt.date(2024, 12, 20), dt.date(2025, 1, 5)  # across the new year
    names = {"yesil": "Yesil", "saryarka": "Saryarka", "almaty": "Almaty"}
    truth = Counter(
        names[r[3]] for r in raw["violations"] if r[2] == "astana" and start <= _day(r[1]) <= end
    )  # fmt: skip
    at = _app(settings, monkeypatch, ASTANA_HEAD, "trends", lang="en", city="astana", range="custom",
              **{"from": start.isoformat(), "to": end.isoformat()})  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    shown = {r["District"]: r["Traffic violations"] for r in at.dataframe[-1].value.to_dict("records")}
    assert shown == dict(truth)
    assert [s.value for s in at.subheader] == ["Weekday × hour", "By district"]
