"""The embedded ClickHouse endpoint as a separate process, started and stopped by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dozor.infra.procs import port_open, tail, wait_until
from tests.helpers.ports import free_port

__all__ = ["ClickHouseEndpoint", "make_dozor_database"]


def make_dozor_database(client: object, database: str = "") -> None:
    """Make ``database`` (the engine's default if empty) one of Dozor's, as ``dozor migrate`` does:
    it holds ``schema_migrations``. The reader reads Dozor's databases only."""
    where = f"{database}." if database else ""
    client.command(  # type: ignore[attr-defined]
        f"CREATE TABLE IF NOT EXISTS {where}schema_migrations (v String) ENGINE = MergeTree ORDER BY v"
    )


class ClickHouseEndpoint:
    """The embedded ClickHouse endpoint as a separate process, exactly as `dozor up` runs it.

    Tests that take ClickHouse away (tests/reliability) make their own and kill and restart it.
    """

    def __init__(self, state: Path, env: dict[str, str] | None = None) -> None:
        self.state = state
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state / "clickhouse.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "DOZOR_STATE_DIR": str(self.state), "DOZOR_CLICKHOUSE_URL": self.url, **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dozor", "clickhouse", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            "ClickHouse endpoint", lambda: port_open("127.0.0.1", self.port), 60, self.proc, self.log_path
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            if self.proc.returncode not in (0, -15):
                print(tail(self.log_path))
