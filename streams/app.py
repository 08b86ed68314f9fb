"""The faust App of a Dozor worker: the ingest service, the incident join, health and metrics.

``dozor worker`` runs it. Several workers with the same ``DOZOR_CONSUMER_GROUP`` share the input
partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from prometheus_client import generate_latest

from dozor.enrich import Enricher
from dozor.settings import Settings
from dozor.streams.figures import install_figures
from dozor.streams.ingest import IngestService
from dozor.streams.responses import install_join

__all__ = ["PatientTopic", "create_app"]

log = logging.getLogger(__name__)

#: How long a topic declaration keeps retrying a broker that is away before the worker gives up.
DECLARE_PATIENCE_S = 300.0


class PatientTopic(faust.Topic):
    """A faust topic whose declaration waits for a broker that is restarting instead of crashing.

    faust's Conductor declares the join table's changelog topic again on every rebalance. When the
    broker is down at that moment, the create request fails with ``NodeNotReadyError``; faust does
    not catch it, the Conductor service crashes and the worker exits (seen when the broker was
    restarted mid-run). A broker that is away is an outage, not a reason to stop: retry with the
    same backoff as the sink (0.5 s doubling to 10 s) for up to ``DECLARE_PATIENCE_S``.
    """

    async def declare(self) -> None:
        delay, deadline = 0.5, time.monotonic() + DECLARE_PATIENCE_S
        while True:
            try:
                await super().declare()
                return
            except KafkaError as exc:
                transient = isinstance(exc, (KafkaConnectionError, KafkaTimeoutError)) or getattr(
                    exc, "retriable", False
                )
                if not transient or time.monotonic() + delay > deadline:
                    raise
                log.warning("declaring %s: broker not ready (%r); retry in %.1f s", self.topics, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def create_app(settings: Settings, role: str = "ingest") -> faust.App:
    """Build the App; nothing connects until the worker starts it.

    ``role`` is ``ingest`` (Kafka → ClickHouse), ``join`` (the derived streams: the incident join,
    and on the group's leader the per-minute city figures and spike alerts) or ``all``. They run
    as separate processes by default (``dozor up`` starts one of each): the
    join's faust consumer, table recovery and rebalances then cannot stall or stop the ingest.
    """
    app = faust.App(
        # The faust app id is its consumer group (and the prefix of its changelog topics). One per
        # role: faust joins its group even with no agent, and an ingest worker in the join's group
        # would be handed join partitions it never reads. The ingest service's own aiokafka group
        # is consumer_group itself.
        settings.streams_app_id(role),
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
        # SASL and TLS from the same settings as every other client; faust reads only this.
        broker_credentials=settings.faust_credentials(),
        store="memory://",
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        autodiscover=False,
        datadir=str(settings.state_dir / "faust"),
        Topic=PatientTopic,
    )
    if role in ("join", "all"):
        install_join(app, settings, Enricher(settings.mci_kzt))
        install_figures(app, settings)
    if role == "join":
        _add_metrics_page(app)

        @app.page("/health")
        async def join_health(web: object, request: object) -> object:
            return web.json({"status": "ok", "role": "join"})  # type: ignore[attr-defined]

        return app
    ingest = IngestService(settings, loop=app.loop, beacon=app.beacon)
    app.add_dependency(ingest)

    @app.page("/health")
    async def health(web: object, request: object) -> object:
        age = (
            None
            if ingest.last_flush_monotonic is None
            else round(time.monotonic() - ingest.last_flush_monotonic, 3)
        )
        ok = ingest.clickhouse_ok and ingest.fetch_ok
        return web.json(  # type: ignore[attr-defined]
            {
                "status": "ok" if ok else "degraded",
                "clickhouse": ingest.clickhouse_ok,
                "kafka_fetch": ingest.fetch_ok,
                "last_flush_age_s": age,
                "partitions": ingest.assigned(),
            },
            status=200 if ok else 503,
        )

    _add_metrics_page(app)
    return app


def _add_metrics_page(app: faust.App) -> None:
    @app.page("/metrics")
    async def metrics(web: object, request: object) -> object:
        # aiohttp refuses a charset inside content_type, so the exposition format's version goes
        # without it; Prometheus reads text/plain as the 0.0.4 text format.
        return web.bytes(generate_latest(), content_type="text/plain")  # type: ignore[attr-defined]
