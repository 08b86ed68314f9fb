"""What the embedded services keep to themselves and leave behind (outside eyes, issue #24): the
broker's Java process gets no secret of the shell that starts it, and the endpoints' insert spools
of processes that are gone do not pile up in tmpfs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dozor.infra.chdb_http import _spool_dir
from dozor.infra.kafka import KafkaBroker


def test_the_broker_starts_without_dozors_secrets(monkeypatch):
    monkeypatch.setenv("DOZOR_CLICKHOUSE_PASSWORD", "writer-secret")
    monkeypatch.setenv("DOZOR_CLICKHOUSE_READER_PASSWORD", "reader-secret")
    monkeypatch.setenv("DOZOR_PLATE_SALT", "salt-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret")
    env = KafkaBroker._env()
    assert "PATH" in env
    # What a process started with it can see (the broker is started the same way).
    seen = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.environ))"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    for secret in ("DOZOR_", "AWS_SECRET"):
        assert secret not in seen


def test_the_spools_of_gone_endpoints_are_removed(tmp_path):
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else tmp_path
    gone = base / "dozor-chdb-spool-999999999"  # above any pid this kernel gives
    gone.mkdir(exist_ok=True)
    (gone / "insert-body").write_bytes(b"rows")
    alive = base / f"dozor-chdb-spool-{os.getppid()}"  # a live process's: kept
    made = not alive.exists()
    alive.mkdir(exist_ok=True)
    try:
        own = _spool_dir(tmp_path, sweep=True)
        assert own.is_dir() and not gone.exists() and alive.exists()
    finally:
        if made:
            alive.rmdir()
        own.rmdir()
