"""Services a reliability test may stop and start: its own ClickHouse endpoint, its own broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dozor.infra.kafka import KafkaBroker
from dozor.infra.procs import port_open, wait_until
from dozor.settings import Settings
from tests.conftest import free_port


class OwnClickHouse:
    """An embedded ClickHouse endpoint on its own data directory and port, to take away and restore."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "DOZOR_STATE_DIR": str(self.state), "DOZOR_CLICKHOUSE_URL": self.url}
        with open(self.state / "clickhouse.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dozor", "clickhouse", "serve"], env=env, stdout=log, stderr=log
            )
        wait_until("ClickHouse endpoint", lambda: port_open("127.0.0.1", self.port), 60, self.proc)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Iterator[OwnClickHouse]:
    ch = OwnClickHouse(tmp_path)
    ch.start()
    yield ch
    ch.kill()


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
