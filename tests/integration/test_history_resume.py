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


def test_history_runs_up_to_the_start_and_a_gap_is_filled_without_overlap(settings_factory):
    """dozor up's history reaches the moment of the start (today is not empty before the live
    feed), leaves no incident or call unfinished (the live join would never close it: the wall
    would show it open for ever), and a later start fills only what came after the newest event."""
    settings = settings_factory()
    migrate(settings)
    c = connect(settings)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(hours=30)
    backfill(c, settings, 3, seed=5, through=start)
    newest = c.query("SELECT max(event_time) FROM violations").result_rows[0][0].replace(tzinfo=dt.UTC)
    assert start - dt.timedelta(hours=3) < newest <= start  # up to the start, not beyond
    still_open = c.command(
        "SELECT count() FROM (SELECT incident_id FROM incident_events GROUP BY incident_id "
        "HAVING countIf(status IN ('closed', 'cancelled')) = 0)"
    )
    assert still_open == 0
    unfinished_calls = c.command(
        "SELECT count() FROM (SELECT call_id FROM call_events GROUP BY call_id "
        "HAVING countIf(status IN ('ended', 'abandoned')) = 0)"
    )
    assert unfinished_calls == 0
    assert (
        c.query("SELECT max(event_time) FROM call_events").result_rows[0][0].replace(tzinfo=dt.UTC) <= start
    )

    # The stack was down 30 hours: the next start fills what came after the newest event, no more.
    before = c.command("SELECT count() FROM violations")
    backfill(c, settings, 3, seed=6, through=now, since=newest)
    added = c.query(
        "SELECT count(), min(event_time), max(event_time) FROM violations "
        "WHERE event_time > {t:DateTime64(3)}",
        parameters={"t": newest},
    ).result_rows[0]
    assert c.command("SELECT count() FROM violations") == before + added[0]
    assert added[0] > 0 and added[2].replace(tzinfo=dt.UTC) <= now
    # About a day and a quarter of the country's violations (about 5,200 a day): no day twice.
    per_hour = c.query(
        "SELECT toStartOfHour(event_time) AS h, count() FROM violations "
        "WHERE event_time > {lo:DateTime64(3)} AND event_time <= {hi:DateTime64(3)} GROUP BY h",
        parameters={"lo": newest, "hi": now},
    ).result_rows
    assert len(per_hour) >= 28 and max(n for _, n in per_hour) < 1500
