"""Local time in one place, mappings checked like settings, ids from what an event is.

One test per cause of issue 25 that needs no broker: a call past midnight on a night the clocks
change, a wall-clock time that never happened or happened twice, a misspelled mapping key, an area
without geometry, the same call in two exports, a city's own day in years of two zones, and one
story of retention.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from dozor import localtime
from dozor.errors import ConfigError
from dozor.producers.replay import Mapping, MappingError, ReplayReport, map_rows, read_rows
from dozor.schemas import InvalidEvent, parse_event
from dozor.settings import Settings

CAD_HEAD = "Incident,Date,Received,Dispatched,Arrived,Units,Type,Priority,Beat\n"


def _mapping(tmp_path: Path, body: str, name: str = "m.toml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


def _cad_mapping(tmp_path: Path, tz: str = "America/Los_Angeles", extra: str = "") -> Mapping:
    return Mapping.load(_mapping(tmp_path, f"""
family = "cad"
timezone = "{tz}"
[columns]
incident_id = "Incident"
opened_at = ["Date", "Received"]
assigned_at = ["Date", "Dispatched"]
on_scene_at = ["Date", "Arrived"]
units = "Units"
category = "Type"
priority = "Priority"
source_area = "Beat"
[time]
format = "%m/%d/%y %H:%M"
roll_past_midnight = true
{extra}
[constants]
city = "astana"
channel = "call_102"
[values.category]
"*" = "other"
"""))  # fmt: skip


def _events(tmp_path: Path, mapping: Mapping, rows: str, name: str = "calls.csv", report=None) -> list:
    f = tmp_path / name
    f.write_text(CAD_HEAD + rows)
    return list(map_rows(read_rows(f), mapping, "salt", source=name, report=report,
                         earliest=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))  # fmt: skip


@pytest.mark.parametrize("day", ["03/13/22", "11/07/21"], ids=["clocks-forward", "clocks-back"])
def test_past_midnight_is_the_next_local_day_not_24_utc_hours(tmp_path, day):
    # Received 23:55, arrived 00:06 the next day, on the nights Los Angeles changes its clocks.
    events = _events(tmp_path, _cad_mapping(tmp_path), f"C-1,{day},23:55,23:58,00:06,1A,X,1,B1\n")
    assert not [e for e in events if e.reason], [e.detail for e in events if e.reason]
    opened = dt.datetime.fromisoformat(events[0].payload["opened_at"])
    arrived = next(dt.datetime.fromisoformat(e.payload["event_time"]) for e in events
                   if e.payload.get("status") == "on_scene")  # fmt: skip
    assert (arrived - opened).total_seconds() == 660


def test_a_local_time_that_never_happened_or_happened_twice_is_bad_time(tmp_path):
    mapping = _cad_mapping(tmp_path)
    gap = _events(tmp_path, mapping, "C-2,03/13/22,02:30,02:40,02:50,1A,X,1,B1\n")  # 02:00 → 03:00
    assert [e.reason for e in gap] == ["bad_time"] and "did not happen" in gap[0].detail
    twice = _events(tmp_path, mapping, "C-3,11/07/21,01:30,01:40,01:50,1A,X,1,B1\n")  # 02:00 → 01:00
    assert [e.reason for e in twice] == ["bad_time"] and "happened twice" in twice[0].detail
    # A rule chosen in the mapping, and documented: the earlier of the two.
    earlier = _cad_mapping(tmp_path, extra='ambiguous = "earlier"')
    got = _events(tmp_path, earlier, "C-3,11/07/21,01:30,01:40,01:50,1A,X,1,B1\n")
    assert got[0].payload["opened_at"] == "2021-11-07T08:30:00Z"  # PDT, UTC-7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'family = "incidents"\nskip_if_emtpy = ["city"]\n[columns]\ncity = "c"\n',
            "unknown key 'skip_if_emtpy'; did you mean skip_if_empty?",
        ),
        (
            'family = "cad"\n[columns]\nopened_at = "x"\n[time]\nroll_past_midnite = true\n',
            "unknown key 'roll_past_midnite' in [time]; did you mean time.roll_past_midnight?",
        ),
        (
            'family = "cad"\n[columns]\nopened_at = "x"\non_scene = "y"\n',
            "unknown fields: on_scene (did you mean on_scene_at?)",
        ),
        ('family = "cad"\ntimezon = "Asia/Aqtobe"\n[columns]\nopened_at = "x"\n', "did you mean timezone?"),
        (
            'family = "cad"\n[columns]\nopened_at = "x"\n[time]\nambiguous = "latest"\n',
            "time.ambiguous must be one of refuse, earlier, later",
        ),
    ],  # fmt: skip
)
def test_a_mapping_key_that_does_not_exist_is_named_with_the_closest_one(tmp_path, text, expected):
    with pytest.raises(MappingError) as e:
        Mapping.load(_mapping(tmp_path, text))
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_an_area_without_geometry_is_known_by_id_and_holds_no_position(tmp_path):
    beats = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"BEAT": "B1"}, "geometry": None},
        {"type": "Feature", "properties": {"BEAT": "B2"}, "geometry": {
            "type": "Polygon",
            "coordinates": [[[71.3, 51.0], [71.6, 51.0], [71.6, 51.3], [71.3, 51.3], [71.3, 51.0]]]}},
    ]}  # fmt: skip
    (tmp_path / "beats.geojson").write_text(json.dumps(beats))
    mapping = _cad_mapping(tmp_path, tz="Asia/Almaty", extra='[areas]\nfile = "beats.geojson"\nid = "BEAT"')
    assert mapping.areas is not None and mapping.areas.without_geometry == ["B1"]
    report = ReplayReport()
    events = _events(tmp_path, mapping, "C-4,01/05/24,10:01,10:05,10:11,1A,X,1,B1\n", report=report)
    assert not [e for e in events if e.reason] and not report.unknown_areas
    assert mapping.areas.area_at(51.1, 71.4) == "B2"
    assert "B1" in report.summary() and "no geometry" in report.summary()


def test_the_same_call_in_two_exports_is_the_same_events(tmp_path):
    mapping = _cad_mapping(tmp_path, tz="Asia/Almaty")
    row = "C-5,01/05/24,10:01,10:05,10:11,1A,X,1,B1\n"
    monday = _events(tmp_path, mapping, "C-0,01/04/24,09:00,09:01,09:02,1A,X,1,B1\n" + row, "monday.csv")
    tuesday = _events(tmp_path, mapping, row, "tuesday.csv")
    ids = lambda events: [e.payload["event_id"] for e in events if e.payload["incident_id"] == "C-5"]  # noqa: E731
    assert ids(monday) == ids(tuesday) and len(ids(tuesday)) == 3  # opened, assigned, on scene
    # A call without its own number is known by its file and row: two such rows stay two calls.
    nameless = _events(tmp_path, mapping, ",01/05/24,10:01,,,,X,1,B1\n,01/05/24,10:01,,,,X,1,B1\n", "x.csv")
    assert len({e.payload["event_id"] for e in nameless}) == 2


def test_a_citys_day_is_its_own_for_the_period():
    # 18:30 UTC on 2023-06-01: Astana (UTC+6 then) is already in 2 June, Aktobe (UTC+5) is not.
    t = dt.datetime(2023, 6, 1, 18, 30, tzinfo=dt.UTC)
    assert localtime.local_day(t, "astana") == dt.date(2023, 6, 2)
    assert localtime.local_day(t, "aktobe") == dt.date(2023, 6, 1)
    # One zone since 1 March 2024.
    t = dt.datetime(2024, 6, 1, 18, 30, tzinfo=dt.UTC)
    assert localtime.local_day(t, "astana") == localtime.local_day(t, "aktobe") == dt.date(2024, 6, 1)
    lo, hi = localtime.day_bounds("astana", dt.date(2024, 2, 29), dt.date(2024, 3, 1))
    assert (lo.hour, hi.hour) == (18, 19), "the day the clocks moved: 2024-02-28T18Z to 2024-03-01T19Z"


def test_every_zone_is_whole_hours_so_hourly_rollups_hold_every_local_day():
    names = {*localtime.CITY_ZONES.values(), *localtime.REGION_ZONES.values(), localtime.DEFAULT_ZONE}
    for name in names:
        z = ZoneInfo(name)
        t = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        while t.year < 2030:
            assert t.astimezone(z).utcoffset().total_seconds() % 3600 == 0, (name, t)
            t += dt.timedelta(days=7)


def test_retention_is_one_story():
    with pytest.raises(ConfigError, match="DOZOR_RETENTION_AGGREGATE_DAYS .* DOZOR_RETENTION_RAW_DAYS"):
        Settings(retention_raw_days=8000)
    Settings(retention_raw_days=8000, retention_aggregate_days=8000)
    old = {
        "event_id": "00000000-0000-4000-8000-000000000009", "schema_version": 1,
        "event_time": "2006-01-05T10:00:00Z", "incident_id": "X", "status": "opened", "channel": "call_102",
        "category": "theft", "priority": 2, "city": "astana", "opened_at": "2006-01-05T10:00:00Z",
    }  # fmt: skip
    with pytest.raises(InvalidEvent) as e:
        parse_event("incidents", orjson.dumps(old), earliest=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                    retained_since=dt.datetime(2016, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    assert e.value.reason == "expired"
    assert "DOZOR_RETENTION_RAW_DAYS" in e.value.detail and "DOZOR_RETENTION_AGGREGATE_DAYS" in e.value.detail
