"""Replay maps any of the three formats the same way and reports every row it refuses, with why."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dozor.producers.replay import Mapping, MappingError, map_rows, read_rows, replay
from tests.helpers.examples import EXAMPLES, MAPPING, SAMPLE


def _sent(path: Path, mapping: Mapping) -> tuple[list[tuple[bytes, bytes]], object]:
    out: list[tuple[bytes, bytes]] = []
    report = replay(path, mapping, lambda family, k, v: out.append((k, v)), "salt", progress=False)
    return out, report


def test_sample_csv_sends_valid_rows_and_reports_the_rest():
    sent, report = _sent(SAMPLE, Mapping.load(MAPPING))
    assert report.read == 10 and report.sent == {"violations": 6}
    assert dict(report.rejected) == {
        "schema": 1, "bad_position": 1, "unmappable": 1, "unknown_city": 1
    }  # fmt: skip
    first = orjson.loads(sent[0][1])
    assert first["city"] == "astana" and first["district"] == "yesil"
    assert first["violation_type"] == "speeding" and first["speed_kmh"] == 94
    assert first["event_time"] == "2026-11-23T03:01:12Z", "local UTC+5 time must become UTC"
    assert sent[0][0] == b"AST-0142", "violations are keyed by camera"
    for _, value in sent:
        assert b"ABC" not in value and b"KZA" not in value, "raw plates must never be sent"


@pytest.fixture
def same_rows_three_ways(tmp_path) -> list[Path]:
    rows = list(read_rows(SAMPLE))
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    parquet = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    return [SAMPLE, jsonl, parquet]


def test_csv_jsonl_and_parquet_give_the_same_events(same_rows_three_ways):
    mapping = Mapping.load(MAPPING)
    results = [
        [(m.reason, m.value) for m in map_rows(read_rows(p), mapping, "salt", source="s")]
        for p in same_rows_three_ways
    ]
    assert results[0] == results[1] == results[2]


def test_ids_are_derived_stably_when_the_file_has_none(tmp_path):
    text = MAPPING.read_text().replace('event_id = "ID нарушения"\n', "")
    mapping_path = tmp_path / "m.toml"
    mapping_path.write_text(text)
    mapping = Mapping.load(mapping_path)
    a, _ = _sent(SAMPLE, mapping)
    b, _ = _sent(SAMPLE, mapping)
    ids = [orjson.loads(v)["event_id"] for _, v in a]
    assert ids == [orjson.loads(v)["event_id"] for _, v in b]
    assert len(set(ids)) == len(ids)


def test_bad_mapping_names_what_is_wrong(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('family = "violations"\n[columns]\nspeed = "x"\n')
    with pytest.raises(MappingError, match="unknown fields: speed"):
        Mapping.load(p)
    p.write_text('family = "tickets"\n[columns]\ncity = "x"\n')
    with pytest.raises(MappingError, match="family must be one of"):
        Mapping.load(p)


def test_missing_column_is_reported_per_row(tmp_path):
    f = tmp_path / "x.csv"
    with f.open("w", newline="") as fh:
        csv.writer(fh).writerows([["a"], ["1"]])
    [m] = list(map_rows(read_rows(f), Mapping.load(MAPPING), "salt"))
    assert m.reason == "unmappable" and "is not in the file" in m.detail


def test_original_pace_sleeps_between_events(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    replay(SAMPLE, Mapping.load(MAPPING), lambda family, k, v: None, "salt", speed=60, progress=False)
    # Sleeping is mocked, so each wait is the time from the start to that row's due moment: the
    # last sent row (08:04:30) is 198 s of event time after the first, 3.3 s at 60×.
    assert slept == sorted(slept)
    assert abs(slept[-1] - 198 / 60) < 0.2


def test_a_number_in_a_time_cell_needs_its_unit(tmp_path):
    """Epoch milliseconds read as seconds land in the year 55000; read as text, in 1704: neither
    may pass silently."""
    f = tmp_path / "x.csv"
    f.write_text("t,cam,city,lat,lon,type,plate\n1704090050000,C1,astana,51.1,71.4,red_light,123ABC01\n")
    m = tmp_path / "m.toml"
    body = ('family = "violations"\n[columns]\nevent_time = "t"\ncamera_id = "cam"\ncity = "city"\n'
            'lat = "lat"\nlon = "lon"\nviolation_type = "type"\nplate = "plate"\n')  # fmt: skip
    m.write_text(body)
    [row] = list(map_rows(read_rows(f), Mapping.load(m), "salt"))
    assert row.reason == "unmappable" and "epoch_ms" in row.detail
    m.write_text(body + '[time]\nformat = "epoch_ms"\n')
    [row] = list(map_rows(read_rows(f), Mapping.load(m), "salt"))
    assert row.reason is None and row.payload["event_time"] == "2024-01-01T06:20:50Z"


def test_mapping_mistakes_are_named(tmp_path):
    p = tmp_path / "m.toml"
    for body, message in [
        ('family = "cad"\n[columns]\nunits = "u"\n', "needs opened_at"),
        ('family = "cad"\n[columns]\nopened_at = "t"\n[cad]\nclose_at = "never"\n', "close_at must be"),
        ('family = "violations"\nskip_if_empty = ["city"]\n[columns]\nevent_time = "t"\n', "skip_if_empty"),
        (
            'family = "violations"\n[columns]\nevent_time = "t"\n[time]\nformat = "DD.MM.YYYY"\n',
            "cannot be parsed",
        ),
    ]:
        p.write_text(body)
        with pytest.raises(MappingError, match=message):
            Mapping.load(p)


def test_a_position_is_optional_but_never_half(tmp_path):
    """Many CAD exports carry no coordinates: the call is still an incident of its district. One
    coordinate without the other places nothing and is refused."""
    f = tmp_path / "calls.csv"
    f.write_text(
        "id,at,type,prio,district,lat,lon\n"
        "A-1,2024-03-01 08:00:00,BURG,2,yesil,,\n"
        "A-2,2024-03-01 08:05:00,BURG,2,nura,51.1,\n"
        "A-3,2024-03-01 08:10:00,BURG,2,almaty,51.14,71.50\n"
    )
    m = tmp_path / "m.toml"
    m.write_text(
        'family = "incidents"\n[columns]\nincident_id = "id"\nevent_time = "at"\nopened_at = "at"\n'
        'category = "type"\npriority = "prio"\ndistrict = "district"\nlat = "lat"\nlon = "lon"\n'
        '[time]\nformat = "%Y-%m-%d %H:%M:%S"\n[constants]\ncity = "astana"\nstatus = "opened"\n'
        'channel = "call_102"\n[values.category]\n"*" = "theft"\n'
    )
    rows = list(map_rows(read_rows(f), Mapping.load(m), "salt"))
    assert [(r.reason, r.payload.get("lat")) for r in rows] == [(None, None), ("schema", 51.1), (None, 51.14)]
    assert "lat and lon come together" in rows[1].detail


def test_a_department_s_own_areas_are_loaded_as_data_and_unknown_ones_reported(tmp_path):
    """The beats come from the department's GeoJSON with its own ids: a call without a beat column
    gets the beat holding its position; a named beat the file lacks is reported and kept as given
    (never moved); a district name that is no district of the city is reported too."""
    import shutil

    from shapely import contains_xy
    from shapely.geometry import shape

    beats_file = EXAMPLES / "astana_beats.geojson"
    shutil.copy(beats_file, tmp_path / "beats.geojson")
    beats = {
        f["properties"]["BEAT"]: shape(f["geometry"])
        for f in orjson.loads(beats_file.read_bytes())["features"]
    }
    calls = [("C-1", 51.0951, 71.4190, "yesil"), ("C-2", 51.1448, 71.5012, "almaty"),
             ("C-3", 51.3000, 71.9000, "yesil"), ("C-4", 51.1799, 71.3911, "Тёмная сторона")]  # fmt: skip
    f = tmp_path / "calls.csv"
    f.write_text(
        "id,at,lat,lon,district\n" + "".join(f"{i},2024-03-01 08:00:00,{a},{o},{d}\n" for i, a, o, d in calls)
    )
    m = tmp_path / "m.toml"
    body = ('family = "incidents"\n[columns]\nincident_id = "id"\nevent_time = "at"\nopened_at = "at"\n'
            'lat = "lat"\nlon = "lon"\ndistrict = "district"\n{extra}[time]\nformat = "%Y-%m-%d %H:%M:%S"\n'
            '[constants]\ncity = "astana"\nstatus = "opened"\nchannel = "call_102"\ncategory = "theft"\n'
            'priority = 2\n[areas]\nfile = "beats.geojson"\nid = "BEAT"\n')  # fmt: skip
    m.write_text(body.format(extra=""))
    report = replay(f, Mapping.load(m), None, "salt", progress=False)
    rows = list(map_rows(read_rows(f), Mapping.load(m), "salt"))
    truth = [next((b for b, g in beats.items() if contains_xy(g, lon, lat)), "") for _, lat, lon, _ in calls]
    assert truth[:2] == ["B1", "B3"] and truth[2] == ""
    assert [r.payload["source_area"] for r in rows] == truth
    assert report.unplaced == 1 and "1 calls lie in no area of beats.geojson" in report.summary()
    assert report.unknown_districts == {"Тёмная сторона": 1}, "stored without a district, not moved"

    f.write_text(f.read_text().replace("id,at", "id,beat,at").replace("C-1,", "C-1,B1,").replace(
        "C-2,", "C-2,B9,").replace("C-3,", "C-3,,").replace("C-4,", "C-4,B2,"))  # fmt: skip
    m.write_text(body.format(extra='source_area = "beat"\n'))
    report = replay(f, Mapping.load(m), None, "salt", progress=False)
    rows = list(map_rows(read_rows(f), Mapping.load(m), "salt"))
    assert [r.payload["source_area"] for r in rows] == ["B1", "B9", "", "B2"], "a named beat is kept as given"
    assert report.unknown_areas == {"B9": 1} and "'B9' ×1" in report.summary()


def test_a_bad_areas_table_is_named(tmp_path):
    m = tmp_path / "m.toml"
    m.write_text(
        'family = "incidents"\n[columns]\nincident_id = "id"\n[areas]\nfile = "none.geojson"\nid = "BEAT"\n'
    )
    with pytest.raises(MappingError, match=r"\[areas\] none.geojson"):
        Mapping.load(m)
    point = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [71, 51]}}
    (tmp_path / "x.geojson").write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [point]}))
    m.write_text(
        'family = "incidents"\n[columns]\nincident_id = "id"\n[areas]\nfile = "x.geojson"\nid = "BEAT"\n'
    )
    with pytest.raises(MappingError, match="has no 'BEAT' property"):
        Mapping.load(m)


def test_the_progress_bar_knows_the_rows_ahead(same_rows_three_ways):
    """The ETA needs the row count before the first row is mapped, in each format."""
    from dozor.producers.replay import count_rows

    expected = len(list(read_rows(same_rows_three_ways[0])))
    assert expected > 1
    assert [count_rows(p) for p in same_rows_three_ways] == [expected] * 3
