"""A worker outlives a broker restart during a rebalance: declaring a topic waits, it does not crash.

faust declares the join's changelog topic on each rebalance; with the broker away the request
failed with NodeNotReadyError and the worker exited (tests/reliability/test_outages.py saw it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka.errors import NodeNotReadyError, TopicAuthorizationFailedError

from dozor.settings import Settings
from dozor.streams.app import create_app


class FlakyProducer:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.created: list[str] = []

    async def create_topic(self, topic: str, **_: object) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.created.append(topic)


def _run(coro: Coroutine) -> object:
    """A loop of its own in a thread of its own: other tests in this process may leave one running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _topic(producer: FlakyProducer, monkeypatch: pytest.MonkeyPatch):
    app = create_app(Settings(), role="join")
    topic = app.topic("dozor.test.changelog")

    async def get_producer() -> FlakyProducer:
        return producer

    monkeypatch.setattr(topic, "_get_producer", get_producer)
    return topic


def test_declaring_waits_for_a_broker_that_is_not_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FlakyProducer([NodeNotReadyError("node 1 not ready"), NodeNotReadyError("again")])
    _run(_topic(producer, monkeypatch).declare())
    assert producer.created == ["dozor.test.changelog"]


def test_a_refusal_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FlakyProducer([TopicAuthorizationFailedError("denied")])
    with pytest.raises(TopicAuthorizationFailedError):
        _run(_topic(producer, monkeypatch).declare())
    assert producer.created == []
