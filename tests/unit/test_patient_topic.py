"""A worker outlives a broker restart during a rebalance: declaring a topic waits, it does not crash.

faust declares the join's changelog topic on each rebalance; with the broker away the request
failed with NodeNotReadyError and the worker exited (tests/reliability/test_outages.py saw it).
"""

from __future__ import annotations

import asyncio

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


def _topic(producer: FlakyProducer, monkeypatch: pytest.MonkeyPatch):
    app = create_app(Settings(), role="join")
    topic = app.topic("dozor.test.changelog")

    async def get_producer() -> FlakyProducer:
        return producer

    monkeypatch.setattr(topic, "_get_producer", get_producer)
    return topic


def test_declaring_waits_for_a_broker_that_is_not_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FlakyProducer([NodeNotReadyError("node 1 not ready"), NodeNotReadyError("again")])
    asyncio.run(_topic(producer, monkeypatch).declare())
    assert producer.created == ["dozor.test.changelog"]


def test_a_refusal_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FlakyProducer([TopicAuthorizationFailedError("denied")])
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_topic(producer, monkeypatch).declare())
    assert producer.created == []
