"""Camera → Kafka → faust worker → ClickHouse, every part real, counts exact."""

from __future__ import annotations

import sys
import time
import urllib.request

import pytest
from kafka import KafkaConsumer

from tests.helpers.pipeline import produce_violations, wait_for_rows

pytestmark = pytest.mark.integration


def test_every_violation_lands_once_and_bad_input_is_dead_lettered(settings, start_service):
    truth = produce_violations(settings, 3000, malformed_every=300)
    worker = start_service([sys.executable, "-m", "dozor", "worker"], settings, "worker")

    counts = wait_for_rows(settings, truth.valid)
    time.sleep(1.5)  # a late duplicate would show up now; none may
    counts = wait_for_rows(settings, truth.valid, timeout_s=1)

    assert worker.proc.poll() is None, "the worker must survive malformed input"
    assert dict(counts) == dict(truth.per_city)

    dlq = KafkaConsumer(
        settings.topic_deadletter,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        isolation_level="read_committed",
    )
    dead = [(m.value, dict(m.headers)) for m in dlq]
    dlq.close()
    assert sorted(v for v, _ in dead) == sorted(raw for raw, _ in truth.malformed)
    reasons = {v: h["dozor.reason"].decode() for v, h in dead}
    for raw, reason in truth.malformed:
        assert reasons[raw] == reason
    assert all(h["dozor.source.topic"] == settings.topic_violations.encode() for _, h in dead)

    metrics = (
        urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_web_port}/metrics", timeout=5)
        .read()
        .decode()
    )

    def total(prefix: str) -> float:
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in metrics.splitlines() if ln.startswith(prefix))

    assert total("dozor_deadletter_total{") == len(truth.malformed)
    assert total('dozor_rows_written_total{table="violations"}') == truth.valid
    # Every insert was preceded by its duplicate lookup, and both are timed.
    inserts = total('dozor_clickhouse_insert_seconds_count{table="violations"}')
    assert inserts >= 1
    assert total('dozor_clickhouse_lookup_seconds_count{table="violations"}') >= inserts
