"""What a manager sees equals the source: three exports shaped like real police ones, imported with
mapping files only, newest first, with the live simulator running beside them, read back through
the managers' own query functions and the incidents page's CSV — against a truth computed here
from the files.

- calls for service (2005-2008): one row per call, date and time in separate columns, the
  department's own call types and beats; two exports whose overlap repeats 60 calls;
- a CAD log (2009-2012): one row per call with received / dispatched / arrived / cleared, calls
  past midnight, calls assigned but never reached or closed; two overlapping exports;
- traffic stops (2013-2016): epoch milliseconds in UTC, repeated rows.

The department is Aktobe's, whose days were UTC+5 while Astana's were UTC+6 (until March 2024): a
page that counted by the deployment's one zone would move calls between days.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from click.testing import CliRunner

from dozor.access import Scope
from dozor.cli import cli
from dozor.clickhouse import connect
from dozor.dashboard import queries
from dozor.dashboard.i18n import t
from dozor.dashboard.queries import Area
from dozor.infra.migrate import migrate
from tests.helpers.apptest import page_as
from tests.helpers.ports import free_port
from tests.helpers.stack import JOIN, WORKER, poll

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
CITY = "aktobe"
ZONE = ZoneInfo("Asia/Aqtobe")
ANALYST = Scope("analyst@mvd.kz", "ministry_analyst", None, integrity=True, audit=True)
BEATS = {"B1": "astana", "B2": "almaty"}
TYPES = {"BURG": "theft", "DOM": "domestic", "ACC": "traffic_accident", "NOISE": "other", "WELF": "other"}
PRIO = {"E": 1, "1": 2, "2": 3, "3": 4}

CFS_MAPPING = """
family = "incidents"
[columns]
incident_id = "CFS_ID"
event_time = ["Date", "Time"]
opened_at = ["Date", "Time"]
category = "Type"
priority = "Priority"
source_code = "Type"
source_area = "Beat"
district = "Beat"
[time]
format = "%m/%d/%Y %H:%M:%S"
[constants]
city = "aktobe"
status = "opened"
channel = "call_102"
[values.category]
"BURG" = "theft"
"DOM" = "domestic"
"ACC" = "traffic_accident"
"*" = "other"
[values.priority]
"E" = 1
"1" = 2
"2" = 3
"3" = 4
[values.district]
"B1" = "astana"
"B2" = "almaty"
"""
CAD_MAPPING = """
family = "cad"
[columns]
incident_id = "Incident"
opened_at = ["Date", "Received"]
assigned_at = ["Date", "Dispatched"]
on_scene_at = ["Date", "Arrived"]
cleared_at = ["Date", "Cleared"]
units = "Units"
category = "Type"
source_code = "Type"
source_area = "Beat"
district = "Beat"
priority = "Priority"
[time]
format = "%m/%d/%y %H:%M"
roll_past_midnight = true
[cad]
close_at = "cleared_at"
[constants]
city = "aktobe"
channel = "call_102"
[values.category]
"BURG" = "theft"
"DOM" = "domestic"
"ACC" = "traffic_accident"
"*" = "other"
[values.priority]
"E" = 1
"1" = 2
"2" = 3
"3" = 4
[values.district]
"B1" = "astana"
"B2" = "almaty"
"""
STOPS_MAPPING = """
family = "violations"
[columns]
event_time = "stop_time_ms"
camera_id = "unit"
violation_type = "reason"
plate = "plate"
lat = "lat"
lon = "lon"
[time]
format = "epoch_ms"
[constants]
city = "aktobe"
[values.violation_type]
"RED" = "red_light"
"BELT" = "no_seat_belt"
"PHONE" = "phone_use"
"*" = "stop_line"
"""


def _local(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=ZONE)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _calls_for_service(tmp: Path, rng: random.Random) -> tuple[list[Path], dict[str, dict]]:
    """2005-2008, two exports; the second repeats the first's last 60 calls (an overlap)."""
    calls: dict[str, dict] = {}
    rows = []
    for i in range(700):
        day = dt.date(2005, 1, 1) + dt.timedelta(days=rng.randrange(4 * 365))
        at = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60)))
        cid, typ, beat, prio = (
            f"CFS{i:05d}",
            rng.choice(list(TYPES)),
            rng.choice(list(BEATS)),
            rng.choice(list(PRIO)),
        )
        calls[cid] = {"opened": _local(at), "type": typ, "beat": beat, "prio": PRIO[prio]}
        rows.append([cid, f"{at:%m/%d/%Y}", f"{at:%H:%M:%S}", typ, beat, prio])
    rows.sort(key=lambda r: calls[r[0]]["opened"])
    a, b = rows[:400], rows[340:]  # 60 calls in both exports
    paths = [tmp / "cfs_2005_2006.csv", tmp / "cfs_2007_2008.csv"]
    for p, part in zip(paths, (a, b), strict=True):
        _write(p, ["CFS_ID", "Date", "Time", "Type", "Beat", "Priority"], part)
    return paths, calls


def _cad_log(tmp: Path, rng: random.Random) -> tuple[list[Path], dict[str, dict]]:
    """2009-2012: received, dispatched, arrived, cleared as HH:MM beside one date; calls past
    midnight; a tenth assigned and never reached nor closed; two exports overlapping by 50 calls."""
    calls: dict[str, dict] = {}
    rows = []
    for i in range(600):
        day = dt.date(2009, 1, 1) + dt.timedelta(days=rng.randrange(4 * 365))
        received = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
        if i % 40 == 0:
            received = dt.datetime.combine(day, dt.time(23, 45 + rng.randrange(14)))
        dispatched = received + dt.timedelta(minutes=rng.randint(1, 12))
        never = i % 10 == 3
        arrived = None if never else dispatched + dt.timedelta(minutes=rng.randint(2, 45))
        cleared = None if never or i % 13 == 0 else arrived + dt.timedelta(minutes=rng.randint(10, 80))
        cid, typ, beat, prio = (
            f"{day:%y}-{i:05d}",
            rng.choice(list(TYPES)),
            rng.choice(list(BEATS)),
            rng.choice(list(PRIO)),
        )
        calls[cid] = {"opened": _local(received), "assigned": _local(dispatched),
                      "arrived": arrived and _local(arrived), "cleared": cleared and _local(cleared),
                      "type": typ, "beat": beat, "prio": PRIO[prio]}  # fmt: skip
        hm = lambda x: "" if x is None else f"{x:%H:%M}"  # noqa: E731
        rows.append([cid, f"{received:%m/%d/%y}", hm(received), hm(dispatched), hm(arrived), hm(cleared),
                     rng.choice(["1A12", "1B03", "2C01"]), typ, prio, beat])  # fmt: skip
    rows.sort(key=lambda r: calls[r[0]]["opened"])
    paths = [tmp / "cad_2009_2010.csv", tmp / "cad_2011_2012.csv"]
    head = [
        "Incident",
        "Date",
        "Received",
        "Dispatched",
        "Arrived",
        "Cleared",
        "Units",
        "Type",
        "Priority",
        "Beat",
    ]
    for p, part in zip(paths, (rows[:320], rows[270:]), strict=True):
        _write(p, head, part)
    return paths, calls


def _stops(tmp: Path, rng: random.Random) -> tuple[Path, list[dt.datetime]]:
    """2013-2016 in epoch milliseconds (UTC); 30 rows written twice."""
    rows, times = [], []
    lo = dt.datetime(2013, 1, 1, tzinfo=dt.UTC).timestamp()
    for i in range(800):
        t = dt.datetime.fromtimestamp(lo + rng.uniform(0, 4 * 365 * 86400), dt.UTC).replace(microsecond=0)
        reason = rng.choice(["RED", "BELT", "PHONE", "OTHER"])
        plate = f"{rng.randrange(100, 999)}ABC04"
        rows.append([str(int(t.timestamp() * 1000)), f"AKT-{i % 9}", reason, plate, "50.28", "57.17"])
        times.append(t)
    rows += rows[100:130]
    path = tmp / "stops_2013_2016.csv"
    _write(path, ["stop_time_ms", "unit", "reason", "plate", "lat", "lon"], rows)
    return path, times


def _replay(settings, path: Path, mapping: Path) -> str:
    r = CliRunner().invoke(cli, ["replay", str(path), "--mapping", str(mapping), "--historical"],
                           env=settings.to_env())  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "rejected 0" in r.output, r.output
    return r.output


def _q(values: list[float], q: float) -> float:
    """Inclusive percentile, as quantileExactInclusive (and NENA's, Excel's PERCENTILE.INC)."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def test_pages_equal_the_files_in_any_order_beside_the_live_feed(
    settings_factory, start_service, monkeypatch, tmp_path
):
    settings = settings_factory(
        earliest_event_date=dt.date(2005, 1, 1), retention_raw_days=8800, retention_aggregate_days=8800,
    )  # fmt: skip
    rng = random.Random(25)
    cfs_files, cfs = _calls_for_service(tmp_path, rng)
    cad_files, cad = _cad_log(tmp_path, rng)
    stops_file, stop_times = _stops(tmp_path, rng)
    maps = {}
    for name, text in (("cfs", CFS_MAPPING), ("cad", CAD_MAPPING), ("stops", STOPS_MAPPING)):
        maps[name] = tmp_path / f"{name}.toml"
        maps[name].write_text(text)

    migrate(settings)
    start_service(WORKER, settings, "worker")
    start_service(JOIN, settings, "join", env={"DOZOR_WORKER_WEB_PORT": str(free_port())})
    live = [sys.executable, "-m", "dozor", "simulate", "--rate", "20"]
    sim = start_service(live, settings, "simulator")  # the live feed, every city, beside the imports
    # Newest first, every export: the join must not judge history by the live clock.
    _replay(settings, stops_file, maps["stops"])
    for f in reversed(cad_files):
        _replay(settings, f, maps["cad"])
    for f in reversed(cfs_files):
        _replay(settings, f, maps["cfs"])

    c = connect(settings)
    reader = connect(settings, reader=True)
    responded = sum(1 for x in cad.values() if x["assigned"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        opened = c.command(f"SELECT count() FROM incident_events WHERE city = '{CITY}' AND status = 'opened' "
                           "AND event_time < '2013-01-01'")  # fmt: skip
        records = c.command(
            "SELECT count() FROM incident_response_latest FINAL "
            f"WHERE city = '{CITY}' AND opened_at < '2013-01-01'"
        )
        stops = c.command(
            f"SELECT count() FROM violations WHERE city = '{CITY}' AND event_time < '2017-01-01'"
        )
        if (opened, records, stops) == (len(cfs) + len(cad), responded, len(stop_times)):
            break
        time.sleep(1)
    assert (opened, records, stops) == (len(cfs) + len(cad), responded, len(stop_times))

    area = Area(CITY)
    tz = "Asia/Aqtobe"
    # Incidents opened per local day and per weekday × hour, both exports of calls, each call once.
    start, end = dt.date(2006, 11, 1), dt.date(2007, 3, 31)  # across the two exports' overlap
    series = queries.daily_series(reader, ANALYST, area, start, end, "incidents", tz)
    truth_days = Counter(x["opened"].date() for x in cfs.values() if start <= x["opened"].date() <= end)
    assert {d: n for d, n, _ in series if n} == dict(truth_days)
    heat = queries.heatmap(reader, ANALYST, area, dt.date(2005, 1, 1), dt.date(2008, 12, 31), "incidents", tz)
    truth_heat = Counter((x["opened"].isoweekday(), x["opened"].hour) for x in cfs.values())
    assert heat == dict(truth_heat)
    per_district = queries.district_totals(reader, ANALYST, CITY, dt.date(2005, 1, 1), dt.date(2012, 12, 31),
                                           "incidents", tz)  # fmt: skip
    assert per_district == dict(Counter(BEATS[x["beat"]] for x in [*cfs.values(), *cad.values()]))
    # CompStat's categories as of a day, by the definition of its periods.
    day = dt.date(2008, 6, 30)
    periods = queries.periods(day)
    rows = {(r.family, r.key): r for r in queries.compstat(reader, ANALYST, area, day, tz)}
    for p, (lo, hi) in periods.items():
        truth = Counter(TYPES[x["type"]] for x in cfs.values() if lo <= x["opened"].date() <= hi)
        for cat, n in truth.items():
            assert rows[("category", cat)].n(p) == n, (p, cat)

    # Response times of the CAD log: every call counted, each moment's percentiles from the file.
    lo, hi = dt.date(2009, 1, 1), dt.date(2012, 12, 31)
    stats = {s.key: s for s in queries.response_stats(reader, ANALYST, area, lo, hi, "priority", tz)}
    for prio in sorted({x["prio"] for x in cad.values()}):
        group = [x for x in cad.values() if x["prio"] == prio]
        s = stats[str(prio)]
        assign = [(x["assigned"] - x["opened"]).total_seconds() for x in group]
        arrive = [(x["arrived"] - x["opened"]).total_seconds() for x in group if x["arrived"]]
        assert (s.calls, s.assigned, s.arrived) == (len(group), len(assign), len(arrive))
        assert s.closed == sum(1 for x in group if x["cleared"])
        assert s.assign_s[0] == pytest.approx(_q(assign, 0.5)) and s.assign_s[1] == pytest.approx(
            _q(assign, 0.9)
        )
        assert s.arrive_s[0] == pytest.approx(_q(arrive, 0.5)) and s.arrive_s[1] == pytest.approx(
            _q(arrive, 0.9)
        )

    # Stops per local day and by type.
    vs = queries.daily_series(
        reader, ANALYST, area, dt.date(2013, 1, 1), dt.date(2016, 12, 31), "violations", tz
    )
    assert {d: n for d, n, _ in vs if n} == dict(Counter(x.astimezone(ZONE).date() for x in stop_times))
    by_type = {r.key: r.n("ytd") for r in queries.compstat(reader, ANALYST, area, dt.date(2016, 12, 31), tz)
               if r.family == "violations" and r.key}  # fmt: skip
    truth_2016 = Counter(
        k
        for k, x in zip(_kinds_in_order(stops_file), stop_times, strict=True)
        if x.astimezone(ZONE).year == 2016
    )
    assert by_type == dict(truth_2016)

    # The incidents page's own CSV, for one month of the CAD log: every call, its local times.
    month_lo, month_hi = dt.date(2011, 3, 1), dt.date(2011, 3, 31)
    served: list[bytes] = []
    real = st.download_button

    def capture(label, data, *args, **kwargs):
        if kwargs.get("key") == "dozor_inc_csv":
            served.append(data)
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", capture)
    at = page_as(settings, monkeypatch, ANALYST, APP, timeout_s=90, lang="en", city=CITY, range="custom",
                 **{"from": month_lo.isoformat(), "to": month_hi.isoformat()})  # fmt: skip
    at.switch_page("app_pages/incidents.py")
    at.run()
    assert not at.exception, at.exception
    got = {r[t("col_id", "en")]: r for r in csv.DictReader(io.StringIO(served[-1].decode("utf-8-sig")))}
    want = {k: x for k, x in cad.items() if month_lo <= x["opened"].date() <= month_hi}
    assert set(got) == set(want)
    for k, x in want.items():
        assert got[k][t("col_opened", "en")] == f"{x['opened']:%Y-%m-%d %H:%M:%S}"
        arrival = "" if x["arrived"] is None else f"{x['arrived']:%Y-%m-%d %H:%M:%S}"
        assert got[k][t("col_arrival", "en")] == arrival

    # dozor verify accounts for every message and for the join, once the live feed is stopped
    # and what it sent is through.
    sim.stop()
    r = poll(lambda: CliRunner().invoke(cli, ["verify"], env=settings.to_env()),
             lambda r: "every one has its response record" in r.output, 120)  # fmt: skip
    assert r.exit_code == 0 and "every one has its response record" in r.output, r.output


def _kinds_in_order(path: Path) -> list[str]:
    kinds = {"RED": "red_light", "BELT": "no_seat_belt", "PHONE": "phone_use"}
    with path.open() as f:
        rows = list(csv.DictReader(f))[:800]  # the repeated rows at the end are the same stops
    return [kinds.get(r["reason"], "stop_line") for r in rows]
