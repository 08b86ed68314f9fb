"""Local time, in one place: which local day and hour an instant is in a city, and back.

Dozor stores UTC. People read local time, and "local" is the city's own, for the period: until
1 March 2024 Kazakhstan had two zones (UTC+6 in the east and centre, UTC+5 in the west; Kyzylorda
moved to UTC+5 in December 2018), and before 2005 it kept summer time. The tz database has every
city's history (``Asia/Almaty``, ``Asia/Qostanay``, ``Asia/Aqtobe``, ``Asia/Aqtau``, ``Asia/Atyrau``,
``Asia/Oral``, ``Asia/Qyzylorda``), so a city's zone is a name, and its offsets come from the
database — never a fixed ``UTC+5``.

Every page, roll-up query, the PDF, the CSV, the simulator and the replay ask this module:

- :func:`zone_name` / :func:`zone` — a city's zone;
- :func:`local_day`, :func:`local_hour` — an instant's local day and hour in a city;
- :func:`day_bounds` — the UTC instants of a city's local midnights, for a query's range;
- :func:`sql_local` — the same in ClickHouse, for a statement over several cities (ClickHouse takes
  one constant zone per call, so the cities are grouped by zone);
- :func:`localize` — a wall-clock time written without a zone (an export's cell) as an instant,
  refusing one that does not exist (inside a clock change's gap) or that happened twice (in its
  overlap), unless a rule says which to take.

Every zone's offset is a whole number of hours (checked by a test against the tz database), so an
hourly roll-up in UTC holds every city's local days and hours exactly.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "CITY_ZONES",
    "REGION_ZONES",
    "DEFAULT_ZONE",
    "day_start",
    "zone_name",
    "zone",
    "local_day",
    "local_hour",
    "day_bounds",
    "sql_local",
    "localize",
    "BadLocalTime",
    "AMBIGUOUS_RULES",
]

#: The zone of every city the tz database gives its own; the others keep Asia/Almaty's history
#: (the east and centre, Shymkent and Taraz included).
CITY_ZONES: dict[str, str] = {
    "aktobe": "Asia/Aqtobe",
    "aktau": "Asia/Aqtau",
    "atyrau": "Asia/Atyrau",
    "oral": "Asia/Oral",
    "kyzylorda": "Asia/Qyzylorda",
    "kostanay": "Asia/Qostanay",
}
DEFAULT_ZONE = "Asia/Almaty"
#: Regions (integrity reports are by region) whose zone is not Asia/Almaty's.
REGION_ZONES: dict[str, str] = {
    "aktobe-region": "Asia/Aqtobe",
    "atyrau-region": "Asia/Atyrau",
    "kostanay-region": "Asia/Qostanay",
    "kyzylorda-region": "Asia/Qyzylorda",
    "mangystau": "Asia/Aqtau",
    "west-kazakhstan": "Asia/Oral",
}

#: How :func:`localize` treats a wall-clock time the zone had twice (the hour summer time ends).
AMBIGUOUS_RULES = ("refuse", "earlier", "later")


class BadLocalTime(ValueError):
    """A wall-clock time that names no instant (a clock change's gap) or two (its overlap)."""


def zone_name(place: str) -> str:
    """The IANA zone of a city or a region (``Asia/Almaty`` for those without one of their own)."""
    return CITY_ZONES.get(place) or REGION_ZONES.get(place) or DEFAULT_ZONE


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(city_id: str) -> ZoneInfo:
    return _zone(zone_name(city_id))


def local_day(instant: dt.datetime, city_id: str) -> dt.date:
    """The city's local calendar day of ``instant`` (an aware datetime)."""
    return instant.astimezone(zone(city_id)).date()


def local_hour(instant: dt.datetime, city_id: str) -> int:
    """The city's local hour of day (0-23) of ``instant``."""
    return instant.astimezone(zone(city_id)).hour


def day_start(ts: float, place: str) -> float:
    """The POSIX time of the local midnight that begins ``ts``'s day in a city or region."""
    local = dt.datetime.fromtimestamp(ts, zone(place))
    return dt.datetime.combine(local.date(), dt.time(), zone(place)).timestamp()


def day_bounds(city_id: str, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants of the city's local midnight at ``start`` and the midnight after ``end``."""
    z = zone(city_id)
    lo = dt.datetime.combine(start, dt.time(), z).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), z).astimezone(dt.UTC)
    return lo, hi


def sql_local(fn: str, column: str, city_column: str = "city") -> str:
    """A ClickHouse expression applying ``fn`` (``toDate``, ``toHour``, ``toStartOfDay``…) to
    ``column`` in each row's zone (its city's, or its region's for ``city_column="region"``):
    ``multiIf`` over the zones, one constant zone per call. Built from this module's tables only,
    never from user input."""
    by_zone: dict[str, list[str]] = {}
    for place, name in {**CITY_ZONES, **REGION_ZONES}.items():
        by_zone.setdefault(name, []).append(place)
    branches = []
    for name, cities in sorted(by_zone.items()):
        listed = ", ".join(f"'{c}'" for c in sorted(cities))
        branches.append(f"{city_column} IN ({listed}), {fn}({column}, '{name}')")
    return f"multiIf({', '.join(branches)}, {fn}({column}, '{DEFAULT_ZONE}'))"


def localize(
    wall: dt.datetime, tz: ZoneInfo, ambiguous: Literal["refuse", "earlier", "later"] = "refuse"
) -> dt.datetime:
    """``wall`` (a naive local time) in ``tz`` as an aware instant.

    A time in a gap (02:30 on the night clocks go forward) never happened: refused, never moved an
    hour as Python's zoneinfo would. A time in an overlap (01:30 on the night clocks go back)
    happened twice: refused, or the earlier or later one as ``ambiguous`` says.
    """
    if wall.tzinfo is not None:
        return wall
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    # The two folds differ: either a gap (neither round-trips) or an overlap (both do).
    if first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != wall:
        raise BadLocalTime(
            f"{wall:%Y-%m-%d %H:%M} did not happen in {tz.key} (the clocks moved forward past it)"
        )
    if ambiguous == "earlier":
        return first
    if ambiguous == "later":
        return second
    raise BadLocalTime(
        f"{wall:%Y-%m-%d %H:%M} happened twice in {tz.key} (the clocks moved back); say which with "
        '[time] ambiguous = "earlier" or "later"'
    )
