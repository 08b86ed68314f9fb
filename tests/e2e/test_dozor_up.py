"""`dozor up` as a new user runs it: one command, live data on the dashboard, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from dozor.clickhouse import connect
from dozor.producers.backfill import SIMULATED_PARTITION
from dozor.settings import Settings
from tests.helpers.ports import free_port

pytestmark = pytest.mark.integration


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = open(f"/proc/{pid}/stat").read().split()[2]
    return stat != "Z"


def test_up_serves_live_data_and_ctrl_c_stops_everything(tmp_path):
    kafka_port, ch_port = free_port(), free_port()
    settings = Settings(
        state_dir=tmp_path / "state",
        kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
        kafka_controller_port=free_port(),
        clickhouse_url=f"http://127.0.0.1:{ch_port}",
        dashboard_port=free_port(),
        worker_web_port=free_port(),
        oidc_port=free_port(),
        up_history_days=7,  # a week is enough to see it made; the default 760 takes ~50 s
    )
    env = {**os.environ, **settings.to_env()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dozor", "up", "--rate", "50"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Dashboard: http://" in line:
                break
        # localhost: the sign-in's redirect address and cookie are there (README, Signing in).
        url = f"http://localhost:{settings.dashboard_port}"
        assert any(url in ln for ln in lines), "".join(lines)
        assert urllib.request.urlopen(url + "/_stcore/health", timeout=5).status == 200

        client = connect(settings)
        # First start: a week of simulated history, marked as such, ending yesterday.
        assert any("simulated history" in ln for ln in lines), "".join(lines)
        days = client.query(
            "SELECT last_day - first_day + 1, last_day FROM simulated_history WHERE complete"
        ).result_rows
        assert [d for d, _ in days] == [7]
        where = f"FROM violations WHERE src_partition = {SIMULATED_PARTITION}"
        assert client.command(f"SELECT count() {where}") > 1000
        count = 0
        while time.monotonic() < deadline and count == 0:
            count = client.command(f"SELECT count() {where.replace(' = ', ' != ')}")
            time.sleep(1)
        assert count > 0, "live simulated violations must reach ClickHouse through Kafka and the worker"
        children = _children(proc.pid)
        assert len(children) >= 6  # kafka, clickhouse, worker, simulator, oidc, dashboard
        # The local identity provider answers, for the managers' sign-in.
        oidc = f"http://localhost:{settings.oidc_port}/.well-known/openid-configuration"
        assert urllib.request.urlopen(oidc, timeout=5).status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        lines.append(out)
    assert proc.returncode == 0, "".join(lines)
    assert "stopped" in "".join(lines)
    time.sleep(0.5)
    assert not [p for p in children if _alive(p)], "every service must be stopped"
