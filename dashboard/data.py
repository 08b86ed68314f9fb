"""The dashboard's shared ClickHouse client and cached queries.

The client is one per server process (``st.cache_resource``), shared by every session; query
results are cached for about one refresh interval, so ten wall screens cost one query, not ten.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st
from clickhouse_connect.driver.client import Client

from dozor.access import Scope
from dozor.clickhouse import connect
from dozor.dashboard import queries
from dozor.dashboard.queries import Snapshot
from dozor.settings import Settings

__all__ = ["settings", "client", "Snapshot", "snapshot", "read_instant"]


@st.cache_resource
def settings() -> Settings:
    return Settings()


@st.cache_resource
def client() -> Client:
    """Thread-safe: clickhouse-connect's client with ``autogenerate_session_id=False``."""
    return connect(settings(), reader=True, connect_timeout=3, send_receive_timeout=10)


#: Half a refresh: a screen never shows figures older than that from the cache, and ten screens on
#: the same city still cost one read per half second.
_TTL = min(1.0, Settings().refresh_seconds / 2)


def read_instant(now: dt.datetime | None = None) -> dt.datetime:
    """The instant a refresh reads for: now, to the whole second. Every screen refreshing in the same
    second reads the same instant, and so shares one cached read."""
    now = now or dt.datetime.now(dt.UTC)
    return now.replace(microsecond=0)


@st.cache_data(ttl=_TTL, max_entries=64, show_spinner=False)
def snapshot(city: str, tz: str, scope: Scope, at: dt.datetime | None = None) -> Snapshot:
    """One screen's figures, within ``scope``, every one as of the instant ``at`` (cached per scope
    and instant: ten screens of one kind, one read)."""
    t0 = at or read_instant()
    s = settings()
    targets = {int(p): m * 60 for p, m in s.arrival_target_minutes.items()}
    return queries.wall_snapshot(client(), city, tz, scope, targets, t0)
