"""Simulated history is marked from its first row and survives an interrupted first start: the next
start finishes the same days, and the result equals an uninterrupted generation, row for row in
every table and roll-up the pages read.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dozor.clickhouse import connect
from dozor.dashboard.queries import simulated_days
from dozor.infra.migrate import migrate
from dozor.producers.backfill import backfill, unfinished

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 6, 15)
DAYS = 100  # three chunks of the generator


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after the first chunk."""


#: Each table the pages read and how it counts per day.
_PER_DAY = {
    "violations": ("toDate(event_time)", "count()"),
    "incident_events": ("toDate(event_time)", "count()"),
    "dispatch_events": ("toDate(event_time)", "count()"),
    "incident_responses": ("toDate(event_time)", "count()"),
    "violations_by_hour": ("toDate(hour)", "sum(violations)"),
    "incidents_by_day": ("day", "sum(opened)"),
}


def _per_day(settings) -> dict[str, list]:
    c = connect(settings)
    return {
        table: c.query(f"SELECT {day} AS d, {n} FROM {table} GROUP BY d ORDER BY d").result_rows
        for table, (day, n) in _PER_DAY.items()
    }


def test_an_interrupted_generation_is_marked_and_finished_exactly(settings_factory):
    clean, interrupted = settings_factory(), settings_factory()
    for s in (clean, interrupted):
        migrate(s)
    backfill(connect(clean), clean, DAYS, seed=3, today=TODAY)

    def stop_after_first_chunk(days: int) -> None:
        raise Interrupted

    c = connect(interrupted)
    with pytest.raises(Interrupted):
        backfill(c, interrupted, DAYS, seed=3, today=TODAY, progress=stop_after_first_chunk)
    first, last = TODAY - dt.timedelta(days=DAYS), TODAY - dt.timedelta(days=1)
    # Marked before its first row: the pages say "simulated" for the days already written.
    assert simulated_days(connect(interrupted, reader=True), first, last) == (first, last)
    assert unfinished(c) == (first, last, 3)
    assert (
        0
        < c.command("SELECT count() FROM violations")
        < connect(clean).command("SELECT count() FROM violations")
    )

    # The next start finishes the same days; what was written is not written twice.
    backfill(c, interrupted, DAYS, seed=3, today=last + dt.timedelta(days=1))
    assert unfinished(c) is None
    assert _per_day(interrupted) == _per_day(clean)
