"""The root of Dozor's exceptions.

Every error a user can meet derives from :class:`DozorError`, so the CLI can turn any of them into
one clear line (``click.ClickException``) instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "DozorError",
    "ConfigError",
    "DependencyMissing",
    "PortInUse",
    "ServiceNotReady",
    "ClickHouseUnavailable",
    "InsertNotStored",
    "ClickHouseDataError",
]


class DozorError(Exception):
    """Base class: a failure Dozor understands and can explain in one line."""


class ConfigError(DozorError):
    """A setting is missing or unsafe (for example the development plate salt in production)."""


class DependencyMissing(DozorError):
    """A program Dozor needs (Java, Maven) is not installed; the message says how to install it."""

    def __init__(self, program: str, hint: str) -> None:
        self.program = program
        self.hint = hint
        super().__init__(f"{program} not found: {hint}")


class PortInUse(DozorError):
    """A port Dozor wants to listen on is already taken by another process."""

    def __init__(self, service: str, host: str, port: int, env_var: str) -> None:
        self.service, self.host, self.port, self.env_var = service, host, port, env_var
        super().__init__(
            f"{service} cannot listen on {host}:{port}: the port is in use. Stop what holds it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port with {env_var}."
        )


class ServiceNotReady(DozorError):
    """A service did not become ready in time; ``log_path`` points at what it printed."""

    def __init__(self, service: str, waited_s: float, log_path: str | None = None) -> None:
        self.service, self.waited_s, self.log_path = service, waited_s, log_path
        where = f"; see its log at {log_path}" if log_path else ""
        super().__init__(f"{service} was not ready after {waited_s:.0f} s{where}")


class ClickHouseUnavailable(DozorError):
    """ClickHouse could not take a write; the caller must pause, keep the batch and retry.

    :param retry_after: seconds the caller should wait before the next attempt.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class InsertNotStored(ClickHouseUnavailable):
    """ClickHouse answered an insert as done, but the rows are not there.

    Neither the data's fault nor a plain outage: a server (or an endpoint) that says "written" for
    rows it lost. The caller keeps the batch and its offsets uncommitted and retries, as for an
    outage, so nothing is committed past rows that were not stored.
    """


class ClickHouseDataError(DozorError):
    """ClickHouse refused the data itself (a value it cannot parse or store), not the request.

    Retrying the same rows would fail forever; the caller narrows the batch down to the rows that
    fail and dead-letters them. ``code`` is ClickHouse's error code (None when the rows could not
    even be serialised for sending).
    """

    def __init__(self, message: str, code: int | None) -> None:
        self.code = code
        super().__init__(message)
