"""The dashboard's shared ClickHouse client and cached queries.

The client is one per server process (``st.cache_resource``), shared by every session; query
results are cached for about one refresh interval, so ten wall screens cost one query, not ten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import streamlit as st
from clickhouse_connect.driver.client import Client

from dozor.access import Scope
from dozor.clickhouse import connect
from dozor.dashboard import queries
from dozor.settings import Settings

__all__ = ["settings", "client", "Snapshot", "snapshot"]


@st.cache_resource
def settings() -> Settings:
    return Settings()


@st.cache_resource
def client() -> Client:
    """Thread-safe: clickhouse-connect's client with ``autogenerate_session_id=False``."""
    return connect(settings(), reader=True, connect_timeout=3, send_receive_timeout=10)


@dataclass(frozen=True)
class Snapshot:
    """Everything one wall screen shows for one focused city, read at one moment."""

    overview: dict[str, queries.CityRow]
    districts: list[queries.DistrictRow]
    alerts: list[queries.AlertRow]
    points: list[queries.MapPoint]
    newest: dt.datetime | None
    read_at: dt.datetime


#: Half a refresh: a screen never shows figures older than that from the cache, and ten screens on
#: the same city still cost one read per half second.
_TTL = min(1.0, Settings().refresh_seconds / 2)


@st.cache_data(ttl=_TTL, max_entries=64, show_spinner=False)
def snapshot(city: str, tz: str, scope: Scope) -> Snapshot:
    """One screen's figures, within ``scope`` (cached per scope: ten screens of one kind, one read)."""
    c = client()
    return Snapshot(
        overview=queries.overview(c, tz, scope),
        districts=queries.districts(c, city, tz, scope),
        alerts=queries.alerts(c, scope),
        points=queries.map_points(c, city, scope),
        newest=queries.newest_event_time(c),
        read_at=dt.datetime.now(dt.UTC),
    )
