"""The kafka-python producer every Dozor source uses: tuned for throughput, never losing a message."""

from __future__ import annotations

import logging
import time

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner.default import murmur2

from dozor.errors import DozorError
from dozor.settings import Settings

__all__ = ["make_producer", "Publisher", "DeliveryFailed"]

log = logging.getLogger("dozor.producers")

#: Waiting for a broker at start: 30 attempts of up to 10 s each wait out an outage of about five
#: minutes, logging each, before giving up with a message that says what to do.
CONNECT_ATTEMPTS = 30
BOOTSTRAP_TIMEOUT_MS = 10_000
CONNECT_BACKOFF_MAX_S = 10.0


class DeliveryFailed(DozorError):
    """Messages the broker never acknowledged, after every retry; the count and first error say why."""

    def __init__(self, failed: int, first_error: str) -> None:
        self.failed = failed
        self.first_error = first_error
        super().__init__(f"{failed} message(s) were not delivered to Kafka: {first_error}")


def make_producer(settings: Settings, **overrides: object) -> KafkaProducer:
    """acks=all + idempotence: a retry never duplicates and an acked message is on every replica.

    lz4 with a 20 ms linger and 1 MiB batches is what the producer benchmark found fastest for small
    JSON events (benchmarks/producers.py; benchmarks/results/producers.txt). ``delivery_timeout_ms``
    bounds how long a send is retried while the broker is away; past it the send fails loudly
    through :class:`Publisher`.
    A broker that is not reachable yet is waited for with bounded, logged retries.
    """
    conf: dict[str, object] = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        linger_ms=20,
        batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        retries=2**31 - 1,
        delivery_timeout_ms=120_000,
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        **settings.kafka_client_config(),
    )
    conf.update(overrides)
    delay = 0.5
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return KafkaProducer(**conf)
        except KafkaTimeoutError:
            if attempt == CONNECT_ATTEMPTS:
                break
            log.warning(
                "Kafka at %s is not reachable (attempt %d/%d); retrying in %.1f s",
                settings.kafka_bootstrap_servers, attempt, CONNECT_ATTEMPTS, delay,
            )  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, CONNECT_BACKOFF_MAX_S)
    raise DozorError(
        f"Kafka at {settings.kafka_bootstrap_servers} is not reachable; start it (`dozor kafka start`) "
        "or set DOZOR_KAFKA_BOOTSTRAP_SERVERS"
    )


class Publisher:
    """Sends messages and keeps count of any that fail, so that none is dropped silently.

    Partitions are chosen here with Kafka's default partitioner (murmur2 of the key, as the Java
    clients do, so incidents and dispatches keyed by incident id stay co-partitioned) and cached per
    key: kafka-python recomputes murmur2 in Python on every send, which the producer benchmark's
    profile showed as a sixth of the send path, while keys (cameras, incidents) repeat.
    """

    #: Keys remembered; past this the cache starts over (incident ids never repeat for long).
    PARTITION_CACHE = 200_000

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer
        self.sent = 0
        self.failed = 0
        self.first_error: str | None = None
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}

    def _partition(self, topic: str, key: bytes) -> int:
        found = self._cache.get((topic, key))
        if found is not None:
            return found
        parts = self._partitions.get(topic)
        if parts is None:
            parts = sorted(self.producer.partitions_for(topic))
            self._partitions[topic] = parts
        p = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
        if len(self._cache) >= self.PARTITION_CACHE:
            self._cache.clear()
        self._cache[(topic, key)] = p
        return p

    def _on_error(self, exc: BaseException) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"
            log.error("Kafka delivery failed: %s", self.first_error)

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        try:
            partition = self._partition(topic, key) if key is not None else None
            fut = self.producer.send(topic, key=key, value=value, partition=partition, headers=headers)
        except KafkaError as e:  # buffer full past max_block_ms, message too large, …
            self._on_error(e)
            return
        fut.add_errback(self._on_error)
        self.sent += 1

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every send; raise :class:`DeliveryFailed` if any was not acknowledged."""
        self.producer.flush(timeout=timeout_s)
        if self.failed:
            raise DeliveryFailed(self.failed, self.first_error or "unknown error")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.producer.close()
