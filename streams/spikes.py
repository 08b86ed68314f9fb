"""Spike alerts: is a city's count in one minute far above what that minute usually sees?

The figures publisher (``dozor.streams.figures``) hands each tick's per-minute counts to one
:class:`SpikeJudge`, which keeps all the judging's state: the minutes already judged, the spikes
already alerted (one alert per spike) and a cache of the weekly baselines. The statistics are
plain functions (``poisson_sf``, ``is_spike``, ``baseline_for``), unit-tested in
``tests/unit/test_spikes.py``.

Each tick, every minute not yet final (and, once, every minute as it becomes final, and again
whenever late events revise it) is compared with the city's baseline for that hour of that
weekday: the mean per minute over the same hour in the previous four weeks, or, without a week of
history, over the 60 minutes before; never less than the mean of the 15 minutes before. That floor
follows a ramp such as the morning rush, where the traffic of 07:00 is twice that of 06:00: judged
against the hour before, ordinary noise at the start of the rush once passed for a spike (a
simulated day in CI did exactly that). A count at least ``spike_ratio`` times the baseline, above
the minimum, and improbable under a Poisson count with the baseline's mean raises one alert; the
minute after an alerted one does not raise another. The running count is checked, so a spike is
reported while its minute is still open, not after the allowed lateness.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator

from dozor.schemas import Alert
from dozor.settings import Settings

__all__ = ["SpikeJudge", "poisson_sf", "is_spike", "baseline_for", "KINDS", "MINUTE", "NAMESPACE"]

#: uuid5 namespace of the figures' and spike alerts' event ids (shared with the figures).
NAMESPACE = uuid.UUID("0c6f8a52-2d1e-4b7a-9f3c-5e8d7a6b1c20")
MINUTE = dt.timedelta(minutes=1)
#: Trailing baseline: the minutes before the one judged, when no week of history exists.
TRAILING_MINUTES = 60
#: The baseline is never below the mean of this many minutes before the one judged.
RECENT_MINUTES = 15
WEEKS = 4
#: What is counted, in the order of the counts in a tick's totals.
KINDS = ("violations", "incidents")
#: Per kind of spike: the per-minute table and its count column.
_COUNTED = {
    "violations": ("violations_by_minute", "violations"),
    "incidents": ("incidents_by_minute", "opened"),
}

#: (city, minute) → counts, the first two being violations and incidents opened.
Totals = dict[tuple[str, dt.datetime], list]


def poisson_sf(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam): how surprising a count of ``k`` is for a mean of ``lam``."""
    if k <= 0:
        return 1.0
    if k <= lam:
        return 0.5  # not in the upper tail; all the callers need to know
    term = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1))
    total, i = 0.0, k
    while term > total * 1e-12:
        total += term
        i += 1
        term *= lam / i
    return min(total, 1.0)


def is_spike(observed: int, baseline: float, minimum: int, ratio: float, p_value: float) -> bool:
    """Far above the baseline: by ratio, by a minimum count, and beyond Poisson noise.

    The ratio alone alerts on noise in small cities (2 against a baseline of 0.5); the p-value alone
    alerts on a busy city's ordinary 20 % swing. The baseline is floored at one per minute: a city
    that was silent has no rate to be surprised against.
    """
    if observed < minimum or observed < ratio * baseline:
        return False
    return poisson_sf(observed, max(baseline, 1.0)) < p_value


def baseline_for(
    before: list[int], weekly: float | None, *, has_trailing_hour: bool
) -> tuple[float, str] | None:
    """The rate a minute is judged against, and where it comes from; None without history.

    ``before`` holds the counts of the minutes before the judged one, newest first. The same hour
    on previous weeks knows the time of day; without it, the hour before is the best guess. Either
    is floored by the last 15 minutes: on a ramp such as the morning rush the hour before (or the
    hour's weekly mean) lags the present level, and ordinary noise would pass for a spike.
    """
    if weekly is not None:
        baseline, basis = weekly, "the same hour on previous weeks"
    elif has_trailing_hour:
        baseline, basis = sum(before[:TRAILING_MINUTES]) / TRAILING_MINUTES, "the last hour"
    else:
        return None
    recent = sum(before[:RECENT_MINUTES]) / RECENT_MINUTES
    if recent > baseline:
        return recent, "the last 15 minutes"
    return baseline, basis


class SpikeJudge:
    """Judges each tick's minutes and remembers what it alerted, so a spike is alerted once.

    ``rows(sql, **params)`` runs a query on ClickHouse (the weekly baselines come from the
    per-minute tables); the publisher passes its own, so both read through one client.
    """

    def __init__(self, settings: Settings, rows: Callable[..., list]) -> None:
        self.settings = settings
        self._rows = rows
        self.horizon = dt.timedelta(hours=settings.figures_horizon_hours)
        self._from: dt.datetime | None = None
        self._alerted: set[tuple[str, str, dt.datetime]] = set()
        self._weekly: dict[tuple[str, dt.datetime], dict[str, float]] = {}

    def _weekly_baseline(
        self, kind: str, hour: dt.datetime, data_start: dt.datetime
    ) -> dict[str, float] | None:
        """Mean per minute, per city, over the same hour in the previous weeks with data; or None."""
        weeks = [hour - dt.timedelta(weeks=k) for k in range(1, WEEKS + 1)]
        weeks = [w for w in weeks if w >= data_start]
        if not weeks:
            return None
        cached = self._weekly.get((kind, hour))
        if cached is None:
            table, column = _COUNTED[kind]
            where = " OR ".join(
                f"(minute >= %(w{i})s AND minute < %(w{i})s + INTERVAL 1 HOUR)" for i in range(len(weeks))
            )
            rows = self._rows(
                f"SELECT city, sum({column}) FROM {table} WHERE {where} GROUP BY city",  # noqa: S608
                **{f"w{i}": w for i, w in enumerate(weeks)},
            )
            cached = {city: int(n) / (60 * len(weeks)) for city, n in rows}
            if len(self._weekly) > 256:
                self._weekly.clear()
            self._weekly[(kind, hour)] = cached
        return cached

    def _minutes(
        self, totals: Totals, final_before: dt.datetime, open_minute: dt.datetime, revised: set[dt.datetime]
    ) -> list[dt.datetime]:
        """The minutes to judge this tick: not final yet, becoming final, or revised by late events.

        The revised ones matter on a backlog: one partition can reach the end of the feed while
        another is still behind, the watermark stands still, and the idle flush declares the open
        minute final with only part of its events counted. Judging it again once the rest arrive
        is what raises the alert then (a CI run under load missed an injected spike so).
        """
        if self._from is None:
            first = final_before - dt.timedelta(minutes=TRAILING_MINUTES)
        else:
            # Before final_before when an idle flush made minutes final and the watermark then
            # moved again: those minutes are open once more, and judged as such.
            first = min(self._from, final_before)
        lo = min((m for _, m in totals), default=open_minute)
        first = max(first, lo)
        span = (open_minute - first) // MINUTE + 1
        # A revised minute is judged only with its trailing hour in hand, as any other minute is.
        again = {m for m in revised if m < first and m - MINUTE * TRAILING_MINUTES >= lo}
        return sorted(again) + [first + MINUTE * i for i in range(span)]

    def _candidates(
        self, totals: Totals, minutes: list[dt.datetime], data_start: dt.datetime
    ) -> Iterator[tuple[str, str, dt.datetime, int, float, str]]:
        """(kind, city, minute, observed, baseline, basis) of every count worth judging."""
        s = self.settings
        minimum = {"violations": s.spike_min_violations, "incidents": s.spike_min_incidents}
        cities = {c for c, _ in totals}
        for minute in minutes:
            has_trailing_hour = minute - dt.timedelta(minutes=TRAILING_MINUTES) >= data_start
            for i, kind in enumerate(KINDS):
                weekly = self._weekly_baseline(kind, minute.replace(minute=0), data_start)
                for city in cities:
                    observed = totals.get((city, minute), (0, 0))[i]
                    if observed < minimum[kind]:
                        continue
                    before = [
                        totals.get((city, minute - MINUTE * j), (0, 0))[i]
                        for j in range(1, TRAILING_MINUTES + 1)
                    ]
                    city_weekly = None if weekly is None else weekly.get(city, 0.0)
                    judged = baseline_for(before, city_weekly, has_trailing_hour=has_trailing_hour)
                    if judged is not None:  # None: no history to compare with
                        yield kind, city, minute, observed, *judged

    def judge(
        self, totals: Totals, final_before: dt.datetime, open_minute: dt.datetime, revised: set[dt.datetime],
        data_start: dt.datetime | None, watermark: dt.datetime,
    ) -> list[Alert]:  # fmt: skip
        """The alerts of this tick's spikes, each raised once (and not again the minute after)."""
        if data_start is None:
            return []
        s = self.settings
        minimum = {"violations": s.spike_min_violations, "incidents": s.spike_min_incidents}
        alerts = []
        minutes = self._minutes(totals, final_before, open_minute, revised)
        for kind, city, minute, observed, baseline, basis in self._candidates(totals, minutes, data_start):
            key = (kind, city, minute)
            if key in self._alerted or (kind, city, minute - MINUTE) in self._alerted:
                continue
            if not is_spike(observed, baseline, minimum[kind], s.spike_ratio, s.spike_p_value):
                continue
            self._alerted.add(key)
            alerts.append(Alert(
                event_id=uuid.uuid5(NAMESPACE, f"spike:{kind}:{city}:{minute.isoformat()}"),
                event_time=min(watermark, minute + MINUTE),
                kind=f"{kind}_spike",
                city=city,
                observed=observed,
                baseline=round(baseline, 3),
                detail=f"{observed} {kind} in the minute from {minute:%H:%M} UTC against "
                f"{baseline:.1f} expected from {basis}",
            ))  # fmt: skip
        self._from = final_before
        self._alerted = {k for k in self._alerted if k[2] >= final_before - self.horizon}
        return alerts
