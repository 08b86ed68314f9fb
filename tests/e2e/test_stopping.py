"""Every way `dozor up` can be stopped leaves no process behind, and a second `dozor up` on a live
state directory says so in one line.

Seen before: with its output piped into a process that then died (`dozor up | tee`, Ctrl-C ends the
tee too), Ctrl-C left all seven services running; under a parent that ignores SIGINT it could not be
stopped by SIGINT, and SIGTERM then left the services running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dozor.settings import Settings
from tests.helpers.ports import free_port

pytestmark = pytest.mark.integration


def _descendants(root: int) -> set[int]:
    """Every live process whose parent chain reaches ``root``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = set(), {root}
    while frontier:
        kids = {p for p, pp in parents.items() if pp in frontier} - out
        out |= kids
        frontier = kids
    return out


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _settings(tmp_path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state", kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(), clickhouse_url=f"http://127.0.0.1:{free_port()}",
        dashboard_port=free_port(), worker_web_port=free_port(), oidc_port=free_port(), up_history_days=0,
    )  # fmt: skip


def _up(settings: Settings, ignore_sigint: bool = False) -> tuple[subprocess.Popen, set[int]]:
    """`dozor up` running, with its services: (the process, their pids)."""
    env = {**os.environ, **settings.to_env()}
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    proc = subprocess.Popen([sys.executable, "-m", "dozor", "up", "--no-simulator"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=preexec)  # fmt: skip
    deadline = time.monotonic() + 150
    seen = b""
    while time.monotonic() < deadline and b"Dozor is up" not in seen:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    assert b"Dozor is up" in seen, seen.decode(errors="replace")[-2000:]
    services = _descendants(proc.pid)
    assert len(services) >= 5, services  # kafka, clickhouse, worker, join, oidc, dashboard
    return proc, services


def _gone(proc: subprocess.Popen, services: set[int], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and ({p for p in services if _alive(p)} or _alive(proc.pid)):
        time.sleep(0.5)
        proc.poll()
    left = {p for p in services if _alive(p)}
    names = [open(f"/proc/{p}/cmdline").read()[:80] for p in left]
    assert not left, f"left running: {names}"


WAYS = ["ctrl-c, its output's reader gone", "sigterm", "sighup", "sigint under a parent that ignores it",
        "the supervisor killed"]  # fmt: skip


@pytest.mark.parametrize("how", WAYS)
def test_every_way_of_stopping_leaves_nothing_behind(tmp_path, how):
    settings = _settings(tmp_path)
    proc, services = _up(settings, ignore_sigint="ignores" in how)
    try:
        if how.startswith("ctrl-c"):
            proc.stdout.close()  # the tee of `dozor up | tee up.log` died with the Ctrl-C
            proc.send_signal(signal.SIGINT)
        elif how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif how == "sighup":
            proc.send_signal(signal.SIGHUP)
        elif "ignores" in how:
            proc.send_signal(signal.SIGINT)
        else:
            proc.kill()  # SIGKILL: no stop path runs; the services must follow their parent
        _gone(proc, services)
    finally:
        for p in _descendants(proc.pid) | services:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        proc.kill()


def test_a_second_up_on_a_live_state_directory_says_so_in_one_line(tmp_path):
    settings = _settings(tmp_path)
    proc, services = _up(settings)
    try:
        second = subprocess.run([sys.executable, "-m", "dozor", "up", "--no-simulator"],
                                env={**os.environ, **settings.to_env()}, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "already runs from" in lines[0] and str(proc.pid) in lines[0], (
            second.stderr
        )
        assert all(_alive(p) for p in services), "the second start touched the running stack"
    finally:
        proc.send_signal(signal.SIGTERM)
        _gone(proc, services)
