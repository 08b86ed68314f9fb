"""Services a reliability test may stop and start: its own ClickHouse endpoint, its own broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dozor.infra.kafka import KafkaBroker
from dozor.settings import Settings
from tests.helpers.ports import free_port


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(
        Settings(
            state_dir=tmp_path / "broker",
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
            kafka_controller_port=free_port(),
        )
    )
    broker.start()
    yield broker
    broker.stop()
