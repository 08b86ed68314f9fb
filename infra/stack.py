"""`dozor up`'s supervisor: start the embedded stack in order, watch it, stop it in waves.

Start order: Kafka, the ClickHouse endpoint (waited for), topics and migrations, the first start's
history, the ingest worker and the join worker, the simulator, the local OIDC provider (unless an
organisation's IdP is configured), the dashboard. Stop order (:func:`stop_waves`): everything that
uses the broker and ClickHouse together — the worker's last flush still reaches both — then the
endpoint, then Kafka; each wave bounded, so one slow service (Streamlit with screens connected)
does not make the others wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dozor.errors import DozorError
from dozor.infra.procs import die_with_parent
from dozor.settings import Settings

log = logging.getLogger("dozor.infra.stack")

__all__ = [
    "Stack", "stop_waves", "spawn", "dozor_cmd", "stop_all", "wait_for_interrupt", "streamlit_cmd",
    "streamlit_env", "stop_on_signals", "Stopped", "StackLock",
]  # fmt: skip

DASHBOARD_APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"

#: Services stopped last, in this order, each in a wave of its own.
_LAST = ("clickhouse", "kafka")


def stop_waves(names: list[str]) -> list[list[str]]:
    """The services in the order they are stopped: all the others together, then the endpoint,
    then the broker."""
    waves = [[n for n in names if n not in _LAST]]
    waves += [[n for n in names if n == last] for last in _LAST]
    return [w for w in waves if w]


def dozor_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dozor", *args]


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start one service, its output in ``log_path``; it dies with this process, however this one
    ends (``die_with_parent``)."""
    parent = os.getpid()
    return subprocess.Popen(
        cmd,
        env={**os.environ, **env} if env else None,
        stdout=open(log_path, "ab"),  # noqa: SIM115 - owned by the child
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # Ctrl-C must reach only `dozor up`, which then stops the services in order (the worker
        # before ClickHouse and Kafka), not every child at once.
        start_new_session=True,
        preexec_fn=lambda: die_with_parent(parent),
    )


def stop_all(procs: list[subprocess.Popen], timeout_s: float) -> None:
    """SIGTERM every process, then wait for all of them together; SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Stopped(Exception):
    """A signal asked the supervisor to stop (SIGINT, SIGTERM or SIGHUP)."""


#: The signals that stop `dozor up`, whatever its parent did with them (a parent that ignores
#: SIGINT passes that on: Python then never raises KeyboardInterrupt).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_on_signals() -> None:
    """Make every stop signal raise :class:`Stopped` in the main thread, from now on (the start
    can take a minute: a signal then must stop what already runs)."""

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)


def wait_for_interrupt(procs: list[subprocess.Popen]) -> None:
    """Block until a stop signal, or until a child dies (then say which)."""
    try:
        while True:
            for p in procs:
                if p.poll() is not None:
                    raise DozorError(
                        f"a service exited unexpectedly (pid {p.pid}, code {p.returncode}); see its log"
                    )
            time.sleep(0.5)
    except (Stopped, KeyboardInterrupt):
        pass


def _dashboard_app() -> Path:
    """The Streamlit entry script: beside this package in a checkout, inside it when installed."""
    if DASHBOARD_APP.exists():
        return DASHBOARD_APP
    import dozor.dashboard

    return Path(dozor.dashboard.__file__).with_name("app.py")


def streamlit_cmd(settings: Settings, port: int, address: str) -> list[str]:
    """``streamlit run`` of the dashboard; sign-in configured by a secrets file written from
    DOZOR_OIDC_* into the state directory (mode 600), never into the repository."""
    secrets_file = settings.state_dir / "streamlit" / "secrets.toml"
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.touch(mode=0o600)
    secrets_file.chmod(0o600)
    secrets_file.write_text(settings.streamlit_secrets())
    # A traceback names files and lines of the server: only a developer's screen shows one.
    errors = "full" if settings.environment == "development" else "none"
    return [
        sys.executable, "-m", "streamlit", "run", str(_dashboard_app()),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--theme.base", "dark",
        "--client.toolbarMode", "minimal", "--server.runOnSave", "false",
        "--server.fileWatcherType", "none", "--secrets.files", str(secrets_file.resolve()),
        "--client.showErrorDetails", errors,
    ]  # fmt: skip


def streamlit_env(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The dashboard's environment: whom its server believes about a browser's address.

    Streamlit serves through uvicorn, which takes the client's address from X-Forwarded-For when
    the connection comes from ``FORWARDED_ALLOW_IPS`` — by default loopback, so any local process
    (or a proxy that passes the header on) could claim a kiosk's address. Here only
    ``DOZOR_TRUSTED_PROXIES`` is believed, none by default.
    """
    env = dict(os.environ if environ is None else environ)
    env["FORWARDED_ALLOW_IPS"] = ",".join(str(n) for n in settings.trusted_proxy_networks)
    return env


class StackLock:
    """One live stack per state directory: an exclusive ``flock`` on ``<state>/up.lock``, held for
    the life of `dozor up` and released by the kernel however it ends; the file names its pid."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "up.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DozorError(
                f"a Dozor stack already runs from {self.path.parent} (dozor up, pid {holder}): stop it "
                f"first (Ctrl-C in its terminal, or kill {holder}), or set DOZOR_STATE_DIR elsewhere"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Stack:
    """The embedded stack of one state directory, as `dozor up` runs it."""

    def __init__(self, settings: Settings, echo: Callable[[str], object] = print) -> None:
        from dozor.infra.kafka import KafkaBroker

        self.settings = settings
        self.echo = echo
        self.logs = settings.state_dir / "logs"
        self.broker = KafkaBroker(settings)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._lock = StackLock(settings.state_dir)

    def _check_ports(self) -> None:
        from dozor.infra.procs import ensure_port_free

        s = self.settings
        ch_host, ch_port = s.clickhouse_host_port
        ensure_port_free("ClickHouse endpoint", ch_host, ch_port, "DOZOR_CLICKHOUSE_URL")
        ensure_port_free("Dashboard", "127.0.0.1", s.dashboard_port, "DOZOR_DASHBOARD_PORT")
        ensure_port_free("Worker web", "127.0.0.1", s.worker_web_port, "DOZOR_WORKER_WEB_PORT")
        if not s.oidc_server_metadata_url:
            ensure_port_free("OIDC provider", "127.0.0.1", s.oidc_port, "DOZOR_OIDC_PORT")

    def start(
        self,
        rate: float | None = None,
        simulator: bool = True,
        first_start: Callable[[], object] | None = None,
    ) -> str:
        """Start every service in order; return the dashboard's address. ``first_start`` runs after
        the migrations, before any worker (the simulated history of an empty database)."""
        from dozor.infra.migrate import migrate as run_migrations
        from dozor.infra.procs import port_open, wait_until
        from dozor.infra.topics import ensure_topics

        s, logs = self.settings, self.logs
        feed = rate or s.simulate_rate or 1.0
        self._lock.acquire()
        logs.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        self.say("starting Kafka …")
        self.procs.append(("kafka", self.broker.start()))
        if self.broker.sasl:
            self.broker.grant_dozor()
        self.say("starting ClickHouse endpoint …")
        ch = spawn(dozor_cmd("clickhouse", "serve"), logs / "clickhouse.log")
        self.procs.append(("clickhouse", ch))
        ch_host, ch_port = s.clickhouse_host_port
        wait_until(
            "ClickHouse endpoint", lambda: port_open(ch_host, ch_port), 60, ch, logs / "clickhouse.log"
        )
        ensure_topics(s)
        run_migrations(s)
        if first_start:
            first_start()
        self.procs.append(("worker", spawn(dozor_cmd("worker"), logs / "worker.log")))
        join_env = {"DOZOR_WORKER_WEB_PORT": str(s.worker_web_port + 1)}
        self.procs.append(("join", spawn(dozor_cmd("worker", "--role", "join"), logs / "join.log", join_env)))
        if simulator:
            sim = dozor_cmd("simulate", "--rate", str(feed))
            self.procs.append(("simulator", spawn(sim, logs / "simulator.log")))
        dash_settings = s
        if not s.oidc_server_metadata_url:
            # Sign-in for the managers' pages: the local provider with the demo users (README).
            oidc = spawn(dozor_cmd("oidc", "serve"), logs / "oidc.log")
            self.procs.append(("oidc", oidc))
            wait_until("OIDC provider", lambda: port_open("127.0.0.1", s.oidc_port), 60, oidc)
            metadata = f"http://localhost:{s.oidc_port}/.well-known/openid-configuration"
            dash_settings = s.model_copy(update={"oidc_server_metadata_url": metadata})
        # The wall marks a load test's feed (DOZOR_SIMULATE_RATE above 1) on screen.
        dash_env = streamlit_env(s)
        if simulator:
            dash_env["DOZOR_SIMULATE_RATE"] = str(feed)
        dash = spawn(
            streamlit_cmd(dash_settings, s.dashboard_port, "127.0.0.1"), logs / "dashboard.log", dash_env
        )
        self.procs.append(("dashboard", dash))
        wait_until("Dashboard", lambda: port_open("127.0.0.1", s.dashboard_port), 60, dash)
        # localhost, not 127.0.0.1: the sign-in's redirect address and cookie are on localhost.
        return f"http://localhost:{s.dashboard_port}"

    def wait(self) -> None:
        """Until Ctrl-C or SIGTERM; a service that dies is an error naming it."""
        wait_for_interrupt([p for _, p in self.procs])

    def say(self, text: str) -> None:
        """Tell the operator, if anyone still listens: a closed stdout (``dozor up | tee`` with the
        tee gone) must never stop the stop path."""
        with contextlib.suppress(OSError, ValueError):
            self.echo(text)

    def stop(self) -> None:
        """Stop what was started, in :func:`stop_waves` order; signals that arrive meanwhile do not
        interrupt it (a second Ctrl-C, the terminal closing), and nothing here depends on stdout."""
        for sig in STOP_SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: nothing to shield
                signal.signal(sig, signal.SIG_IGN)
        self.say("stopping …")
        by_name = dict(self.procs)
        for wave in stop_waves([n for n, _ in self.procs]):
            try:
                if wave == ["kafka"]:
                    self.broker.stop()
                else:
                    stop_all([by_name[n] for n in wave], timeout_s=30)
            except Exception as e:  # one service's trouble must not leave the next wave running
                log.error("stopping %s failed: %s", wave, e)
                stop_all([by_name[n] for n in wave if n in by_name], timeout_s=5)
        self._lock.release()
        self.say("stopped")
