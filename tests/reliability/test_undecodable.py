"""A batch the worker cannot decode is dead-lettered offset by offset and the partition reads on."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest

from dozor.infra.topics import ensure_topics
from dozor.producers.kafka import make_producer
from dozor.producers.simulator import SimConfig, Simulator
from tests.helpers.stack import WORKER, clickhouse_counts, deadletters, poll

pytestmark = pytest.mark.integration

#: Size of a record batch header (format v2) before its records: base offset (8), length (4),
#: leader epoch (4), magic (1), CRC (4), attributes (2), last offset delta (4), timestamps (16),
#: producer id (8), producer epoch (2), base sequence (4), record count (4).
BATCH_HEADER = 61


def _batches(segment: Path) -> list[tuple[int, int, int]]:
    """(base offset, position in the file, total size) of each batch in a log segment."""
    data = segment.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if length <= 0:
            break
        out.append((base, pos, 12 + length))
        pos += 12 + length
    return out


def test_a_corrupted_compressed_batch_is_dead_lettered_and_the_partition_reads_on(
    settings, state_dir, start_service
):
    ensure_topics(settings)
    topic = settings.topic_violations
    cfg = SimConfig(seed=41, rate=50, incident_share=0, integrity_share=0, call_share=0, late_rate=0,
                    duplicate_rate=0, daily_profile=False)  # fmt: skip
    msgs = list(
        Simulator(cfg, "corrupt").messages(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2), count=60)
    )
    producer = make_producer(settings)  # lz4, as every Dozor producer
    for i in range(3):  # three batches of 20 on partition 0: offsets 0-19, 20-39, 40-59
        for m in msgs[20 * i : 20 * (i + 1)]:
            producer.send(topic, key=m.key, value=m.value, partition=0)
        producer.flush()
    producer.close()

    # Flip bytes inside the second batch's compressed records, as a failing disk would. The broker
    # serves the segment from the page cache, so the next fetch carries the damage.
    segment = state_dir / "kafka" / "data" / f"{topic}-0" / "00000000000000000000.log"
    batches = _batches(segment)
    assert [b[0] for b in batches] == [0, 20, 40], "each flush must make one batch"
    _, at, size = batches[1]
    with open(segment, "r+b") as f:
        f.seek(at + BATCH_HEADER + size // 3)
        f.write(b"\xde\xad\xbe\xef")

    start_service(WORKER, settings, "worker")
    counts = poll(lambda: clickhouse_counts(settings), lambda c: sum(c.values()) >= 40, 60)
    assert sum(counts.values()) == 40  # the first and third batch, all of them
    dead = poll(lambda: deadletters(settings), lambda d: len(d) >= 20, 60)
    headers = [dict(m.headers) for m in dead]
    assert sorted(int(h["dozor.source.offset"]) for h in headers) == list(range(20, 40))
    assert {h["dozor.reason"] for h in headers} == {b"undecodable"}
    assert all(m.value == b"" for m in dead)  # the bytes cannot be had
