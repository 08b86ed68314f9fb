"""Streamlit pages under AppTest, as a signed-in user of a given scope would open them.

AppTest cannot sign in (no browser, no IdP): the page is given its scope, as the signed-in user's
would be. Sign-in itself is tested in chromium (``tests/browser/test_sign_in.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dozor.access import Scope
from dozor.dashboard import signin
from dozor.settings import Settings

__all__ = ["DASHBOARD", "page_as"]

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def page_as(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, scope: Scope, path: Path, timeout_s: float = 30,
    **params: str,
) -> AppTest:  # fmt: skip
    """``path`` (an entry point or a page file) for ``scope``, with ``params`` in its URL, not run yet.

    A page file is opened through the entry point's navigation, as a browser reaches it: a page
    run alone has no navigation, and its links to the other pages would not resolve.

    The caches are cleared: each test's settings point at its own database, and a cached result
    of another test's would answer for it.
    """
    for k, v in settings.to_env().items():
        monkeypatch.setenv(k, v)
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setattr(signin, "current_scope", lambda page, kiosk_ok=False: scope)
    if path.parent.name == "app_pages":
        at = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=timeout_s)
        at.switch_page(f"app_pages/{path.name}")
    else:
        at = AppTest.from_file(str(path), default_timeout=timeout_s)
    for k, v in params.items():
        at.query_params[k] = v
    return at
