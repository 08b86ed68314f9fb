"""The validator accepts what the simulator makes and names the reason for everything else."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.privacy import hash_plate, mask_plate
from dozor.producers.simulator import SimConfig, Simulator
from dozor.schemas import REASONS, InvalidEvent, Violation, parse_event, parse_violation

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def good() -> dict:
    cfg = SimConfig(seed=3, incident_share=0, integrity_share=0, call_share=0)
    msgs = Simulator(cfg, "salt").messages(NOW - dt.timedelta(minutes=5), count=200)
    return next(orjson.loads(m.value) for m in msgs if m.payload["city"] == "astana")


def test_simulated_events_round_trip(good):
    ev = parse_violation(orjson.dumps(good), now=NOW)
    assert isinstance(ev, Violation)
    assert ev.city == "astana"
    assert parse_violation(ev.to_json(), now=NOW) == ev


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(city="gotham"), "unknown_city"),
        (lambda d: d.update(lat=0.0, lon=0.0), "bad_position"),
        (lambda d: d.update(lat=71.43, lon=51.13), "bad_position"),  # swapped
        (lambda d: d.update(event_time="1999-01-01T00:00:00Z"), "bad_time"),
        (lambda d: d.update(event_time="2030-01-01T00:00:00Z"), "bad_time"),
        (lambda d: d.update(event_time="2026-11-23T11:00:00"), "schema"),  # no zone
        (lambda d: d.pop("event_id"), "schema"),
        (lambda d: d.update(violation_type="jaywalking-on-the-moon"), "schema"),
        (lambda d: d.update(plate_hash="ABC123"), "schema"),  # a raw plate must never pass
        (lambda d: d.update(lat="north"), "schema"),
        (lambda d: d.update(schema_version=2), "unsupported_version"),
    ],
)
def test_each_defect_has_its_reason(good, mutate, reason):
    mutate(good)
    with pytest.raises(InvalidEvent) as e:
        parse_violation(orjson.dumps(good), now=NOW)
    assert e.value.reason == reason


def test_speeding_needs_both_speeds(good):
    good.update(violation_type="speeding", speed_kmh=None, speed_limit_kmh=60)
    with pytest.raises(InvalidEvent) as e:
        parse_violation(orjson.dumps(good), now=NOW)
    assert e.value.reason == "schema"


def test_oversize_is_refused_before_parsing():
    with pytest.raises(InvalidEvent) as e:
        parse_violation(b"{" + b" " * 70_000 + b"}")
    assert e.value.reason == "oversize"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_escape_as_another_exception(raw):
    try:
        parse_violation(raw, now=NOW)
    except InvalidEvent as e:
        assert e.reason in REASONS


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["event_id", "city", "lat", "lon", "event_time", "violation_type", "x"]),
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=20)),
    )
)
def test_arbitrary_objects_are_rejected_with_a_reason(obj):
    with pytest.raises(InvalidEvent) as e:
        parse_violation(orjson.dumps(obj), now=NOW)
    assert e.value.reason in REASONS


def test_plate_hash_is_keyed_and_normalised():
    assert hash_plate("123 ABC 01", "s1") == hash_plate("123abc01", "s1")
    assert hash_plate("123ABC01", "s1") != hash_plate("123ABC01", "s2")
    assert mask_plate("123ABC01") == "1*****01"
    assert "ABC" not in mask_plate("123 ABC 01")


def test_published_json_schemas_are_current():
    from click.testing import CliRunner

    from dozor.cli import cli

    r = CliRunner().invoke(cli, ["schemas", "export", "--check"])
    assert r.exit_code == 0, r.output


def test_stale_json_schema_is_detected(tmp_path):
    from click.testing import CliRunner

    from dozor.cli import cli
    from dozor.schemas import export_schemas

    export_schemas(tmp_path)
    (tmp_path / "incidents.v1.json").write_text("{}")
    r = CliRunner().invoke(cli, ["schemas", "export", "--check", "--out", str(tmp_path)])
    assert r.exit_code == 1
    assert "incidents.v1.json" in r.output


# --- personal data at the door ---------------------------------------------------------------------


@pytest.mark.parametrize("masked", ["123ABC01", "123 ABC 01", "1**AB*01", "A123BC"])
def test_a_raw_or_half_masked_plate_is_refused(good, masked):
    good["plate_masked"] = masked
    with pytest.raises(InvalidEvent) as e:
        parse_violation(orjson.dumps(good), now=NOW)
    assert e.value.reason == "schema" and "plate_masked" in e.value.detail


@pytest.mark.parametrize("plate", ["123ABC01", "777 AAA 02", "A1", "Х123ВО"])
def test_every_mask_the_producers_make_is_accepted(good, plate):
    good["plate_masked"] = mask_plate(plate)
    assert parse_violation(orjson.dumps(good), now=NOW).plate_masked == mask_plate(plate)


def _dispatch(unit_id: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": "8f6f3a52-6b36-4f6e-8d1b-3f0c2c7f3c11", "schema_version": 1,
            "event_time": "2026-11-23T11:00:00Z", "dispatch_id": "d-1", "incident_id": "AST-1",
            "unit_id": unit_id, "crew_type": "car", "status": "assigned", "city": "astana",
        }
    )  # fmt: skip


@pytest.mark.parametrize("unit", ["AST-C001", "БЕРКУТ-12", "P7", "ALM-M-12"])
def test_call_signs_are_accepted(unit):
    assert parse_event("dispatches", _dispatch(unit), NOW).unit_id == unit


@pytest.mark.parametrize("unit", ["Ivanov Ivan", "Иванов И.И.", "sgt. petrov", "AST C001", ""])
def test_a_person_in_unit_id_is_refused(unit):
    with pytest.raises(InvalidEvent) as e:
        parse_event("dispatches", _dispatch(unit), NOW)
    assert e.value.reason == "schema"


def test_the_call_sign_pattern_is_a_setting():
    import re

    assert parse_event("dispatches", _dispatch("unit 7"), NOW, re.compile(r"^unit \d+$")).unit_id == "unit 7"


def test_integrity_reports_refuse_free_text():
    report = {
        "event_id": "8f6f3a52-6b36-4f6e-8d1b-3f0c2c7f3c12", "schema_version": 1,
        "event_time": "2026-11-23T11:00:00Z", "region": "astana", "kind": "bribe_attempt_reported",
        "service": "patrol",
    }  # fmt: skip
    assert parse_event("integrity", orjson.dumps(report), NOW).region == "astana"
    with pytest.raises(InvalidEvent) as e:
        parse_event("integrity", orjson.dumps({**report, "comment": "Sgt. Petrov, badge 1234"}), NOW)
    assert e.value.reason == "schema" and "comment" in e.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [("target_s", 2**63 + 1), ("observed", 2**32), ("waited_s", "NaN"), ("target_s", -1)],
)
def test_alert_numbers_outside_their_columns_are_refused(field, value):
    alert = {
        "event_id": "8f6f3a52-6b36-4f6e-8d1b-3f0c2c7f3c13", "schema_version": 1,
        "event_time": "2026-11-23T11:00:00Z", "kind": "incident_waiting", "city": "astana",
    }  # fmt: skip
    raw = orjson.dumps(alert)[:-1] + f',"{field}":{value}}}'.encode()
    with pytest.raises(InvalidEvent) as e:
        parse_event("alerts", raw, NOW)
    assert e.value.reason in ("schema", "malformed_json")


def test_a_city_figures_digest_survives_the_topic() -> None:
    """The publisher digests the figures it builds; the ingest digests the message it reads back.
    They must agree, or a restarted publisher would revise every minute it had already said."""
    import datetime as dt
    import uuid

    from dozor.schemas import AreaFigures, CityFigures

    minute = dt.datetime(2026, 12, 1, 7, 59, tzinfo=dt.UTC)
    fig = CityFigures(
        event_id=uuid.uuid4(), event_time=minute + dt.timedelta(minutes=1), city="astana", minute=minute,
        revision=3, late_events=2, violations=7, violations_by_type={"speeding": 5, "red_light": 2},
        fines_kzt=96_000, incidents_opened=1, incidents_by_category={"theft": 1},
        incidents_by_channel={"call_102": 1}, incidents_by_priority={"2": 1}, responses_closed=1,
        response_p50_s=431.125, response_p90_s=None,
        districts={"yesil": AreaFigures(violations=7, incidents_opened=1, responses_closed=1,
                                        response_p50_s=431.125, response_p90_s=None)},
    )  # fmt: skip
    back = CityFigures.model_validate_json(fig.to_json())
    assert back.content_digest() == fig.content_digest()
    assert fig.model_copy(update={"revision": 4, "late_events": 3}).content_digest() == fig.content_digest()
    assert fig.model_copy(update={"violations": 8}).content_digest() != fig.content_digest()


def test_the_historical_mark_is_read_from_every_client_s_header_shape() -> None:
    from dozor.schemas import HISTORICAL_HEADER, is_historical

    assert is_historical([(HISTORICAL_HEADER, b"1")])  # aiokafka, kafka-python
    assert is_historical({HISTORICAL_HEADER: b"1"})  # faust's mapping form
    assert not is_historical([]) and not is_historical(None) and not is_historical([("other", b"1")])


@pytest.mark.parametrize(
    "splice",
    [
        lambda raw: raw[:-1] + b',"event_id":"00000000-0000-4000-8000-000000000001"}',
        lambda raw: b'{"city":"almaty",' + raw[1:],
        lambda raw: raw[:-1] + b', "event_time" : "2020-01-01T00:00:00Z"}',
        lambda raw: raw[:-1] + b',"\\u0063ity":"astana"}',
    ],
    ids=["event_id-last", "city-first", "with-spaces", "escaped-name"],
)
def test_a_field_named_twice_is_malformed_not_last_one_wins(good, splice):
    raw = orjson.dumps(good)
    assert parse_event("violations", raw)  # the message itself is valid
    with pytest.raises(InvalidEvent) as e:
        parse_event("violations", splice(raw))
    assert e.value.reason == "malformed_json" and "duplicate" in str(e.value).lower()
