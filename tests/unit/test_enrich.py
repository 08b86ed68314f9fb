"""Enrichment: one id per place whatever the spelling, districts from coordinates, fines in MCI."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path

import orjson
import pytest
from shapely.geometry import Point, shape

from dozor.cities import CITIES, resolve_city, resolve_district
from dozor.enrich import Enricher, fine_mci
from dozor.geo import DISTRICTS_FILE, district_map
from dozor.schemas import InvalidEvent, parse_event

MCI = {2025: 3932, 2026: 4325}
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("spelling", "city_id"),
    [("Нур-Султан", "astana"), ("NUR-SULTAN", "astana"), ("Алма-Ата", "almaty"),
     ("Өскемен", "ust-kamenogorsk"), ("Усть-Каменогорск", "ust-kamenogorsk"), ("Қарағанды", "karaganda"),
     ("семей", "semey"), ("Чимкент", "shymkent")],
)  # fmt: skip
def test_city_spellings_map_to_one_id(spelling: str, city_id: str) -> None:
    assert resolve_city(spelling) == city_id


def test_unknown_city_is_still_refused() -> None:
    assert resolve_city("Gotham") is None


@pytest.mark.parametrize(
    ("city_id", "spelling", "district"),
    [("astana", "Есіл", "yesil"), ("astana", "Есиль район", "yesil"), ("astana", "Yesil district", "yesil"),
     ("almaty", "Медеуский район", "medeu"), ("almaty", "Түрксіб ауданы", "turksib"),
     ("aktobe", "Astana district", "astana")],
)  # fmt: skip
def test_district_spellings_map_to_one_id(city_id: str, spelling: str, district: str) -> None:
    assert resolve_district(city_id, spelling) == district


def _violation(**over: object) -> bytes:
    ev = {
        "schema_version": 1, "event_id": str(uuid.uuid4()), "event_time": "2026-01-05T08:00:00Z",
        "camera_id": "cam-1", "city": "astana", "district": "", "lat": 51.095, "lon": 71.42,
        "violation_type": "red_light", "plate_hash": "a" * 64, "plate_masked": "1*****01",
    }  # fmt: skip
    return orjson.dumps({**ev, **over})


def test_validator_accepts_a_known_city_spelling_and_stores_the_id() -> None:
    now = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    assert parse_event("violations", _violation(city="Нур-Султан"), now).city == "astana"
    with pytest.raises(InvalidEvent) as e:
        parse_event("violations", _violation(city="Готэм"), now)
    assert e.value.reason == "unknown_city"


def test_missing_district_is_found_from_coordinates_and_a_spelling_is_mapped() -> None:
    enricher = Enricher(MCI)
    now = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    located = parse_event("violations", _violation(), now)  # a point near Yesil's centre, no district
    assert enricher.district(located) == "yesil"
    spelled = parse_event("violations", _violation(district="Сарыарка", lat=51.18, lon=71.39), now)
    assert enricher.district(spelled) == "saryarka"
    far = parse_event("violations", _violation(lat=51.5, lon=71.43), now)  # 40 km out: no district
    assert enricher.district(far) == ""


@pytest.mark.parametrize(
    ("vtype", "speed", "limit", "mci"),
    [("speeding", 70, 60, 0), ("speeding", 71, 60, 5), ("speeding", 81, 60, 10), ("speeding", 101, 60, 20),
     ("red_light", None, None, 10), ("stop_line", None, None, 3), ("speeding", None, None, 0)],
)  # fmt: skip
def test_fines_in_mci(vtype: str, speed: int | None, limit: int | None, mci: int) -> None:
    assert fine_mci(vtype, speed, limit) == mci


def test_fine_in_tenge_uses_the_mci_of_the_event_year() -> None:
    enricher = Enricher(MCI)
    now = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    dec = parse_event("violations", _violation(event_time="2025-12-31T23:59:00Z"), now)
    jan = parse_event("violations", _violation(event_time="2026-01-01T00:01:00Z"), now)
    later = parse_event("violations", _violation(event_time="2027-02-01T00:00:00Z"), now)
    assert enricher.extras(dec) == [10, 39_320]
    assert enricher.extras(jan) == [10, 43_250]
    assert enricher.extras(later) == [10, 43_250]  # no 2027 index configured yet: the latest one


def test_district_map_covers_each_district_centre_and_is_what_the_generator_makes() -> None:
    import importlib.util

    path = ROOT / "infra" / "geo" / "make_districts.py"
    spec = importlib.util.spec_from_file_location("make_districts", path)
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert json.loads(DISTRICTS_FILE.read_text()) == json.loads(json.dumps(gen.build()))
    shapes = {(f["properties"]["city"], f["properties"]["district"]): shape(f["geometry"])
              for f in json.loads(DISTRICTS_FILE.read_text())["features"]}  # fmt: skip
    for c in CITIES:
        for d in c.districts:
            inside = [k for k, g in shapes.items() if k[0] == c.id and g.contains(Point(d.lon, d.lat))]
            assert inside == [(c.id, d.id)]


def test_random_points_fall_in_their_district() -> None:
    m, r = district_map(), random.Random(7)
    for c in CITIES:
        for d in c.districts:
            lat, lon = m.random_point(c.id, d.id, r)
            assert m.district_at(c.id, lat, lon) == d.id
