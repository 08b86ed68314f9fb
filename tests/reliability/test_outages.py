"""ClickHouse or Kafka going away pauses the flow and resumes it; nothing is lost or doubled."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from tests.helpers.stack import (
    WORKER,
    Truth,
    assert_exact,
    produce,
    simulated_feed,
    wait_rows,
)

pytestmark = pytest.mark.integration


def _health(settings) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_web_port}/health", timeout=3).status
    except urllib.error.HTTPError as e:
        return e.code


def test_clickhouse_down_for_30_seconds(settings_factory, start_service, own_clickhouse):
    settings = settings_factory(clickhouse_url=own_clickhouse.url, batch_max_rows=500)
    truth = Truth()
    feed = simulated_feed(seed=41, count=6000)
    produce(settings, feed[:3000], truth)
    worker = start_service(WORKER, settings, "worker")
    wait_rows(settings, 1)

    own_clickhouse.kill()
    produce(settings, feed[3000:], truth)
    time.sleep(5)
    assert _health(settings) == 503, "health must say the worker is degraded"
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_web_port}/metrics").read()
    assert b"dozor_ingest_paused 1.0" in metrics
    time.sleep(25)
    assert worker.proc.poll() is None, "the worker must wait for ClickHouse, not die"

    own_clickhouse.start()
    assert_exact(settings, truth)
    assert _health(settings) == 200
    log = worker.log_path.read_text()
    assert "consumption paused" in log and "ingest resumed" in log


def test_broker_restarted_mid_run(settings_factory, start_service, own_broker):
    settings = settings_factory(kafka_bootstrap_servers=own_broker.settings.kafka_bootstrap_servers)
    truth = Truth()
    feed = simulated_feed(seed=42, count=6000)
    produce(settings, feed[:3000], truth)
    worker = start_service(WORKER, settings, "worker")
    wait_rows(settings, 1)

    own_broker.stop()
    time.sleep(5)
    own_broker.start()
    produce(settings, feed[3000:], truth)
    assert_exact(settings, truth, timeout_s=180)
    assert worker.proc.poll() is None, worker.log()
