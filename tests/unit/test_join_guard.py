"""One event that makes the join fail is dead-lettered with its reason, and the join goes on."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from dozor.streams.responses import guarded


def _event(offset: int, value: bytes) -> SimpleNamespace:
    msg = SimpleNamespace(topic="t.incidents.v1", partition=2, offset=offset, key=b"INC-1")
    return SimpleNamespace(message=msg, value=value)


def test_a_failing_event_goes_to_the_dead_letter_topic_and_the_next_is_handled():
    handled, sent = [], []

    async def handle(event):
        if event.value == b"poison":
            raise ValueError("year 0 is out of range")
        handled.append(event.message.offset)

    async def send(**record):
        sent.append(record)

    async def run():
        return [await guarded(handle, _event(i, v), send) for i, v in enumerate([b"a", b"poison", b"b"])]

    # A loop of its own in a thread of its own: other tests in this process may leave one running.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, run()).result() == [True, False, True]
    assert handled == [0, 2]
    [dead] = sent
    headers = dict(dead["headers"])
    assert dead["value"] == b"poison" and dead["key"] == b"INC-1"
    assert headers["dozor.reason"] == b"processing"
    assert b"year 0 is out of range" in headers["dozor.detail"]
    assert (headers["dozor.source.topic"], headers["dozor.source.offset"]) == (b"t.incidents.v1", b"1")
