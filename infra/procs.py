"""Process plumbing shared by every service Dozor starts: port checks, readiness waits, clean stops."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from dozor.errors import PortInUse, ServiceNotReady

__all__ = ["ensure_port_free", "port_open", "wait_until", "stop_process", "tail", "die_with_parent"]

log = logging.getLogger("dozor.infra")


def ensure_port_free(service: str, host: str, port: int, env_var: str) -> None:
    """Refuse to start when something already listens, instead of letting Java print a stack trace."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise PortInUse(service, host, port, env_var) from e


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    service: str,
    ready: Callable[[], bool],
    timeout_s: float,
    proc: subprocess.Popen | None = None,
    log_path: Path | None = None,
    interval_s: float = 0.25,
) -> None:
    """Poll ``ready`` until it is true; fail early (with the log's tail) if ``proc`` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceNotReady(
                f"{service} exited with code {proc.returncode} before it was ready",
                timeout_s - (deadline - time.monotonic()),
                str(log_path) if log_path else None,
            )
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(interval_s)
    raise ServiceNotReady(service, timeout_s, str(log_path) if log_path else None)


def stop_process(pid: int, grace_s: float = 30.0) -> bool:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL. Returns False if it was not running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise poll its existence.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.1)
    log.warning("process %d ignored SIGTERM for %.0f s; killing it", pid, grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages and failed tests."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


#: prctl's option that sends a signal to a process when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """For ``subprocess.Popen(preexec_fn=…)``: the child gets SIGTERM when its parent dies, however
    it dies (SIGKILL included), so no service outlives the supervisor that started it. Kept across
    ``exec``. A parent already gone before this runs: the child exits at once."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the process group stop path still holds
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
