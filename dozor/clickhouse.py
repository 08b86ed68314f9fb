"""The one way every Dozor process reaches ClickHouse: clickhouse-connect, URL from settings.

The embedded chdb endpoint and a production ClickHouse server are the same to this code; only
``DOZOR_CLICKHOUSE_URL`` (and credentials) differ.
"""

from __future__ import annotations

from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from dozor.settings import Settings

__all__ = ["connect"]


def connect(
    settings: Settings, database: str | None = None, reader: bool = False, **kwargs: object
) -> Client:
    """A client for ``database`` (default: the configured one), as the writer or, with ``reader``,
    as the read-only user (the dashboard's: SELECT on Dozor's tables only).

    ``autogenerate_session_id=False``: one client is shared across threads by the worker and the
    dashboard, and ClickHouse refuses concurrent queries in one session (clickhouse-connect docs).
    """
    u = urlparse(settings.clickhouse_url)
    secret = settings.clickhouse_reader_password if reader else settings.clickhouse_password
    return clickhouse_connect.get_client(
        host=u.hostname or "127.0.0.1",
        port=u.port or (8443 if u.scheme == "https" else 8123),
        secure=u.scheme == "https",
        username=settings.clickhouse_reader_user if reader else settings.clickhouse_user,
        password=secret.get_secret_value(),
        database=database if database is not None else settings.clickhouse_database,
        autogenerate_session_id=False,
        **kwargs,
    )
