"""What every managers' query shares: an area checked against the user's scope, its SQL condition,
and a range of local days as UTC instants. One home, so that the managers' pages and 102's figures
(``calls``) refuse and bound the same way."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dozor.access import Scope

__all__ = ["Area", "AREA_SQL", "area_params", "bounds"]


@dataclass(frozen=True)
class Area:
    """A city, or one district of it."""

    city: str
    district: str | None = None


#: The rows of an area: its city, and its districts when the area or the scope limits them.
AREA_SQL = "city = %(city)s AND (%(all_districts)s OR has(%(districts)s, district))"


def area_params(scope: Scope, area: Area) -> dict[str, object]:
    """The SQL parameters of an area, after checking it against the scope."""
    scope.require_city(area.city)
    if area.district is not None:
        scope.require_district(area.city, area.district)
        districts: list[str] = [area.district]
    elif scope.districts is not None:
        districts = sorted(scope.districts)
    else:
        districts = []
    return {"city": area.city, "all_districts": not districts, "districts": districts}


def bounds(tz: str, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants of local midnight at ``start`` and the midnight after ``end``."""
    zone = ZoneInfo(tz)
    lo = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return lo, hi
