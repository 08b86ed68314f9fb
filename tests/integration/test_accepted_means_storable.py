"""Accepted means storable: every event the validator accepts goes through the worker's own path
(validate_records → ClickHouseWriter) into the real engine and reads back equal.

Events are generated at the edges of every field of every stored family: extreme and out-of-range
numbers, the longest strings, any unicode, the earliest and latest allowed times in odd zones,
empty optionals. An event the validator refuses is fine (with a reason); one it accepts and the
sink then cannot store — or stores changed — fails the test. The expected values are read from
the generated JSON itself, not from Dozor's models.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import namedtuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dozor.cities import CITIES, REGIONS
from dozor.clickhouse import connect
from dozor.enrich import Enricher
from dozor.infra.migrate import migrate
from dozor.schemas import (
    PLATE_MASK_PATTERN,
    POSITION_ID_PATTERN,
    UNIT_ID_PATTERN,
    CrewType,
    DispatchStatus,
    IncidentCategory,
    IncidentChannel,
    IncidentStatus,
    IntegrityKind,
    InvalidEvent,
    PoliceService,
    ViolationType,
)
from dozor.streams.ingest import validate_records
from dozor.streams.sink import TABLES, ClickHouseWriter, PartitionBatch

pytestmark = pytest.mark.integration

Record = namedtuple("Record", "topic partition offset key value headers", defaults=((),))

EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ZONES = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=5)), dt.timezone(dt.timedelta(hours=-12)),
     dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=5, minutes=45))]
)  # fmt: skip
# Times from a little before the earliest allowed to a little past the latest (10 min of skew).
TIMES = st.one_of(
    st.sampled_from([EARLIEST, NOW, NOW + dt.timedelta(minutes=9, seconds=59)]),
    st.datetimes(
        min_value=dt.datetime(2019, 12, 31, 23, 0),
        max_value=(NOW + dt.timedelta(minutes=11)).replace(tzinfo=None),
    ).map(lambda t: t.replace(tzinfo=dt.UTC)),
).flatmap(lambda t: ZONES.map(lambda z: t.astimezone(z)))
# Numbers at and past every column's range (UInt8/16/32, Float64), and plain ones.
INTS = st.one_of(
    st.sampled_from([0, 1, 4, 5, 255, 256, 400, 401, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 + 1, -1]),
    st.integers(-(2**70), 2**70),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324])
)
# Any unicode but lone surrogates (which no UTF-8 JSON can carry), including NUL and emoji.
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=70)


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def _place() -> st.SearchStrategy[dict]:
    def near(c):
        return st.fixed_dictionaries(
            {
                "city": st.just(c.id),
                "lat": st.floats(c.lat - 0.4, c.lat + 0.4),
                "lon": st.floats(c.lon - 0.4, c.lon + 0.4),
                "district": st.one_of(
                    st.just(""), st.sampled_from([d.id for d in c.districts] or [""]), TEXT
                ),
            }
        )

    return st.sampled_from(CITIES).flatmap(near)


def _common(t: dt.datetime) -> dict:
    return {"event_id": str(uuid.uuid4()), "schema_version": 1, "event_time": _iso(t)}


@st.composite
def violations(draw) -> dict:
    vtype = draw(st.sampled_from(list(ViolationType)))
    speeding = vtype == "speeding"
    return {
        **_common(draw(TIMES)),
        **draw(_place()),
        "camera_id": draw(st.text(min_size=1, max_size=65)),
        "violation_type": vtype,
        "speed_kmh": draw(INTS if speeding else st.one_of(st.none(), INTS)),
        "speed_limit_kmh": draw(INTS if speeding else st.one_of(st.none(), INTS)),
        "plate_hash": draw(st.from_regex(r"^[0-9a-f]{64}$", fullmatch=True)),
        "plate_masked": draw(st.one_of(st.from_regex(PLATE_MASK_PATTERN, fullmatch=True), TEXT)),
    }


@st.composite
def incidents(draw) -> dict:
    t = draw(TIMES)
    opened = draw(
        st.one_of(st.just(t), TIMES, st.just(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))))
    )
    return {
        **_common(t),
        **draw(_place()),
        "incident_id": draw(st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", fullmatch=True)),
        "status": draw(st.sampled_from(list(IncidentStatus))),
        "channel": draw(st.sampled_from(list(IncidentChannel))),
        "category": draw(st.sampled_from(list(IncidentCategory))),
        "priority": draw(st.one_of(st.integers(1, 4), INTS)),
        "opened_at": _iso(opened),
        # A source's own code and area: any text, empty included (a longer one is refused).
        "source_code": draw(st.one_of(st.just(""), TEXT)),
        "source_area": draw(st.one_of(st.just(""), TEXT)),
    }


@st.composite
def dispatches(draw) -> dict:
    place = draw(_place())
    return {
        **_common(draw(TIMES)),
        "city": place["city"],
        "district": place["district"],
        "dispatch_id": draw(st.text(min_size=1, max_size=65)),
        "incident_id": draw(st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", fullmatch=True)),
        "unit_id": draw(st.one_of(st.from_regex(UNIT_ID_PATTERN, fullmatch=True), TEXT)),
        "crew_type": draw(st.sampled_from(list(CrewType))),
        "status": draw(st.sampled_from(list(DispatchStatus))),
    }


@st.composite
def integrity(draw) -> dict:
    extra = draw(st.one_of(st.just({}), st.fixed_dictionaries({"comment": TEXT})))
    return {
        **_common(draw(TIMES)),
        "region": draw(st.sampled_from(sorted(REGIONS))),
        "kind": draw(st.sampled_from(list(IntegrityKind))),
        "service": draw(st.sampled_from(list(PoliceService))),
        **extra,
    }


@st.composite
def response_times(draw) -> dict:
    place = draw(_place())
    opened, closed = sorted([draw(TIMES), draw(TIMES)])
    maybe_time = st.one_of(st.none(), TIMES.map(_iso))
    maybe_float = st.one_of(st.none(), FLOATS)
    status = draw(st.sampled_from(["open", "closed", "cancelled"]))  # v2: open has no closure yet
    return {
        **_common(closed),
        "schema_version": 2,
        "city": place["city"],
        "district": place["district"],
        "incident_id": draw(st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", fullmatch=True)),
        "revision": draw(st.one_of(st.just(1), INTS)),
        "status": status,
        "priority": draw(st.integers(1, 4)),
        "category": draw(st.sampled_from(list(IncidentCategory))),
        "channel": draw(st.sampled_from(list(IncidentChannel))),
        "opened_at": _iso(opened),
        "first_assigned_at": draw(maybe_time),
        "first_on_scene_at": draw(maybe_time),
        "closed_at": None if status == "open" else _iso(closed),
        "time_to_assignment_s": draw(maybe_float),
        "time_to_arrival_s": draw(maybe_float),
        "time_to_closure_s": None if status == "open" else draw(FLOATS),
        "arrival_target_s": draw(INTS),
        "arrived_within_target": draw(st.one_of(st.none(), st.booleans())),
    }


@st.composite
def alerts(draw) -> dict:
    place = draw(_place())
    return {
        **_common(draw(TIMES)),
        "city": place["city"],
        "district": place["district"],
        "kind": draw(st.sampled_from(["incident_waiting", "violations_spike", "incidents_spike"])),
        "incident_id": draw(
            st.one_of(st.none(), st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", fullmatch=True))
        ),
        "priority": draw(st.one_of(st.none(), st.integers(1, 4))),
        "waited_s": draw(st.one_of(st.none(), FLOATS)),
        "target_s": draw(st.one_of(st.none(), INTS)),
        "observed": draw(st.one_of(st.none(), INTS)),
        "baseline": draw(st.one_of(st.none(), FLOATS)),
        "detail": draw(st.text(max_size=501)),
    }


@st.composite
def calls(draw) -> dict:
    place = draw(_place())
    offered = draw(TIMES)
    status = draw(st.sampled_from(["offered", "answered", "abandoned", "transferred", "ended"]))
    return {
        **_common(draw(st.one_of(st.just(offered), TIMES))),
        "call_id": draw(st.one_of(st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", fullmatch=True), TEXT)),
        "status": status,
        "channel": draw(st.sampled_from(["line_102", "app_102", "sos_button", "transfer_112"])),
        "city": place["city"],
        "district": place["district"],
        "offered_at": _iso(offered),
        # A position at the edges of its shape, a name, or none (refused when answered).
        "position_id": draw(st.one_of(st.none(), st.from_regex(POSITION_ID_PATTERN, fullmatch=True), TEXT)),
        "incident_id": draw(
            st.one_of(st.none(), st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", fullmatch=True), TEXT)
        ),
    }


STRATEGIES = {
    "violations": violations(),
    "calls": calls(),
    "incidents": incidents(),
    "dispatches": dispatches(),
    "integrity": integrity(),
    "response_times": response_times(),
    "alerts": alerts(),
}


@pytest.fixture(scope="module")
def engine(settings_factory_module):
    s = settings_factory_module()
    migrate(s)
    return s, connect(s)


@pytest.fixture(scope="module")
def settings_factory_module(kafka_bootstrap, clickhouse_url, state_dir):
    from dozor.settings import Settings

    def make() -> Settings:
        run = uuid.uuid4().hex[:10]
        return Settings(
            environment="test", state_dir=state_dir / run, kafka_bootstrap_servers=kafka_bootstrap,
            clickhouse_url=clickhouse_url, clickhouse_database=f"test_{run}",
        )  # fmt: skip

    return make


def _expected(value: object) -> object:
    """A generated JSON value as ClickHouse gives it back: times in UTC to the millisecond."""
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if t.tzinfo is not None and "T" in value:
            t = t.astimezone(dt.UTC)
            return t.replace(microsecond=t.microsecond // 1000 * 1000)
    return value


def _stored(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):  # FixedString comes back as bytes
        return value.decode()
    return value


@pytest.mark.parametrize("family", sorted(STRATEGIES))
def test_every_accepted_event_is_stored_and_reads_back_equal(engine, family):
    s, client = engine
    spec = TABLES[family]
    writer = ClickHouseWriter(client, spec)
    enricher = Enricher(s.mci_kzt)
    # The district is the enricher's to resolve (from the position or the spelling): it is checked
    # by tests/unit/test_enrich.py, not here.
    compared = [f for f in spec.fields if f != "district"]
    outcomes = {"accepted": 0, "refused": 0}
    opened: set[str] = set()

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(STRATEGIES[family])
    def check(payload: dict) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        batch = PartitionBatch(f"t.{family}", 0, family)
        validate_records([Record(batch.topic, 0, 0, None, raw)], batch, enricher)
        if batch.rejected:
            assert batch.rejected[0].reason in {"schema", "bad_time", "bad_position", "oversize"}
            outcomes["refused"] += 1
            return
        outcomes["accepted"] += 1
        written, refused = writer.write([batch])
        assert refused == [], f"accepted but refused by ClickHouse: {refused[0].error}"
        once = spec.once_per
        if written == 0 and once is not None and payload.get(once[1]) == once[2]:
            # One opening per incident (an export's repeated row under another id): a second
            # opening of an incident opened at that moment is a repeat, kept once — and it is there.
            key = str(payload[once[0]])
            stored = client.command(
                f"SELECT count() FROM {spec.table} WHERE {once[0]} = {{k:String}} "  # noqa: S608
                f"AND {once[1]} = {{v:String}}",
                parameters={"k": key, "v": once[2]},
            )
            assert key in opened and stored >= 1, (key, stored)
            return
        if once is not None and payload.get(once[1]) == once[2]:
            opened.add(str(payload[once[0]]))
        assert written == 1
        cols = ", ".join(compared)
        back = client.query(
            f"SELECT {cols} FROM {spec.table} WHERE event_id = {{id:UUID}}",  # noqa: S608
            parameters={"id": payload["event_id"]},
        ).result_rows
        assert len(back) == 1
        got = {f: _stored(v) for f, v in zip(compared, back[0], strict=True)}
        want = {f: _expected(payload.get(f)) for f in compared}
        if family == "integrity":  # stored at day granularity (docs/guarantees.md)
            want["event_time"] = got["event_time"]
            assert got["event_time"] <= _expected(payload["event_time"])
        assert got == want

    check()
    # Both sides of the door were exercised.
    assert outcomes["accepted"] > 10 and outcomes["refused"] > 0, outcomes


def test_a_dotnet_empty_date_in_opened_at_is_refused_as_bad_time():
    from dozor.schemas import parse_event

    ev = {
        **_common(NOW), "incident_id": "A-1", "status": "opened", "channel": "call_102", "category": "theft",
        "priority": 1, "city": "astana", "lat": 51.13, "lon": 71.43, "opened_at": "0001-01-01T00:00:00+05:00",
    }  # fmt: skip
    with pytest.raises(InvalidEvent) as e:
        parse_event("incidents", json.dumps(ev).encode())
    assert e.value.reason == "bad_time" and "opened_at" in e.value.detail
