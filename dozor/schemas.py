"""Canonical event schemas: the one definition used by producers, workers and the published JSON Schema.

Five input families, each versioned and carried on its own topic (``<prefix>.<family>.v<version>``):

- :class:`Violation` — a traffic-camera detection;
- :class:`IncidentEvent` — a case opened from the 102 line, the 102 app, an SOS button, a front office
  or a patrol, and each later status change up to closure (same ``incident_id`` throughout);
- :class:`DispatchEvent` — one step in a unit's assignment to an incident (assigned, en route, on
  scene, cleared), keyed by ``incident_id`` so it lands on the incident's partition;
- :class:`IntegrityReport` — an officer's report of a bribe attempt, by region and service, with no
  personal data at all;
- :class:`CallEvent` — one moment of a call to 102 from the call centre's telephony (ACD): offered,
  answered by an operator *position*, abandoned, transferred, ended (same ``call_id`` throughout).

Every event carries a stable ``event_id`` (a re-send repeats it, so it is the deduplication key), a
``schema_version`` (a consumer refuses what it does not understand) and an ``event_time`` in UTC,
distinct from the time Dozor ingests it (stored by the worker). Personal data arrives protected: a
plate only as a keyed hash plus a masked form (:mod:`dozor.privacy`); officers never by name or id.

:func:`parse_event` is the validator workers run on every message. It raises nothing but
:class:`InvalidEvent`, whose ``reason`` code goes into the dead-letter record and the metrics.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import jiter
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from dozor.cities import CITY_IDS, REGIONS, city, resolve_city
from dozor.names import family_topic

__all__ = [
    "ViolationType",
    "IncidentChannel",
    "IncidentCategory",
    "IncidentStatus",
    "DispatchStatus",
    "CrewType",
    "IntegrityKind",
    "PoliceService",
    "Event",
    "Violation",
    "IncidentEvent",
    "DispatchEvent",
    "IntegrityReport",
    "CallChannel",
    "CallStatus",
    "CallEvent",
    "POSITION_ID_PATTERN",
    "Family",
    "FAMILIES",
    "INPUT_FAMILIES",
    "ResponseTime",
    "ResponseTimeV2",
    "RESPONSE_TIMES_V1",
    "PUBLISHED",
    "Alert",
    "AlertKind",
    "AreaFigures",
    "CityFigures",
    "InvalidEvent",
    "parse_event",
    "parse_violation",
    "ENGINE_EARLIEST",
    "HISTORICAL_HEADER",
    "is_historical",
    "json_schema",
    "export_schemas",
    "SCHEMA_DIR",
    "MAX_MESSAGE_BYTES",
    "REASONS",
    "PLATE_MASK_PATTERN",
    "UNIT_ID_PATTERN",
    "UNIT_ID_RE",
    "UINT32_MAX",
]

#: Where the published JSON Schema files live in the repository (regenerate: ``dozor schemas export``).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"

#: An event is a few hundred bytes; anything past this is an attack or a bug, not an event.
MAX_MESSAGE_BYTES = 64 * 1024

#: Bounds of Kazakhstan with a margin, so a swapped lat/lon or a zero position is caught.
LAT_RANGE = (40.0, 56.0)
LON_RANGE = (46.0, 88.0)

#: A position further than this from its city's centre is a wrong position, not a suburb.
MAX_CITY_DISTANCE_KM = 80.0

#: Events from before the system existed, or further ahead than clock skew explains, are absurd.
EARLIEST_EVENT = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE_SKEW = dt.timedelta(minutes=10)
#: The oldest time ClickHouse's DateTime64 stores: a historical import may go back that far.
ENGINE_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
#: Kafka header of a message from a historical import (``dozor replay --historical``): the workers
#: accept any time the engine stores for it, store it, and raise no alert about it.
HISTORICAL_HEADER = "dozor.historical"
_EARLIEST_TS = EARLIEST_EVENT.timestamp()
_MAX_FUTURE_SKEW_S = MAX_FUTURE_SKEW.total_seconds()

#: Reason codes of rejected input, in the dead-letter topic and the ``dozor_deadletter_total`` metric.
REASONS = {
    "oversize": "message larger than the limit",
    "malformed_json": "not a JSON object",
    "unsupported_version": "schema_version not understood by this worker",
    "schema": "fields missing or of the wrong type",
    "unknown_city": "city or region id not in Dozor's reference data",
    "bad_position": "coordinates outside Kazakhstan or far from the event's city",
    "bad_time": "event time absurd (before DOZOR_EARLIEST_EVENT_DATE, 2020 by default, or in the future)",
    "expired": "older than its table keeps (DOZOR_RETENTION_*_DAYS): stored, it would be deleted at once",
    "undecodable": "the message could not be read (for example a compression codec it cannot undo)",
    "storage": "valid, but ClickHouse refused to store it (its error code and text are in the detail)",
    "processing": "valid, but a derived-output worker (join, figures) failed on it",
}


class ViolationType(StrEnum):
    """What a traffic camera detected. Values are stable keys; labels live in the dashboard."""

    speeding = "speeding"
    red_light = "red_light"
    wrong_lane = "wrong_lane"
    bus_lane = "bus_lane"
    stop_line = "stop_line"
    no_seat_belt = "no_seat_belt"
    phone_use = "phone_use"
    pedestrian_crossing = "pedestrian_crossing"
    parking = "parking"


class IncidentChannel(StrEnum):
    """How the citizen (or the patrol) reached the police."""

    call_102 = "call_102"
    app_102 = "app_102"
    sos_button = "sos_button"
    front_office = "front_office"
    patrol = "patrol"


class IncidentCategory(StrEnum):
    theft = "theft"
    fraud = "fraud"
    domestic = "domestic"
    traffic_accident = "traffic_accident"
    hooliganism = "hooliganism"
    drugs = "drugs"
    lost_documents = "lost_documents"
    missing_person = "missing_person"
    consultation = "consultation"
    other = "other"


class IncidentStatus(StrEnum):
    """An incident's life: opened, worked on, closed (or cancelled as a false call)."""

    opened = "opened"
    in_progress = "in_progress"
    closed = "closed"
    cancelled = "cancelled"


class DispatchStatus(StrEnum):
    """A unit's assignment, in order. ``on_scene`` minus the incident's opening is the response time."""

    assigned = "assigned"
    en_route = "en_route"
    on_scene = "on_scene"
    cleared = "cleared"


class CrewType(StrEnum):
    car = "car"
    foot = "foot"
    motorcycle = "motorcycle"


class IntegrityKind(StrEnum):
    bribe_attempt_reported = "bribe_attempt_reported"
    integrity_check = "integrity_check"


class PoliceService(StrEnum):
    """The services the ministry's integrity checks cover first."""

    patrol = "patrol"
    juvenile = "juvenile"
    migration = "migration"
    district_inspector = "district_inspector"
    modular_post = "modular_post"
    front_office = "front_office"
    duty_unit = "duty_unit"


class InvalidEvent(ValueError):
    """A message that cannot become an event; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


CityId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="City id, e.g. 'astana' (dozor/cities.py).",
        json_schema_extra={"enum": sorted(CITY_IDS)},
    ),
]
District = Annotated[str, Field(max_length=64, description="District id within the city; may be empty.")]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
#: A position is both coordinates or none: half of one places nothing.
_HALF_POSITION = "lat and lon come together, or neither"


class Event(BaseModel):
    """Fields every event has. Subclasses set ``family`` and their own ``schema_version``."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        use_enum_values=True,
        # The published schema describes messages as sent, and every field is always sent.
        json_schema_serialization_defaults_required=True,
        # NaN and infinities have no JSON form: orjson would write null into a non-null column.
        allow_inf_nan=False,
    )
    family: ClassVar[str]

    event_id: uuid.UUID = Field(description="Stable id; re-sends of the same event repeat it.")
    # AwareDatetime is checked in pydantic's core: a Python validator here cost a sixth of the
    # worker's time (benchmarks/results/pipeline.txt). Any zone is accepted and kept; every
    # comparison and the ClickHouse column are absolute times, and producers send UTC.
    event_time: AwareDatetime = Field(description="When it happened (ISO 8601 with zone; UTC by convention).")

    def to_json(self) -> bytes:
        """The wire form: compact JSON, UTC times with a zone."""
        return orjson.dumps(self.model_dump(mode="json"))


class Violation(Event):
    """A traffic-camera violation, version 1 (topic ``<prefix>.violations.v1``, key: camera id)."""

    family: ClassVar[str] = "violations"
    schema_version: Literal[1] = 1
    camera_id: Annotated[str, Field(min_length=1, max_length=64)]
    city: CityId
    district: District = ""
    lat: Lat | None = Field(default=None, description="With lon, or neither: many exports carry no position.")
    lon: Lon | None = None
    violation_type: ViolationType
    speed_kmh: Annotated[int, Field(ge=0, le=400)] | None = None
    speed_limit_kmh: Annotated[int, Field(ge=0, le=200)] | None = None
    plate_hash: Annotated[
        str, Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 of the normalised plate.")
    ]
    plate_masked: Annotated[
        str,
        Field(
            max_length=16,
            pattern=PLATE_MASK_PATTERN,
            description="At most the first character and the two-character region code in the clear, "
            "the rest as '*': e.g. '1*****01'. A raw plate is refused.",
        ),
    ]

    @model_validator(mode="after")
    def _speed_pair(self) -> Violation:
        d = self.__dict__  # runs for every event: plain dict reads, not attribute lookups
        if d["violation_type"] == "speeding" and (d["speed_kmh"] is None or d["speed_limit_kmh"] is None):
            raise ValueError("speeding needs speed_kmh and speed_limit_kmh")
        if (d["lat"] is None) != (d["lon"] is None):
            raise ValueError(_HALF_POSITION)
        return self


#: What a masked plate looks like (dozor.privacy.mask_plate): an optional first character, one or
#: more '*', at most two trailing characters (the region code).
PLATE_MASK_PATTERN = r"^[^\W_]?\*+[^\W_]{0,2}$"

#: The default shape of a crew's call sign, e.g. 'AST-C001' or 'БЕРКУТ-12': upper-case letters and
#: digits in at most three groups joined by '-', no spaces. A person's name or a personnel number
#: with spaces does not fit. A department with other call signs sets DOZOR_UNIT_ID_PATTERN.
UNIT_ID_PATTERN = r"^[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ0-9]{1,12}(?:-[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ0-9]{1,12}){0,2}$"
#: :data:`UNIT_ID_PATTERN`, compiled: parse_event's default.
UNIT_ID_RE = re.compile(UNIT_ID_PATTERN)

#: Largest value of a UInt32 column (targets, counts, revisions).
UINT32_MAX = 2**32 - 1

IncidentId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="Stable id of the case.")
]


class IncidentEvent(Event):
    """An incident opened or changed, version 1 (topic ``<prefix>.incidents.v1``, key: incident id).

    Every event repeats the incident's attributes, so a consumer that sees only the latest event of
    an incident still knows all of it.
    """

    family: ClassVar[str] = "incidents"
    schema_version: Literal[1] = 1
    incident_id: IncidentId
    status: IncidentStatus
    channel: IncidentChannel
    category: IncidentCategory
    priority: Annotated[int, Field(ge=1, le=4, description="1 is the most urgent.")]
    city: CityId
    district: District = ""
    lat: Lat | None = Field(
        default=None, description="With lon, or neither: a call may come without a position."
    )
    lon: Lon | None = None
    opened_at: AwareDatetime = Field(description="When the case was opened (ISO 8601 with zone).")
    source_code: Annotated[str, Field(max_length=64)] = Field(
        default="", description="The source system's own call type or code (a CAD's 'BURG'); may be empty."
    )
    source_area: Annotated[str, Field(max_length=64)] = Field(
        default="", description="The source's own area (beat, sector, substation); may be empty."
    )

    @model_validator(mode="after")
    def _opened_first(self) -> IncidentEvent:
        if self.event_time < self.opened_at:
            raise ValueError("event_time is before opened_at")
        if (self.lat is None) != (self.lon is None):
            raise ValueError(_HALF_POSITION)
        return self


class DispatchEvent(Event):
    """A step of a unit's assignment, version 1 (topic ``<prefix>.dispatches.v1``, key: incident id)."""

    family: ClassVar[str] = "dispatches"
    schema_version: Literal[1] = 1
    dispatch_id: Annotated[str, Field(min_length=1, max_length=64)]
    incident_id: IncidentId
    unit_id: Annotated[str, Field(min_length=1, max_length=32, description="Crew call sign, not a person.")]
    crew_type: CrewType
    status: DispatchStatus
    city: CityId
    district: District = ""


class IntegrityReport(Event):
    """An integrity report, version 1 (topic ``<prefix>.integrity.v1``, key: region). No personal data.

    Only the region, the kind and the service, and nothing else: a report carrying any other field
    (a comment, a name, a badge number) is refused, not stored with the field dropped, so a source
    that sends free text learns of it. Stored at day granularity (docs/guarantees.md).
    """

    model_config = ConfigDict(**{**Event.model_config, "extra": "forbid"})
    family: ClassVar[str] = "integrity"
    schema_version: Literal[1] = 1
    region: Annotated[str, Field(min_length=1, max_length=32, json_schema_extra={"enum": sorted(REGIONS)})]
    kind: IntegrityKind
    service: PoliceService


class CallChannel(StrEnum):
    """How a call reached the 102 centre."""

    line_102 = "line_102"
    app_102 = "app_102"
    sos_button = "sos_button"
    transfer_112 = "transfer_112"


class CallStatus(StrEnum):
    """A moment of a 102 call, as the call centre's ACD records it.

    ``offered``: the call entered the queue (the citizen's wait starts); ``answered``: an operator
    position took it; ``abandoned``: the caller hung up before an answer; ``transferred``: handed to
    another position or service; ``ended``: the line closed.
    """

    offered = "offered"
    answered = "answered"
    abandoned = "abandoned"
    transferred = "transferred"
    ended = "ended"


#: An operator *position* (a seat of the call centre: ``P-12``, ``ALA-07``): at most three capital
#: letters, an optional dash and one to four digits. Shaped so that no name fits it: who answered
#: is a position, never a person (an operator's name would point the figures at one employee).
POSITION_ID_PATTERN = r"^[A-Z]{0,3}-?[0-9]{1,4}$"


class CallEvent(Event):
    """A moment of a 102 call, version 1 (topic ``<prefix>.calls.v1``, key: call id).

    Every event repeats ``offered_at``, the channel and the place, so the answer time of a call is
    ``event_time`` of its first ``answered`` minus ``offered_at`` from that event alone. No phone
    number, no name: the caller is not in the event, the operator only as a position.
    """

    model_config = ConfigDict(**{**Event.model_config, "extra": "forbid"})
    family: ClassVar[str] = "calls"
    schema_version: Literal[1] = 1
    call_id: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="Stable id of the call.")
    ]
    status: CallStatus
    channel: CallChannel
    city: CityId
    district: District = ""
    offered_at: AwareDatetime = Field(description="When the call entered the queue (ISO 8601 with zone).")
    position_id: Annotated[str, Field(pattern=POSITION_ID_PATTERN)] | None = Field(
        default=None, description="The operator position that answered; never a person."
    )
    incident_id: IncidentId | None = Field(
        default=None, description="The incident opened from the call, if any."
    )

    @model_validator(mode="after")
    def _offered_first(self) -> CallEvent:
        if self.event_time < self.offered_at:
            raise ValueError(f"{self.status} before offered: event_time is before offered_at")
        if self.status == CallStatus.answered and self.position_id is None:
            raise ValueError("an answered call names its operator position (position_id)")
        return self


class AlertKind(StrEnum):
    """Why an alert was raised."""

    incident_waiting = "incident_waiting"
    violations_spike = "violations_spike"
    incidents_spike = "incidents_spike"


class _Responses(Event):
    """The fields every version of the response-times message shares; each version adds the rest."""

    family: ClassVar[str] = "response_times"
    incident_id: IncidentId
    city: CityId
    district: District = ""
    priority: Annotated[int, Field(ge=1, le=4)]
    category: IncidentCategory
    channel: IncidentChannel
    opened_at: AwareDatetime
    first_assigned_at: AwareDatetime | None = Field(description="First unit assigned; null if none was.")
    first_on_scene_at: AwareDatetime | None = Field(description="First unit on scene; null if none came.")
    time_to_assignment_s: float | None
    time_to_arrival_s: float | None = Field(description="first_on_scene_at − opened_at, seconds.")
    arrival_target_s: int = Field(
        ge=0, le=UINT32_MAX, description="The arrival target of the incident's priority, seconds."
    )
    arrived_within_target: bool | None


class ResponseTime(_Responses):
    """A closed incident's response times, version 1 (topic ``<prefix>.response_times.v1``, key: incident id).

    Derived by the join of incidents and dispatches (``dozor.streams.responses``) when the incident
    closes. A dispatch step arriving after that (late) revises the figures: the message is sent
    again with ``revision`` + 1 and a new ``event_id``; a consumer keeps the highest revision per
    incident. A re-send after a worker restart repeats ``event_id`` and content exactly.

    Still published, unchanged, for the consumers built on it; version 2 (:class:`ResponseTimeV2`)
    also says when the first unit arrives, before the closure, and is what Dozor stores.
    """

    schema_version: Literal[1] = 1
    revision: Annotated[
        int,
        Field(
            ge=1, le=UINT32_MAX,
            description="1, then +1 for each correction; the highest is the newest. History joined again "
            "after its state was dropped counts on above every earlier revision.",
        ),
    ]  # fmt: skip
    status: Literal["closed", "cancelled"]
    closed_at: AwareDatetime
    time_to_closure_s: float


class ResponseTimeV2(_Responses):
    """One incident's response times, version 2 (topic ``<prefix>.response_times.v2``, key: incident id).

    Published as soon as the first unit is assigned (``status`` ``open``, no closure yet), again at
    the first arrival, and revised at the closure or cancellation and by any later step that
    changes a figure: each revision is ``revision`` + 1 with a new ``event_id``; a consumer keeps the
    highest revision per incident. An incident closed before any unit was assigned is first
    published at its closure. Many dispatch exports have no closure time at all: their incidents
    still get their assignment and arrival times. ``event_time`` is the moment of the latest of
    these (the closure, else the first arrival, else the first assignment).
    A re-send after a worker restart repeats ``event_id`` and content exactly.

    What changed from version 1: ``open`` in ``status``; ``closed_at`` and ``time_to_closure_s``
    are null while the incident is open; revisions count the open record too.
    """

    schema_version: Literal[2] = 2
    revision: Annotated[
        int,
        Field(
            ge=1, le=UINT32_MAX,
            description="1, then +1 for each change; the highest is the newest. History joined again "
            "after its state was dropped counts on above every earlier revision.",
        ),
    ]  # fmt: skip
    status: Literal["open", "closed", "cancelled"]
    closed_at: AwareDatetime | None = Field(description="Closure or cancellation; null while open.")
    time_to_closure_s: float | None = Field(description="closed_at − opened_at, seconds; null while open.")


class Alert(Event):
    """Something a duty officer must look at now, version 1 (topic ``<prefix>.alerts.v1``, key: city).

    ``incident_waiting``: no unit on scene although the incident's priority target has passed in
    event time; raised once per incident. ``event_time`` is the moment the target passed.

    ``violations_spike`` / ``incidents_spike``: a city's count in one minute is far above its
    baseline for that hour and weekday (``observed`` against ``baseline``, events per minute);
    raised once per spike, as soon as the running count of the minute crosses the threshold.
    ``event_time`` is the event time at which it crossed.
    """

    family: ClassVar[str] = "alerts"
    #: Added to v1 after it was published: optional in the schema, so messages sent before them
    #: (and consumers' fixtures) stay valid. New fields of a published version are always optional.
    added_in_v1: ClassVar[tuple[str, ...]] = ("observed", "baseline")
    schema_version: Literal[1] = 1
    kind: AlertKind
    city: CityId
    district: District = ""
    incident_id: IncidentId | None = None
    priority: Annotated[int, Field(ge=1, le=4)] | None = None
    waited_s: float | None = Field(default=None, description="How long the incident had waited.")
    target_s: Annotated[int, Field(ge=0, le=UINT32_MAX)] | None = None
    observed: Annotated[int, Field(ge=0, le=UINT32_MAX)] | None = Field(
        default=None, description="Spikes: events counted in the minute."
    )
    baseline: float | None = Field(default=None, description="Spikes: expected events per minute.")
    detail: Annotated[str, Field(max_length=500)] = ""


class AreaFigures(BaseModel):
    """One city's or district's figures for one minute."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_serialization_defaults_required=True)

    violations: int = Field(ge=0)
    incidents_opened: int = Field(ge=0)
    responses_closed: int = Field(ge=0, description="Incidents closed or cancelled in the minute.")
    response_p50_s: float | None = Field(
        description="Median time to arrival of the incidents closed in the minute with a unit on "
        "scene (quantileExactInclusive: linear interpolation, numpy's 'linear'); null if none."
    )
    response_p90_s: float | None = Field(description="90th percentile, same definition.")


class CityFigures(Event):
    """One city's figures for one minute of event time, version 1 (topic ``<prefix>.city_figures.v1``,
    key: city).

    Published once the minute is final: the event time read has passed the minute's end by the
    allowed lateness (``DOZOR_FIGURES_ALLOWED_LATENESS_S``), or the feed has been idle. An event
    arriving later still counts: the minute is published again with ``revision`` + 1 and
    ``late_events`` says how many arrived after the first publication. A consumer keeps the
    highest revision per (city, minute). A minute without any event in the city has no message.
    ``event_time`` is the minute's end.
    """

    family: ClassVar[str] = "city_figures"
    schema_version: Literal[1] = 1
    city: CityId
    minute: AwareDatetime = Field(description="Start of the minute (UTC).")
    revision: Annotated[int, Field(ge=1)]
    late_events: int = Field(ge=0, description="Events counted after revision 1 was published.")
    violations: int = Field(ge=0)
    violations_by_type: dict[str, int]
    fines_kzt: int = Field(ge=0, description="Sum of the violations' fines, tenge.")
    incidents_opened: int = Field(ge=0)
    incidents_by_category: dict[str, int]
    incidents_by_channel: dict[str, int]
    incidents_by_priority: dict[str, int] = Field(description="Keyed by priority, '1' (highest) to '4'.")
    responses_closed: int = Field(ge=0)
    response_p50_s: float | None
    response_p90_s: float | None
    districts: dict[str, AreaFigures] = Field(
        description="Per district id; '' holds events with no district."
    )

    def content_digest(self) -> str:
        """A digest of the figures alone (no revision, lateness or ids): equal digests, same figures.

        The publisher compares it to decide whether a minute needs a revision, and the ingest stores
        it beside the message, so a restarted publisher reads back what it last said.
        """
        content = self.model_dump(
            exclude={"event_id", "event_time", "schema_version", "revision", "late_events"}
        )
        content["minute"] = self.minute.isoformat()
        return hashlib.sha1(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Family:
    """One event family: its model, its topic suffix and which field keys its messages.

    ``derived`` families are computed by Dozor's workers (output topics for downstream consumers)
    rather than sent by source systems; the worker stores them like the others.
    """

    name: str
    model: type[Event]
    version: int
    key_field: str
    derived: bool = False

    def topic(self, prefix: str) -> str:
        return family_topic(prefix, self.name, self.version)

    def key(self, ev: Event) -> bytes:
        return str(getattr(ev, self.key_field)).encode()


FAMILIES: dict[str, Family] = {
    "violations": Family("violations", Violation, 1, "camera_id"),
    # Incidents and dispatches share the key (incident id) and partition count, so a join of the
    # two stays on one partition and one worker.
    "incidents": Family("incidents", IncidentEvent, 1, "incident_id"),
    "dispatches": Family("dispatches", DispatchEvent, 1, "incident_id"),
    "integrity": Family("integrity", IntegrityReport, 1, "region"),
    "calls": Family("calls", CallEvent, 1, "call_id"),
    # Version 2, the one stored; version 1 is still published beside it (RESPONSE_TIMES_V1).
    "response_times": Family("response_times", ResponseTimeV2, 2, "incident_id", derived=True),
    "alerts": Family("alerts", Alert, 1, "city", derived=True),
    "city_figures": Family("city_figures", CityFigures, 1, "city", derived=True),
}
#: Response times version 1 (closure only), published beside version 2 for the consumers built on it
#: and never read by Dozor: no table, no ingest; its schema is published like the others.
RESPONSE_TIMES_V1 = Family("response_times", ResponseTime, 1, "incident_id", derived=True)
#: Every topic Dozor publishes a schema for, by its file name stem (``response_times.v2``).
PUBLISHED: dict[str, Family] = {f"{f.name}.v{f.version}": f for f in (*FAMILIES.values(), RESPONSE_TIMES_V1)}
#: Families sent by source systems (and the simulator), as opposed to derived ones.
INPUT_FAMILIES: tuple[str, ...] = tuple(n for n, f in FAMILIES.items() if not f.derived)


def _first_error(e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "event"
    return f"{loc}: {first['msg']}"


def _km_from_city(city_id: str, lat: float, lon: float) -> float:
    """Equirectangular distance: exact enough at city scale and a hundred times cheaper than haversine."""
    c = city(city_id)
    x = math.radians(lon - c.lon) * math.cos(math.radians((lat + c.lat) / 2))
    return 6371.0 * math.hypot(x, math.radians(lat - c.lat))


def is_historical(headers: object) -> bool:
    """Whether a Kafka message's headers mark it as from a historical import.

    Headers come as a list of (name, value) pairs from aiokafka and kafka-python, and as a mapping
    from faust; a message without any is the common case and costs one truth test.
    """
    if not headers:
        return False
    names = headers.keys() if isinstance(headers, dict) else (h[0] for h in headers)  # type: ignore[attr-defined]
    return HISTORICAL_HEADER in names


def parse_event(
    family: str,
    raw: bytes,
    now: dt.datetime | None = None,
    unit_id_pattern: re.Pattern[str] = UNIT_ID_RE,
    earliest: dt.datetime = EARLIEST_EVENT,
    retained_since: dt.datetime | None = None,
) -> Event:
    """Validate one message of ``family``; raise :class:`InvalidEvent` with a reason code otherwise.

    ``retained_since`` is where the family's table retention starts (now minus its days): an event
    older than that would be inserted and then deleted by the table's TTL, a loss nobody sees, so
    it is refused as ``expired`` instead (a historical import reaches that far back).

    ``unit_id_pattern`` is the shape of a crew's call sign (DOZOR_UNIT_ID_PATTERN): a dispatch whose
    unit is named any other way (a person's name, a personnel number) is refused, not stored.

    The JSON is decoded by jiter (pydantic's own parser, as a library) with duplicate keys caught:
    an object that names a field twice is ``malformed_json``, never "the last one wins" — a source
    that sends ``event_id`` twice has said two things, and storing either would be a guess.
    Measured: 2.1 µs a violation for the decode against 0.9 µs for orjson (which cannot tell), 5.3 µs
    with pydantic's validation against 3.5 µs for ``model_validate_json`` (benchmarks/results/validate.txt);
    issue 30's faster decoder must keep this verdict.
    Only a message that fails validation is looked at again, cheapest check first, to name the
    reason. Domain checks (known place, position near the city, sane time) follow.
    """
    fam = FAMILIES[family]
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("oversize", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        obj = jiter.from_json(raw, catch_duplicate_keys=True, allow_inf_nan=False)
    except ValueError as e:
        raise InvalidEvent("malformed_json", str(e)) from None
    try:
        ev = fam.model.model_validate(obj)
    except ValidationError:
        ev = _explain(fam, obj)
    d = ev.__dict__  # field values; getattr on a missing field is slow in pydantic
    place = d.get("city")
    if place is not None and place not in CITY_IDS:
        # Source systems spell cities their own way (Russian, Kazakh, former names): a known
        # spelling is mapped to its id (rare, so the copy is cheap); anything else is refused.
        resolved = resolve_city(place)
        if resolved is None:
            raise InvalidEvent("unknown_city", f"city={place!r}")
        ev = ev.model_copy(update={"city": resolved})
        place = resolved
    region = d.get("region")
    if region is not None and region not in REGIONS:
        raise InvalidEvent("unknown_city", f"region={region!r}")
    lat = d.get("lat")
    if lat is not None:
        lon = d["lon"]
        if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]):
            raise InvalidEvent("bad_position", f"lat={lat}, lon={lon} is outside Kazakhstan")
        km = _km_from_city(place, lat, lon)
        if km > MAX_CITY_DISTANCE_KM:
            raise InvalidEvent("bad_position", f"lat={lat}, lon={lon} is {km:.0f} km from {place}")
    now = now or dt.datetime.now(dt.UTC)
    # Every time field has event_time's bounds: a .NET empty date (0001-01-01T00:00+05:00) in
    # opened_at passed once and crashed the join, whose UTC conversion lands in year 0.
    # As timestamps: comparing aware datetimes calls utcoffset() on both sides of each comparison.
    latest = now.timestamp() + _MAX_FUTURE_SKEW_S
    oldest = _EARLIEST_TS if earliest is EARLIEST_EVENT else earliest.timestamp()
    for name in _TIME_FIELDS[family]:
        t = d[name]
        if t is not None and not (oldest <= t.timestamp() <= latest):
            why = "in the future" if t.timestamp() > latest else "before DOZOR_EARLIEST_EVENT_DATE"
            raise InvalidEvent("bad_time", f"{name}={t.isoformat()} is {why}")
    if retained_since is not None and d["event_time"] < retained_since:
        raise InvalidEvent(
            "expired", f"event_time={d['event_time'].isoformat()} is before {retained_since:%Y-%m-%d}, where "
            f"its table's retention starts: raise {_RETENTION_VARS.get(family, _RAW_RETENTION)} to keep it",
        )  # fmt: skip
    if family == "dispatches" and not unit_id_pattern.fullmatch(d["unit_id"]):
        raise InvalidEvent(
            "schema", f"unit_id: {d['unit_id']!r} is not a call sign ({unit_id_pattern.pattern})"
        )
    return ev


#: What decides how old an event of a family may be (an ``expired`` refusal names them all).
_RAW_RETENTION = (
    "DOZOR_RETENTION_RAW_DAYS and DOZOR_RETENTION_AGGREGATE_DAYS (the roll-ups the managers' pages read "
    "keep at least as long; an event older than DOZOR_EARLIEST_EVENT_DATE also needs --historical)"
)
_RETENTION_VARS = {
    "integrity": "DOZOR_RETENTION_INTEGRITY_DAYS",
    "city_figures": "DOZOR_RETENTION_AGGREGATE_DAYS",
}


def _time_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The model's datetime fields, event_time first."""
    return tuple(
        name
        for name, f in model.model_fields.items()
        if f.annotation in (AwareDatetime, AwareDatetime | None)
    )


#: Per family, the fields whose times parse_event bounds.
_TIME_FIELDS = {name: _time_fields(fam.model) for name, fam in FAMILIES.items()}


def _explain(fam: Family, obj: object) -> Event:
    """The slow path: find out why a decoded message failed, and raise with that reason."""
    if not isinstance(obj, dict):
        raise InvalidEvent("malformed_json", f"top level is {type(obj).__name__}, not an object")
    version = obj.get("schema_version", fam.version)
    if version != fam.version:
        raise InvalidEvent("unsupported_version", f"schema_version={version!r}")
    try:
        return fam.model.model_validate(obj)
    except ValidationError as e:
        raise InvalidEvent("schema", _first_error(e)) from None


def parse_violation(raw: bytes, now: dt.datetime | None = None) -> Violation:
    """:func:`parse_event` for the violations family."""
    return parse_event("violations", raw, now)  # type: ignore[return-value]


def export_schemas(out: Path) -> list[Path]:
    """Write every published topic's JSON Schema to ``out/<family>.v<N>.json``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fam in PUBLISHED.items():
        path = out / f"{stem}.json"
        path.write_bytes(
            orjson.dumps(json_schema(fam), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        paths.append(path)
    return paths


def json_schema(family: str | Family) -> dict:
    """The published JSON Schema (draft 2020-12) of one family's messages (by name: the stored version)."""
    fam = FAMILIES[family] if isinstance(family, str) else family
    schema = fam.model.model_json_schema(mode="serialization")
    added = getattr(fam.model, "added_in_v1", ())
    if added:
        schema["required"] = [f for f in schema.get("required", []) if f not in added]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://dozor.kz/schemas/{fam.name}.v{fam.version}.json",
        **schema,
        "x-dozor-topic": fam.topic("dozor"),
        "x-dozor-key": fam.key_field,
    }
