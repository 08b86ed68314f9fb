"""Workers of one consumer group share the partitions; one leaving hands over without loss."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from dozor.producers.kafka import Publisher, make_producer
from dozor.schemas import REASONS
from dozor.streams.ingest import INGESTED_FAMILIES
from tests.helpers.stack import (
    WORKER,
    Truth,
    assert_exact,
    deadletters,
    produce,
    simulated_feed,
    wait_for_truth,
    wait_rows,
)

pytestmark = pytest.mark.integration


def _events_in(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(
        float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith("dozor_events_in_total{")
    )


def _partitions(port: int) -> set[str]:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3).read()
    except OSError:
        return set()  # not serving yet
    return set(orjson.loads(body)["partitions"])


def _wait_for_split(ports: list[int], timeout_s: float = 60.0) -> list[set[str]]:
    """Each worker's partitions once every worker has some and no partition has two owners."""
    deadline = time.monotonic() + timeout_s
    while True:
        owned = [_partitions(p) for p in ports]
        if all(owned) and sum(map(len, owned)) == len(set().union(*owned)):
            return owned
        if time.monotonic() > deadline:
            raise AssertionError(f"the group did not settle: {owned}")
        time.sleep(0.5)


def test_two_workers_share_partitions_and_one_leaves_mid_run(settings_factory, start_service):
    settings = settings_factory(topic_partitions=6, batch_max_rows=400)
    truth = Truth()
    feed = simulated_feed(seed=51, count=9000)
    port_b = settings.worker_web_port + 1
    a = start_service(WORKER, settings, "worker-a")
    b = start_service(WORKER, settings, "worker-b", env={"DOZOR_WORKER_WEB_PORT": str(port_b)})
    owned = _wait_for_split([settings.worker_web_port, port_b])
    # Every input topic's six partitions, each read by exactly one of the two (as /health says).
    assert len(owned[0] | owned[1]) == 6 * len(INGESTED_FAMILIES)
    produce(settings, feed[:4500], truth)
    wait_rows(settings, 1000)
    assert _events_in(settings.worker_web_port) > 0 and _events_in(port_b) > 0, "both must get partitions"

    a.stop()  # SIGTERM: a clean leave, mid-run
    assert a.proc.returncode == 0, a.log()
    produce(settings, feed[4500:], truth)
    assert_exact(settings, truth, timeout_s=180)
    assert b.proc.poll() is None


malformed = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(
        st.sampled_from(["event_id", "event_time", "city", "lat", "lon", "camera_id", "violation_type",
                         "plate_hash", "plate_masked", "schema_version"]),
        st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                  st.text(max_size=30)),
    ).map(orjson.dumps),
)  # fmt: skip


def test_running_worker_survives_fuzzed_input(settings, start_service):
    worker = start_service(WORKER, settings, "worker")
    truth = Truth()
    produce(settings, simulated_feed(seed=52, count=500, bad_rate=0.0), truth)  # valid traffic too
    pub = Publisher(make_producer(settings))
    sent: list[bytes] = []

    @hyp_settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(malformed)
    def send(payload: bytes) -> None:
        pub.send(settings.topic("violations"), b"fuzz", payload)
        sent.append(payload)

    send()
    pub.close()
    deadline = time.monotonic() + 90
    dead = []
    while time.monotonic() < deadline:
        dead = [m for m in deadletters(settings) if m.key == b"fuzz"]
        if len(dead) >= len(sent):
            break
    assert worker.proc.poll() is None, worker.log()
    assert sorted(m.value or b"" for m in dead) == sorted(sent)
    assert all(dict(m.headers)["dozor.reason"].decode() in REASONS for m in dead)
    assert wait_for_truth(settings, truth) == truth.counts()


def test_two_workers_joining_while_flushes_are_in_flight(settings_factory, start_service):
    """The join rebalance revokes partitions from a worker mid-flush; the revocation must wait for
    the flush, or the next owner looks ids up before the insert lands and both insert (a double
    count the pipeline benchmark once caught)."""
    settings = settings_factory(topic_partitions=6, batch_max_rows=20000, batch_max_seconds=1.0)
    truth = Truth()
    produce(settings, simulated_feed(seed=53, count=40000, bad_rate=0.01), truth)
    start_service(WORKER, settings, "worker-a")
    wait_rows(settings, 1, interval_s=0.1)  # a has flushed once: its next flush is in flight when b joins
    start_service(
        WORKER, settings, "worker-b", env={"DOZOR_WORKER_WEB_PORT": str(settings.worker_web_port + 1)}
    )
    assert_exact(settings, truth, timeout_s=180)
