"""The validator accepts what the simulator makes and names the reason for everything else."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.privacy import hash_plate, mask_plate
from dozor.producers.simulator import SimConfig, Simulator
from dozor.schemas import REASONS, InvalidEvent, Violation, parse_violation

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def good() -> dict:
    cfg = SimConfig(seed=3, incident_share=0, integrity_share=0)
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
