"""The local OIDC provider of ``dozor up`` and the tests: sign-in without an organisation's IdP.

It is ``oidc-provider-mock`` (PyPI) on loopback, with the demo users of the access file (every
``user = "…"`` of ``infra/access/dev.toml``) offered as one-click accounts, each with its e-mail as
subject and ``email`` claim. It accepts any client id and secret and checks no password: a
development stand-in for Keycloak or AD FS, never started in production (the CLI refuses).
"""

from __future__ import annotations

import logging
import threading
import tomllib
from pathlib import Path

from dozor.access import DEV_ACCESS_FILE
from dozor.errors import ConfigError
from dozor.settings import Settings

__all__ = ["demo_users", "serve"]

log = logging.getLogger("dozor.infra.oidc")


def demo_users(access_file: Path) -> list[str]:
    """The users named in ``access_file``, in order."""
    raw = tomllib.loads(access_file.read_text(encoding="utf-8"))
    return [a["user"] for a in raw.get("assign", []) if "user" in a]


def serve(settings: Settings, stop: threading.Event | None = None) -> None:
    """Serve the provider on ``localhost`` at DOZOR_OIDC_PORT until ``stop`` is set."""
    if settings.environment == "production":
        raise ConfigError(
            "the local OIDC provider is for development only; set DOZOR_OIDC_SERVER_METADATA_URL"
        )
    from oidc_provider_mock import User, run_server_in_thread

    users = [
        User(sub=u, claims={"email": u, "email_verified": True, "name": u.split("@")[0]})
        for u in demo_users(settings.access_file or DEV_ACCESS_FILE)
    ]
    stop = stop or threading.Event()
    with run_server_in_thread(port=settings.oidc_port, user_claims=users) as server:
        log.info("local OIDC provider on http://localhost:%d (%d demo users)", server.server_port, len(users))
        stop.wait()
