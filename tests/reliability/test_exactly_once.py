"""Every raw count in ClickHouse equals the ground truth, whatever the feed and the failures."""

from __future__ import annotations

import time

import pytest

from dozor.schemas import INPUT_FAMILIES
from dozor.streams.ingest import INGESTED_FAMILIES
from dozor.streams.sink import TABLES
from tests.helpers.stack import (
    WORKER,
    Truth,
    assert_exact,
    clickhouse_counts,
    produce,
    simulated_feed,
    wait_committed,
    wait_rows,
)

pytestmark = pytest.mark.integration


def test_duplicates_late_and_malformed_give_exact_totals(settings, start_service):
    truth = Truth()
    produce(settings, simulated_feed(seed=21, count=6000), truth)
    start_service(WORKER, settings, "worker")
    assert_exact(settings, truth)
    assert truth.duplicates > 0 and sum(truth.malformed.values()) > 0


def test_replaying_the_same_messages_changes_nothing(settings, start_service):
    truth = Truth()
    feed = simulated_feed(seed=22, count=3000)
    produce(settings, feed, truth)
    start_service(WORKER, settings, "worker")
    assert_exact(settings, truth)
    produce(settings, [m for m in feed if m.valid], Truth())  # the whole feed again, new offsets
    wait_committed(settings)  # the replay has been read and committed: not merely not read yet
    assert clickhouse_counts(settings) == truth.counts()


@pytest.mark.parametrize("point", ["before_insert", "between_tables", "after_insert"])
def test_kill_9_at_each_moment_of_a_flush_loses_and_doubles_nothing(settings_factory, start_service, point):
    settings = settings_factory(batch_max_rows=700, batch_max_seconds=0.2)
    truth = Truth()
    produce(settings, simulated_feed(seed=30, count=5000), truth)
    # The third flush, mid-run. "between_tables" is reached only by a flush holding two families,
    # and the worker reads a backlog a partition at a time, so few flushes do: the first of them.
    hit = 1 if point == "between_tables" else 3
    crashing = start_service(WORKER, settings, "worker-crash", env={"DOZOR_FAILPOINTS": f"{point}={hit}"})
    assert crashing.proc.wait(120) == -9, crashing.log()
    stored = sum(clickhouse_counts(settings).values())
    assert stored < truth.rows, "the crash must come before the work is done"
    start_service(WORKER, settings, "worker-restarted")
    assert_exact(settings, truth)


def test_kill_9_during_a_rebalance(settings_factory, start_service):
    settings = settings_factory(batch_max_rows=300, batch_max_seconds=0.2)
    truth = Truth()
    feed = simulated_feed(seed=31, count=8000)
    produce(settings, feed[:4000], truth)
    # The first revocation callback runs at the initial join; the second is the rebalance.
    a = start_service(WORKER, settings, "worker-a", env={"DOZOR_FAILPOINTS": "on_revoke=2"})
    wait_rows(settings, 1)
    start_service(
        WORKER, settings, "worker-b", env={"DOZOR_WORKER_WEB_PORT": str(settings.worker_web_port + 1)}
    )
    produce(settings, feed[4000:], truth)
    assert a.proc.wait(60) == -9, a.log()
    assert_exact(settings, truth, timeout_s=180)


def test_status_reports_lag_rows_and_dead_letters(settings, start_service):
    from click.testing import CliRunner

    from dozor.cli import cli
    from dozor.streams.status import collect

    truth = Truth()
    produce(settings, simulated_feed(seed=23, count=2000), truth)
    start_service(WORKER, settings, "worker")
    assert_exact(settings, truth)
    time.sleep(1)
    st = collect(settings)
    inputs = {settings.topic(f) for f in INPUT_FAMILIES}
    assert sum(t.end for t in st.topics if t.topic in inputs) == truth.sent
    assert [t.lag for t in st.topics] == [0] * len(INGESTED_FAMILIES)  # the join's outputs are stored too
    input_tables = {TABLES[f].table for f in INPUT_FAMILIES}
    assert sum(t.rows for t in st.tables if t.table in input_tables) == truth.rows
    assert st.deadletters >= sum(truth.malformed.values())
    r = CliRunner(env=settings.to_env()).invoke(cli, ["status"])
    assert r.exit_code == 0, r.output
    assert settings.topic("violations") in r.output and "dispatch_events" in r.output
