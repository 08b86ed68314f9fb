"""The dashboard's shared ClickHouse client and cached queries.

The client is one per server process (``st.cache_resource``), shared by every session; query
results are cached for about one refresh interval, so ten wall screens cost one query, not ten.
"""

from __future__ import annotations

import streamlit as st
from clickhouse_connect.driver.client import Client

from dozor.clickhouse import connect
from dozor.dashboard import queries
from dozor.settings import Settings

__all__ = ["settings", "client", "city_figures"]


@st.cache_resource
def settings() -> Settings:
    return Settings()


@st.cache_resource
def client() -> Client:
    """Thread-safe: clickhouse-connect's client with ``autogenerate_session_id=False``."""
    return connect(settings(), connect_timeout=3, send_receive_timeout=10)


@st.cache_data(ttl=1.0, max_entries=16, show_spinner=False)
def city_figures(tz: str) -> dict[str, queries.CityFigures]:
    return queries.city_figures(client(), tz)
