"""102's own figures: how long citizens wait for an answer, how many hang up, who is waiting now.

Computed from the raw call events (``call_events``, migration 0016), one call at a time: every event
of a call repeats ``offered_at``, so a call's figures come from whichever of its events arrived.

- **answer time**: the first ``answered`` event's time minus ``offered_at`` (seconds). Percentiles
  are exact (``quantileExactInclusive``, as for response times) and the shares within 10, 15 and
  20 s are those the standards use: NENA-STA-020.1-2020 asks 90 % within 15 s and 95 % within 20 s
  per hour, NFPA 1225 90 % within 10 s. Shares are of the calls *answered*.
- **abandoned**: a call with an ``abandoned`` event and no answer; the rate is of the calls offered.
- **waiting now** (at an instant T): offered at or before T, neither answered, abandoned,
  transferred nor ended by T, and offered less than :data:`QUEUE_HORIZON` before T (a call with no
  outcome for longer is a lost record, not a citizen on hold).

A call belongs to the local hour and day of its ``offered_at`` in the page's zone. Values from users
are bound parameters; the group keys come from :data:`ANSWER_GROUPS`, fixed here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from dozor.access import Scope
from dozor.dashboard.queries.area import AREA_SQL, Area, area_params, bounds

__all__ = [
    "ANSWER_GROUPS",
    "ANSWER_WITHIN_S",
    "QUEUE_HORIZON",
    "STANDARDS",
    "AnswerRow",
    "QueueRow",
    "call_answering",
    "call_queue",
]

#: The answer-time thresholds the standards name, in seconds.
ANSWER_WITHIN_S = (10, 15, 20)
#: (name, seconds, share of calls) the pages draw as targets.
STANDARDS = (("NFPA 1225", 10, 0.90), ("NENA", 15, 0.90), ("NENA", 20, 0.95))
#: How long a call without an outcome counts as waiting.
QUEUE_HORIZON = dt.timedelta(minutes=30)

#: What the managers' figures may be grouped by (SQL over the per-call subquery, fixed here).
ANSWER_GROUPS: dict[str, str] = {
    "hour": "toString(toStartOfHour(offered, %(tz)s))",
    "day": "toString(toDate(offered, %(tz)s))",
    "hour_of_day": "toString(toHour(offered, %(tz)s))",
    "channel": "call_channel",
    "district": "call_district",
    "all": "''",
}

#: One row per call offered in [lo, hi): its channel, district, offer, answer time (NULL if never
#: answered) and whether it was abandoned. A call's events come within hours of its offer, so the
#: events read are those of the range and the day after it.
_PER_CALL = """
SELECT call_id, any(channel) AS call_channel, any(district) AS call_district, min(offered_at) AS offered,
       countIf(status = 'answered') > 0 AS was_answered,
       if(was_answered,
          (toUnixTimestamp64Milli(minIf(event_time, status = 'answered')) - toUnixTimestamp64Milli(offered))
          / 1000, NULL) AS wait_s,
       countIf(status = 'abandoned') > 0 AND NOT was_answered AS abandoned
FROM call_events
WHERE {area} AND event_time >= %(lo)s AND event_time < %(hi)s + INTERVAL 1 DAY
GROUP BY call_id
HAVING offered >= %(lo)s AND offered < %(hi)s
"""

_ANSWERING = """
SELECT {key} AS k, count(), countIf(wait_s IS NOT NULL), countIf(abandoned),
       quantilesExactInclusive(0.5, 0.9, 0.95)(wait_s),
       countIf(wait_s <= 10), countIf(wait_s <= 15), countIf(wait_s <= 20)
FROM ({per_call})
GROUP BY k ORDER BY k
"""


@dataclass(frozen=True)
class AnswerRow:
    """One group's calls: offered, answered, abandoned, answer-time percentiles and shares."""

    key: str
    offered: int
    answered: int
    abandoned: int
    #: p50, p90, p95 of the answer time in seconds; None when nothing was answered.
    answer_s: tuple[float | None, float | None, float | None]
    #: Calls answered within each of :data:`ANSWER_WITHIN_S` seconds.
    within: dict[int, int]

    def within_share(self, seconds: int) -> float | None:
        """The share of answered calls answered within ``seconds`` (10, 15 or 20)."""
        return self.within[seconds] / self.answered if self.answered else None

    @property
    def abandonment(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None


def call_answering(
    client: Client, scope: Scope, city: str, start: dt.date, end: dt.date, by: str, tz: str,
    district: str | None = None,
) -> list[AnswerRow]:  # fmt: skip
    """102's answering of the calls offered on local days ``start``…``end`` in ``city`` (or one
    district), grouped ``by`` one of :data:`ANSWER_GROUPS`."""
    if by not in ANSWER_GROUPS:
        raise ValueError(f"cannot group calls by {by!r}; choose one of {sorted(ANSWER_GROUPS)}")
    p = {**area_params(scope, Area(city, district)), "tz": tz}
    p["lo"], p["hi"] = bounds(tz, start, end)
    sql = _ANSWERING.format(key=ANSWER_GROUPS[by], per_call=_PER_CALL.format(area=AREA_SQL))
    out = []
    for k, n, answered, abandoned, levels, w10, w15, w20 in client.query(sql, parameters=p).result_rows:
        answer = tuple(float(v) for v in levels) if answered else (None, None, None)
        out.append(AnswerRow(str(k), int(n), int(answered), int(abandoned), answer,  # type: ignore[arg-type]
                             {10: int(w10), 15: int(w15), 20: int(w20)}))  # fmt: skip
    return out


@dataclass(frozen=True)
class QueueRow:
    """A city's 102 at one instant: calls waiting, the longest wait, and the last hour's answers."""

    city: str
    waiting: int = 0
    #: Seconds the longest-waiting call has waited; None when nobody waits.
    longest_wait_s: float | None = None
    answered_hour: int = 0
    within_15_hour: int = 0

    @property
    def within_15_share(self) -> float | None:
        return self.within_15_hour / self.answered_hour if self.answered_hour else None


_QUEUE = """
SELECT call_city,
       countIf(waiting), minIf(offered, waiting),
       countIf(answered_n > 0 AND answered > %(t)s - INTERVAL 1 HOUR),
       countIf(answered_n > 0 AND answered > %(t)s - INTERVAL 1 HOUR
               AND toUnixTimestamp64Milli(answered) - toUnixTimestamp64Milli(offered) <= 15000)
FROM (
    SELECT call_id, any(city) AS call_city, min(offered_at) AS offered,
           countIf(status = 'answered') AS answered_n, minIf(event_time, status = 'answered') AS answered,
           countIf(status != 'offered') = 0 AND offered > %(t)s - INTERVAL {horizon} SECOND AS waiting
    FROM call_events
    WHERE has(%(cities)s, city) AND event_time > %(t)s - INTERVAL {window} SECOND AND event_time <= %(t)s
    GROUP BY call_id
    HAVING offered <= %(t)s
)
GROUP BY call_city
"""


def call_queue(
    client: Client, scope: Scope, t0: dt.datetime, cities: list[str] | None = None
) -> dict[str, QueueRow]:
    """Each visible city's 102 as of the instant ``t0``: what a wall's 102 tile shows."""
    visible = scope.visible_cities()
    wanted = [c for c in (cities or visible) if c in visible]
    t = t0.astimezone(dt.UTC)
    horizon = int(QUEUE_HORIZON.total_seconds())
    sql = _QUEUE.format(horizon=horizon, window=max(horizon, 3600))
    out: dict[str, QueueRow] = {}
    for city, waiting, oldest, answered, within in client.query(
        sql, parameters={"t": t, "cities": wanted}
    ).result_rows:
        longest = None
        if waiting:
            first = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
            longest = max((t - first).total_seconds(), 0.0)
        out[city] = QueueRow(city, int(waiting), longest, int(answered), int(within))
    return out
