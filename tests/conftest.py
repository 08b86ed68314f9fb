"""Session fixtures: one real Kafka broker and one real ClickHouse endpoint for the whole run.

Each test gets its own topics, consumer group and ClickHouse database through ``settings_factory``,
so tests never see each other's data and the services start only once (CI has 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dozor.infra.kafka import KafkaBroker
from dozor.infra.procs import tail
from dozor.settings import Settings
from tests.helpers.endpoint import ClickHouseEndpoint
from tests.helpers.ports import free_port, free_port_pair

ARTIFACTS = Path(os.environ.get("DOZOR_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dozor-state")


@pytest.fixture(scope="session")
def kafka_bootstrap(state_dir: Path) -> Iterator[str]:
    """The pinned Apache Kafka, started from its jars as the product starts it."""
    settings = Settings(
        state_dir=state_dir,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
    )
    broker = KafkaBroker(settings)
    broker.start(timeout_s=120)
    try:
        yield settings.kafka_bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Iterator[ClickHouseEndpoint]:
    """An endpoint of the test's own, for tests that take ClickHouse away (kill it, restart it);
    killed at the end, as a crash would leave it."""
    ch = ClickHouseEndpoint(tmp_path)
    ch.start()
    yield ch
    ch.kill()


@pytest.fixture(scope="session")
def clickhouse_url(state_dir: Path) -> Iterator[str]:
    endpoint = ClickHouseEndpoint(state_dir)
    endpoint.start()
    try:
        yield endpoint.url
    finally:
        endpoint.stop()


@pytest.fixture
def settings_factory(kafka_bootstrap: str, clickhouse_url: str, state_dir: Path) -> Callable[..., Settings]:
    """Settings with unique topics, group and database; keyword arguments override."""

    def make(**overrides: object) -> Settings:
        run = uuid.uuid4().hex[:10]
        values: dict[str, object] = dict(
            environment="test",
            state_dir=state_dir / run,
            kafka_bootstrap_servers=kafka_bootstrap,
            clickhouse_url=clickhouse_url,
            clickhouse_database=f"test_{run}",
            topic_prefix=f"t{run}",
            topic_partitions=3,
            consumer_group=f"g{run}",
            worker_web_port=free_port_pair(),
            dashboard_port=free_port(),
            batch_max_seconds=0.3,
        )
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


class Service:
    """A Dozor process started by a test; prints its log if the test fails."""

    def __init__(
        self, args: list[str], settings: Settings, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        env = {**os.environ, **settings.to_env(), **(env or {})}
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL, as a crashed machine would."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return tail(self.log_path, 60)


@pytest.fixture
def start_service(request: pytest.FixtureRequest) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(args: list[str], settings: Settings, name: str, env: dict[str, str] | None = None) -> Service:
        svc = Service(args, settings, settings.state_dir / f"{name}.log", env)
        started.append(svc)
        return svc

    yield start
    for svc in reversed(started):
        svc.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for svc in started:
            print(f"--- {svc.log_path}\n{svc.log()}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
