"""What the worker adds to a valid event before storing it: a district id and, for violations, the fine.

- **District.** Source systems send district names in Russian, Kazakh or Latin spelling, or none at
  all (the 102 app and SOS buttons send a GPS fix only). A known spelling becomes the district id
  (:func:`dozor.cities.resolve_district`); without a name, the district is found from the
  coordinates in the shipped boundaries (:mod:`dozor.geo`). An event with neither keeps "" (counted
  as unknown), and so does one whose name is no district of its city: it is counted in
  ``dozor_unknown_district_total``, never moved to the district at its position.
  City spellings are resolved earlier, by the validator, since an unknown city is a rejection.
- **Fine.** Each violation type carries a fine in MCI (the monthly calculation index) under the Code
  of Administrative Offences; speeding is graded by the excess. The tenge amount is the MCI of the
  event's year (``Settings.mci_kzt``) times that count, so a fine from December stays at December's
  rate after the index changes in January.

The amounts in :data:`FINE_MCI` are the defaults for the simulator and the dashboards; the legal
department owns the real schedule, which changes by law, so treat them as configuration to verify.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Mapping

from prometheus_client import Counter

from dozor.cities import city, resolve_district
from dozor.geo import DistrictMap, district_map
from dozor.schemas import CityFigures, Event, Violation, ViolationType

__all__ = ["FINE_MCI", "SPEEDING_MCI", "Enricher", "fine_mci"]

#: A source sends the same few district names over and over; normalising one costs about as much
#: as validating the event. Bounded, since the names come from outside.
_resolve_district = functools.lru_cache(maxsize=4096)(resolve_district)

UNKNOWN_DISTRICTS = Counter(
    "dozor_unknown_district_total", "Events whose district name is not a district of their city", ["city"]
)

#: Fine in MCI per violation type (speeding: see :data:`SPEEDING_MCI`).
FINE_MCI: dict[str, int] = {
    ViolationType.red_light: 10,
    ViolationType.wrong_lane: 5,
    ViolationType.bus_lane: 5,
    ViolationType.stop_line: 3,
    ViolationType.no_seat_belt: 3,
    ViolationType.phone_use: 5,
    ViolationType.pedestrian_crossing: 10,
    ViolationType.parking: 5,
}
#: Speeding by excess over the limit in km/h: (lowest excess, MCI), ascending.
SPEEDING_MCI: tuple[tuple[int, int], ...] = ((10, 5), (20, 10), (40, 20))
#: A plain str: reading an enum member goes through a descriptor, and this runs for every event.
_SPEEDING = ViolationType.speeding.value


def fine_mci(violation_type: str, speed_kmh: int | None, limit_kmh: int | None) -> int:
    """The fine in MCI; 0 for speeding within the tolerance (10 km/h) or without a measurement."""
    if violation_type != _SPEEDING:
        return FINE_MCI.get(violation_type, 0)
    if speed_kmh is None or limit_kmh is None:
        return 0
    excess = speed_kmh - limit_kmh
    fine = 0
    for lowest, mci in SPEEDING_MCI:
        if excess > lowest:
            fine = mci
    return fine


class Enricher:
    """Normalises districts and prices violations; one per worker, shared by its batches."""

    def __init__(self, mci_kzt: Mapping[int, int], districts: DistrictMap | None = None) -> None:
        if not mci_kzt:
            raise ValueError("mci_kzt needs at least one year")
        self._years = sorted(mci_kzt)
        self._mci = dict(mci_kzt)
        self._mci_seen: dict[int, int] = {}  # by year, including years answered by an earlier one
        self._districts = districts or district_map()

    def mci_for(self, year: int) -> int:
        """The MCI of ``year``; the latest earlier year when the table has no entry for it yet."""
        mci = self._mci_seen.get(year)
        if mci is None:
            i = bisect.bisect_right(self._years, year) - 1
            mci = self._mci_seen[year] = self._mci[self._years[max(i, 0)]]
        return mci

    def district(self, ev: Event) -> str:
        """The event's district id, "" when neither its name nor its position says.

        A district the source names but nobody knows (a misspelling, a department's own beat)
        is stored as "" and counted in ``dozor_unknown_district_total``: never replaced by the
        district at the event's position, which would move it silently.
        """
        d = ev.__dict__
        city_id, given = d.get("city"), d.get("district", "")
        if city_id is None:
            return ""
        if given and given in city(city_id).district_ids:
            return given  # the common case: a source that already sends ids
        if given:
            found = _resolve_district(city_id, given)
            if not found:
                UNKNOWN_DISTRICTS.labels(city_id).inc()
            return found or ""
        lat = d.get("lat")
        if lat is not None:
            return self._districts.district_at(city_id, lat, d["lon"])
        return ""

    def extras(self, ev: Event) -> list[object]:
        """Derived column values stored after the event's own fields (see ``TableSpec.extra``)."""
        if isinstance(ev, Violation):
            d = ev.__dict__
            mci = fine_mci(d["violation_type"], d["speed_kmh"], d["speed_limit_kmh"])
            return [mci, mci * self.mci_for(d["event_time"].year)]
        if isinstance(ev, CityFigures):
            # The figures' digest is the publisher's memory of what it said; the body is the
            # message as a consumer reads it.
            return [ev.content_digest(), ev.to_json().decode()]
        return []
