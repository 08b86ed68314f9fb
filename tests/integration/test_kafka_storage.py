"""Formatting the embedded broker's storage works for every cluster id Kafka may be given.

A random id begins with "-" once in 64 starts; the storage tool then read it as an option and the
broker never started (a CI run failed that way). Formatting is the JVM tool alone, a few seconds.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from dozor.infra.kafka import KafkaBroker, default_jar_dir, fetch_jars
from dozor.settings import Settings
from tests.helpers.ports import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_a_cluster_id_beginning_with_a_dash_formats(tmp_path: Path, protocol: str) -> None:
    settings = Settings(
        state_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(), kafka_security_protocol=protocol,
        kafka_sasl_username="dozor", kafka_sasl_password="pw", kafka_embedded_admin_password="adm",
    )  # fmt: skip
    broker = KafkaBroker(settings)
    raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    cluster_id = "-" + raw[1:]
    broker.format_storage(fetch_jars(default_jar_dir(settings)), broker._write_config(), cluster_id)
    meta = (broker.home / "data" / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}\n" in meta
