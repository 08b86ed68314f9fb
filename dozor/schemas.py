"""Canonical event schemas: the one definition used by producers, workers and the published JSON Schema.

Every event carries a stable ``event_id`` (deduplication key), a ``schema_version`` (so a consumer can
refuse what it does not understand) and an ``event_time`` in UTC, distinct from the time Dozor
ingests it. Personal data arrives already protected: a plate is only a keyed hash plus a masked form
(see :mod:`dozor.privacy`).

:func:`parse_violation` is the validator the workers run on every message. It never raises anything
but :class:`InvalidEvent`, whose ``reason`` code goes into the dead-letter record and metrics.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dozor.cities import CITY_IDS

__all__ = [
    "ViolationType",
    "Violation",
    "InvalidEvent",
    "parse_violation",
    "MAX_MESSAGE_BYTES",
    "REASONS",
]

#: A camera event is a few hundred bytes; anything past this is an attack or a bug, not an event.
MAX_MESSAGE_BYTES = 64 * 1024

#: Bounds of Kazakhstan with a margin, so a swapped lat/lon or a zero position is caught.
LAT_RANGE = (40.0, 56.0)
LON_RANGE = (46.0, 88.0)

#: Events from before the system existed, or further ahead than clock skew explains, are absurd.
EARLIEST_EVENT = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE_SKEW = dt.timedelta(minutes=10)

#: Reason codes of rejected input, in the dead-letter topic and the ``dozor_deadletter_total`` metric.
REASONS = {
    "oversize": "message larger than the limit",
    "malformed_json": "not a JSON object",
    "unsupported_version": "schema_version not understood by this worker",
    "schema": "fields missing or of the wrong type",
    "unknown_city": "city id not in Dozor's reference data",
    "bad_position": "coordinates outside Kazakhstan",
    "bad_time": "event time absurd (before 2020 or in the future)",
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


class InvalidEvent(ValueError):
    """A message that cannot become an event; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class Violation(BaseModel):
    """A traffic-camera violation, version 1 (topic ``<prefix>.violations.v1``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_enum_values=True)

    schema_version: Literal[1] = 1
    event_id: uuid.UUID = Field(description="Stable id; re-sends of the same detection repeat it.")
    event_time: dt.datetime = Field(description="When the camera detected it (UTC, ISO 8601).")
    camera_id: Annotated[str, Field(min_length=1, max_length=64)]
    city: Annotated[str, Field(min_length=1, max_length=32, description="City id, e.g. 'astana'.")]
    district: Annotated[str, Field(max_length=64)] = ""
    lat: float
    lon: float
    violation_type: ViolationType
    speed_kmh: Annotated[int, Field(ge=0, le=400)] | None = None
    speed_limit_kmh: Annotated[int, Field(ge=0, le=200)] | None = None
    plate_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 of the plate.")]
    plate_masked: Annotated[str, Field(max_length=16)]

    @field_validator("event_time")
    @classmethod
    def _aware_utc(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("event_time must carry a time zone")
        return v.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _speed_pair(self) -> Violation:
        if self.violation_type == ViolationType.speeding and (
            self.speed_kmh is None or self.speed_limit_kmh is None
        ):
            raise ValueError("speeding needs speed_kmh and speed_limit_kmh")
        return self

    def to_json(self) -> bytes:
        """The wire form: compact JSON, UTC times with a 'Z'."""
        return orjson.dumps(self.model_dump(mode="json"))


def parse_violation(raw: bytes, now: dt.datetime | None = None) -> Violation:
    """Validate one message's bytes; raise :class:`InvalidEvent` with a reason code otherwise.

    The checks run cheapest first, so a flood of garbage costs little.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("oversize", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidEvent("malformed_json", str(e)) from None
    if not isinstance(obj, dict):
        raise InvalidEvent("malformed_json", f"top level is {type(obj).__name__}, not an object")
    version = obj.get("schema_version", 1)
    if version != 1:
        raise InvalidEvent("unsupported_version", f"schema_version={version!r}")
    try:
        ev = Violation.model_validate(obj)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "event"
        raise InvalidEvent("schema", f"{loc}: {first['msg']}") from None
    if ev.city not in CITY_IDS:
        raise InvalidEvent("unknown_city", f"city={ev.city!r}")
    if not (LAT_RANGE[0] <= ev.lat <= LAT_RANGE[1] and LON_RANGE[0] <= ev.lon <= LON_RANGE[1]):
        raise InvalidEvent("bad_position", f"lat={ev.lat}, lon={ev.lon}")
    now = now or dt.datetime.now(dt.UTC)
    if not (EARLIEST_EVENT <= ev.event_time <= now + MAX_FUTURE_SKEW):
        raise InvalidEvent("bad_time", f"event_time={ev.event_time.isoformat()}")
    return ev
