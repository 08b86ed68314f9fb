"""Importing exports shaped like real departments' ones, with only a mapping file: a CAD call log
(one row per call, date and times in separate columns, several moments, unit lists, calls past
midnight, rows that look alike, calls never closed, years before 2020) and a camera export in epoch
milliseconds. Every figure is checked against a truth computed here from the file itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from dozor.cli import cli
from dozor.clickhouse import connect
from dozor.infra.migrate import migrate
from dozor.producers.replay import Mapping, map_rows, read_rows
from tests.helpers.examples import CAD_MAPPING, EXAMPLES
from tests.helpers.ports import free_port
from tests.helpers.schema_consumer import read_topic
from tests.helpers.stack import JOIN, WORKER

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Almaty")
HEADER = ["Incident Number", "Date", "Received", "Dispatched", "Arrived", "Cleared", "Units", "Call Type",
          "Priority", "Source", "Lat", "Lon", "Beat"]  # fmt: skip
BEATS = {"B1": (51.0951, 71.4190), "B2": (51.1799, 71.3911), "B3": (51.1448, 71.5012)}


def _cad_export(path: Path, calls: int, first: dt.date, days: int, seed: int = 3) -> list[dict]:
    """A CAD log as departments write it: local wall-clock date + HH:MM columns, no zone; the truth
    of each call (its moments as local datetimes) is kept beside the file."""
    rng = random.Random(seed)
    truth = []
    rows = []
    for i in range(calls):
        day = first + dt.timedelta(days=rng.randrange(days))
        received = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
        if i % 50 == 0:
            received = dt.datetime.combine(day, dt.time(23, 50 + rng.randrange(10)))  # runs past midnight
        dispatched = received + dt.timedelta(minutes=rng.randint(1, 9))
        arrived = dispatched + dt.timedelta(minutes=rng.randint(3, 40)) if i % 7 else None
        cleared = (arrived or dispatched) + dt.timedelta(minutes=rng.randint(10, 90)) if i % 11 else None
        units = rng.sample(["1A12", "1B03", "2C01", "1A07"], k=rng.randint(1, 2))
        beat = rng.choice(list(BEATS))
        call_type = rng.choice(["BURG", "ACC", "DOM", "NOISE", "WELFARE"])
        prio = rng.choice(["E", "1", "2", "3"])
        number = f"{received:%y}-{i:06d}" if i % 97 else ""  # a few calls without a number
        row = [number, f"{received:%m/%d/%y}", f"{received:%H:%M}", f"{dispatched:%H:%M}",
               "" if arrived is None else f"{arrived:%H:%M}", "" if cleared is None else f"{cleared:%H:%M}",
               ", ".join(units), call_type, prio, "911", *map(str, BEATS[beat]), beat]  # fmt: skip
        rows.append(row)
        truth.append({"id": number, "received": received, "dispatched": dispatched, "arrived": arrived,
                      "cleared": cleared, "units": units, "type": call_type, "prio": prio,
                      "beat": beat})  # fmt: skip
    # Two distinct calls that look alike after mapping (same minute, type, place, unit): two events.
    rows.append(list(rows[1]))
    rows[-1][0] = ""
    rows.append(list(rows[-1]))
    truth += [dict(truth[1], id=""), dict(truth[1], id="")]
    # In time order, as CAD systems write their logs (the join keeps an incident a day: replay
    # warns about a file that is not).
    order = sorted(range(len(rows)), key=lambda i: truth[i]["received"])
    rows, truth = [rows[i] for i in order], [truth[i] for i in order]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return truth


def _utc(local: dt.datetime) -> dt.datetime:
    return local.replace(tzinfo=ZONE).astimezone(dt.UTC)


def _opened_by(client, columns: str) -> Counter:  # noqa: ANN001
    """Opened incidents stored, counted by two expressions of ``columns`` (fixed text, no input)."""
    sql = f"SELECT {columns}, count() FROM incident_events WHERE status = 'opened' GROUP BY 1, 2"  # noqa: S608
    return Counter({(a, b): n for a, b, n in client.query(sql).result_rows})


def test_a_cad_row_becomes_its_incident_its_dispatches_and_its_closure(tmp_path):
    path = tmp_path / "calls.csv"
    truth = _cad_export(path, 400, dt.date(2016, 1, 1), 365 * 4)
    mapping = Mapping.load(CAD_MAPPING)
    early = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    events = [m for m in map_rows(read_rows(path), mapping, "salt", source=path.name, earliest=early)]
    assert not [m for m in events if m.reason], [m for m in events if m.reason][:3]
    by_row: dict[int, list] = {}
    for m in events:
        by_row.setdefault(m.row_number, []).append(m.payload)
    assert len(by_row) == len(truth)
    for n, call in enumerate(truth, 1):
        got = by_row[n]
        opened = got[0]
        assert opened["status"] == "opened"
        assert dt.datetime.fromisoformat(opened["event_time"]) == _utc(call["received"])
        moments = [
            ("assigned", call["dispatched"]),
            ("on_scene", call["arrived"]),
            ("cleared", call["cleared"]),
        ]
        expected = [(u, s, _utc(t)) for u in call["units"] for s, t in moments if t is not None]
        dispatches = [(d["unit_id"], d["status"], dt.datetime.fromisoformat(d["event_time"]))
                      for d in got if "unit_id" in d]  # fmt: skip
        assert dispatches == expected
        closures = [d for d in got if d.get("status") == "closed"]
        assert len(closures) == (call["cleared"] is not None)
        if call["arrived"] is not None:
            arrived = min(t for _, s, t in dispatches if s == "on_scene")
            assert arrived >= _utc(call["received"]), "a time past midnight is on the next day"
    ids = [m.payload["event_id"] for m in events]
    assert len(set(ids)) == len(ids), "rows that look alike stay distinct events"
    again = [m.payload["event_id"] for m in map_rows(read_rows(path), mapping, "salt", source=path.name,
                                                         earliest=early)]  # fmt: skip
    assert again == ids, "the same file gives the same ids"


def test_epoch_milliseconds_are_read_as_such_and_the_filter_and_default_are_reported():
    r = CliRunner().invoke(cli, ["replay", str(EXAMPLES / "camera_epoch_ms.csv"), "--mapping",
                                 str(EXAMPLES / "camera_epoch_ms.toml"), "--dry-run"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "read 5 rows, would send 4 events (4 violations), rejected 0, skipped 1" in r.output
    assert "events from 2024-01-01 06:20 to 2024-01-01 06:25 UTC" in r.output  # 1704090050000 ms
    assert "violation_type: 1 values fell to the default: 'STP' ×1" in r.output
    mapping = Mapping.load(EXAMPLES / "camera_epoch_ms.toml")
    rows = list(map_rows(read_rows(EXAMPLES / "camera_epoch_ms.csv"), mapping, "salt", source="cam.csv"))
    # The file repeats a row (as overlapping exports do): one violation, known by what it is —
    # city, camera, time, type and plate — not by where it stands in the file.
    assert rows[0].payload["event_id"] == rows[1].payload["event_id"]
    assert len({m.payload["event_id"] for m in rows if m.payload}) == 3
    assert all(b"123ABC01" not in m.value for m in rows), "the raw plate is never sent"


def test_a_multi_year_cad_export_before_2020_is_imported_exactly(settings_factory, start_service, tmp_path):
    settings = settings_factory(earliest_event_date=dt.date(2015, 1, 1))
    path = tmp_path / "cad_2017_2023.csv"
    truth = _cad_export(path, 1500, dt.date(2017, 1, 1), 365 * 7, seed=8)
    env = settings.to_env()
    migrate(settings)
    start_service(WORKER, settings, "worker")
    start_service(JOIN, settings, "join", env={"DOZOR_WORKER_WEB_PORT": str(free_port())})
    r = CliRunner().invoke(cli, ["replay", str(path), "--mapping", str(CAD_MAPPING)], env=env)
    assert r.exit_code == 0, r.output
    assert f"read {len(truth)} rows" in r.output and "rejected 0" in r.output
    assert "WARNING" not in r.output

    c = connect(settings)
    # Response times from the first assignment (v2): a call a unit was sent to has them even if the
    # export never closed it (nor anyone reached it); a call closed unassigned has its closure only.
    closed = [t for t in truth if t["cleared"] is not None]
    arrived = [t for t in truth if t["arrived"] is not None]
    responded = sum(1 for t in truth if t["cleared"] or t["arrived"] or t["dispatched"])
    open_arrived = sum(1 for t in truth if t["cleared"] is None and (t["arrived"] or t["dispatched"]))
    assert sum(1 for t in arrived if t["cleared"] is None) > 0, (
        "the export must have calls reached, never closed"
    )
    # Until every call is stored and every call's latest response record has its arrival and its
    # closure: the join reads the two topics at its own pace, so an arrival may come in a later
    # revision than the closure's first one.
    want = (len(truth), responded, len(arrived), open_arrived, len(closed))
    deadline = time.monotonic() + 240
    counts = (0, 0, 0, 0, 0)
    while time.monotonic() < deadline:
        n = c.command("SELECT count() FROM incident_events WHERE status = 'opened'")
        counts = (n, *c.query(
            "SELECT count(), countIf(a IS NOT NULL), countIf(s = 'open'), countIf(s != 'open') FROM (SELECT "
            "incident_id, "
            "argMax(time_to_arrival_s, revision) AS a, argMax(status, revision) AS s "
            "FROM incident_responses GROUP BY incident_id)"
        ).result_rows[0])  # fmt: skip
        if counts == want:
            break
        time.sleep(1)
    assert counts == want
    # Counts per local day and hour, in the source's zone, as the file says.
    per_hour = Counter((_utc(t["received"]).astimezone(ZONE).date(), t["received"].hour) for t in truth)
    assert _opened_by(c, "toDate(event_time, 'Asia/Almaty'), toHour(event_time, 'Asia/Almaty')") == per_hour
    # The CAD's own call types and beats are kept beside Dozor's category and district.
    codes = Counter((t["type"], t["beat"]) for t in truth)
    assert _opened_by(c, "source_code, source_area") == codes
    years = Counter(t["received"].year for t in truth)
    assert min(years) == 2017 and len(years) >= 7
    # Response times: arrival minus received (the next day past midnight), p90 by priority.
    prio = {"E": 1, "1": 2, "2": 3, "3": 4}
    arrivals: dict[int, list[float]] = {}
    for t in arrived:
        arrivals.setdefault(prio[t["prio"]], []).append((t["arrived"] - t["received"]).total_seconds())
    got = dict(c.query(
        "SELECT priority, quantileExactInclusive(0.9)(a) FROM (SELECT incident_id, "
        "argMax(priority, revision) AS priority, argMax(time_to_arrival_s, revision) AS a "
        "FROM incident_responses GROUP BY incident_id) WHERE a IS NOT NULL GROUP BY priority"
    ).result_rows)  # fmt: skip
    for p, values in arrivals.items():
        assert got[p] == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[8], abs=1e-6)
    # Dispatch delay: the first unit assigned after the call was received.
    delays = sorted((t["dispatched"] - t["received"]).total_seconds() for t in truth)
    stored_delays = sorted(
        float(x) for (x,) in c.query(
            "SELECT dateDiff('millisecond', any(i.opened_at), min(d.event_time)) / 1000 "
            "FROM dispatch_events AS d INNER JOIN (SELECT incident_id, min(opened_at) AS opened_at "
            "FROM incident_events GROUP BY incident_id) AS i ON d.incident_id = i.incident_id "
            "WHERE d.status = 'assigned' GROUP BY d.incident_id"
        ).result_rows
    )  # fmt: skip
    assert stored_delays == delays


def test_a_file_out_of_time_order_is_warned_about_before_response_times_are_lost(tmp_path):
    from dozor.producers.replay import replay

    path = tmp_path / "calls.csv"
    truth = _cad_export(path, 200, dt.date(2021, 1, 1), 60)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")  # newest first
    report = replay(path, Mapping.load(CAD_MAPPING), None, "salt", progress=False)
    # Every call opened more than a day before the newest one already read comes too late.
    newest = max(t["received"] for t in truth)
    late_calls = sum(1 for t in truth if t["received"] < newest - dt.timedelta(hours=24))
    assert report.out_of_order >= late_calls > 0
    assert "sort the file by time first" in report.summary(dry_run=True)


def test_a_historical_import_is_stored_exactly_and_raises_no_live_alerts(
    settings_factory, start_service, tmp_path
):
    # The default setting refuses events before 2020; --historical accepts any date the engine
    # stores, for the import alone. History is figures, not news: no waiting or spike alerts, and
    # no live city figures for minutes years ago.
    path = tmp_path / "cad_2009_2016.csv"
    truth = _cad_export(path, 500, dt.date(2009, 1, 1), 365 * 8, seed=12)
    replay_cmd = ["replay", str(path), "--mapping", str(CAD_MAPPING)]
    default = settings_factory().to_env()
    plain = CliRunner().invoke(cli, [*replay_cmd, "--dry-run"], env=default)
    assert plain.exit_code == 0 and "bad_time" in plain.output, "without --historical, 2009 is refused"
    # Ten years' retention by default: what is older would be stored, then deleted by the TTL.
    # It is refused as expired instead, and says which setting keeps it.
    kept = CliRunner().invoke(cli, [*replay_cmd, "--dry-run", "--historical"], env=default)
    ten_years_ago = dt.datetime.now() - dt.timedelta(days=3650)
    older = sum(1 for t in truth if t["received"] < ten_years_ago - dt.timedelta(days=1))
    assert older > 100 and "expired" in kept.output and "DOZOR_RETENTION_" in kept.output, kept.output
    settings = settings_factory(
        arrival_target_minutes={1: 5, 2: 10, 3: 15, 4: 20},
        retention_raw_days=7300,
        retention_aggregate_days=7300,
    )
    env = settings.to_env()
    migrate(settings)
    start_service(WORKER, settings, "worker")
    start_service(JOIN, settings, "join", env={"DOZOR_WORKER_WEB_PORT": str(free_port())})
    r = CliRunner().invoke(cli, [*replay_cmd, "--historical"], env=env)
    assert r.exit_code == 0, r.output
    assert f"read {len(truth)} rows" in r.output and "rejected 0" in r.output

    c = connect(settings)
    # Every call a unit was sent to, reached or closed has its response record (v2 from the assignment).
    responded = sum(1 for t in truth if t["cleared"] or t["arrived"] or t["dispatched"])
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        stored = c.query(
            "SELECT (SELECT count() FROM incident_events WHERE status = 'opened'),"
            " (SELECT uniqExact(incident_id) FROM incident_responses)"
        ).result_rows[0]
        if stored == (len(truth), responded):
            break
        time.sleep(1)
    assert stored == (len(truth), responded)
    # Counts per local day, as the file says, across the eight years.
    per_day = Counter(t["received"].date() for t in truth)
    assert _opened_by(c, "toDate(event_time, 'Asia/Almaty'), 0") == {(d, 0): n for d, n in per_day.items()}
    # The calls that waited past their target (without a unit on scene by then) would each have
    # raised an alert live: none is raised for history.
    target = {"E": 5, "1": 10, "2": 15, "3": 20}

    def in_time(t: dict, moment: str) -> bool:
        return t[moment] is not None and t[moment] - t["received"] <= dt.timedelta(minutes=target[t["prio"]])

    waited = [t for t in truth if not in_time(t, "arrived") and not in_time(t, "cleared")]
    assert len(waited) > 50
    # The join read every call (its response records are stored): it judged them, and kept quiet.
    assert c.query("SELECT count() FROM alerts").result_rows == [(0,)]
    assert read_topic(settings.kafka_bootstrap_servers, settings.topic("alerts"), "alerts.v1.json") == []
    figures = read_topic(
        settings.kafka_bootstrap_servers, settings.topic("city_figures"), "city_figures.v1.json"
    )
    assert figures == [], "no live figures for minutes years ago"
