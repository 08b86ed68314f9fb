"""A deterministic simulator of Kazakhstan's traffic cameras.

Cities are weighted by population and the hour of day (local time, UTC+5); each city has cameras
at fixed places in its districts, so the same seed gives the same cameras, plates and events.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from dozor.cities import CITIES, City
from dozor.privacy import hash_plate, mask_plate
from dozor.schemas import Violation, ViolationType

__all__ = ["Camera", "ViolationSimulator", "HOURLY_PROFILE"]

#: Relative traffic by local hour: night trough, morning and evening rush.
HOURLY_PROFILE = (
    0.20, 0.12, 0.08, 0.07, 0.08, 0.15, 0.40, 0.80, 1.00, 0.85, 0.70, 0.70,
    0.75, 0.75, 0.70, 0.75, 0.85, 1.00, 0.95, 0.80, 0.65, 0.50, 0.40, 0.30,
)  # fmt: skip

#: Share of each violation type among detections (speeding dominates camera fines in KZ).
TYPE_WEIGHTS = {
    ViolationType.speeding: 0.46,
    ViolationType.red_light: 0.10,
    ViolationType.wrong_lane: 0.06,
    ViolationType.bus_lane: 0.08,
    ViolationType.stop_line: 0.09,
    ViolationType.no_seat_belt: 0.08,
    ViolationType.phone_use: 0.05,
    ViolationType.pedestrian_crossing: 0.05,
    ViolationType.parking: 0.03,
}

KZ_OFFSET = dt.timedelta(hours=5)
_PLATE_LETTERS = "ABCDEFHKLMNOPRSTUXYZ"


@dataclass(frozen=True)
class Camera:
    id: str
    city: City
    district: str
    lat: float
    lon: float
    speed_limit: int


class ViolationSimulator:
    """Generates valid :class:`Violation` events; ``cameras_per_100k`` sets the network's density."""

    def __init__(self, seed: int, plate_salt: str, cameras_per_100k: float = 2.0) -> None:
        self.rng = random.Random(seed)
        self.salt = plate_salt
        self.cameras: dict[str, list[Camera]] = {}
        for c in CITIES:
            n = max(3, round(c.population / 100_000 * cameras_per_100k))
            spread = 0.02 + 0.06 * math.sqrt(c.population / 2_230_000)
            self.cameras[c.id] = [
                Camera(
                    id=f"{c.id}-cam-{i:03d}",
                    city=c,
                    district=c.districts[i % len(c.districts)],
                    lat=round(c.lat + self.rng.uniform(-spread, spread), 5),
                    lon=round(c.lon + self.rng.uniform(-spread, spread) * 1.5, 5),
                    speed_limit=self.rng.choice((40, 60, 60, 60, 80, 90)),
                )
                for i in range(n)
            ]
        self._city_ids = [c.id for c in CITIES]
        self._city_w = [c.population for c in CITIES]
        self._types = list(TYPE_WEIGHTS)
        self._type_w = list(TYPE_WEIGHTS.values())
        # A fixed fleet of plates per city: repeat offenders are real and plates repeat.
        self._plates = [self._plate() for _ in range(5000)]

    def _plate(self) -> str:
        r = self.rng
        return f"{r.randint(0, 999):03d}{''.join(r.choices(_PLATE_LETTERS, k=3))}{r.randint(1, 20):02d}"

    def violation(self, at: dt.datetime, city_id: str | None = None) -> Violation:
        """One event at ``at`` (UTC), in ``city_id`` or a population-weighted city."""
        r = self.rng
        cid = city_id or r.choices(self._city_ids, self._city_w)[0]
        cam = r.choice(self.cameras[cid])
        vtype = r.choices(self._types, self._type_w)[0]
        plate = r.choice(self._plates)
        speed = limit = None
        if vtype == ViolationType.speeding:
            limit = cam.speed_limit
            speed = limit + max(11, int(r.expovariate(1 / 18)) + 11)
        return Violation(
            event_id=uuid.UUID(int=r.getrandbits(128), version=4),
            event_time=at,
            camera_id=cam.id,
            city=cid,
            district=cam.district,
            lat=cam.lat,
            lon=cam.lon,
            violation_type=vtype,
            speed_kmh=speed,
            speed_limit_kmh=limit,
            plate_hash=hash_plate(plate, self.salt),
            plate_masked=mask_plate(plate),
        )

    def stream(
        self, rate: float, count: int | None = None, start: dt.datetime | None = None
    ) -> Iterator[Violation]:
        """Events at ``rate`` per second of event time, from ``start`` (default now), in real time
        only if the caller paces them; event time advances by 1/rate per event, scaled by the hour."""
        t = start or dt.datetime.now(dt.UTC)
        n = 0
        while count is None or n < count:
            yield self.violation(t)
            n += 1
            hour = (t + KZ_OFFSET).hour
            t += dt.timedelta(seconds=self.rng.expovariate(rate * max(HOURLY_PROFILE[hour], 0.05)))


def paced(events: Iterator[Violation], rate: float) -> Iterator[Violation]:
    """Yield events no faster than ``rate`` per second of wall time, stamped with the wall clock."""
    interval = 1.0 / rate
    next_t = time.monotonic()
    for ev in events:
        now = time.monotonic()
        if now < next_t:
            time.sleep(next_t - now)
        next_t = max(next_t + interval, time.monotonic() - 1.0)
        yield ev.model_copy(update={"event_time": dt.datetime.now(dt.UTC)})
