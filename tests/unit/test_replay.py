"""Replay maps any of the three formats the same way and reports every row it refuses, with why."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dozor.producers.replay import Mapping, MappingError, map_rows, read_rows, replay
from tests.helpers.examples import MAPPING, SAMPLE


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
