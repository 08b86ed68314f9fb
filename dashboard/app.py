"""Streamlit entry point: only navigation; each page is a file in ``app_pages/``.

Not ``pages/``: Streamlit treats a ``pages`` directory beside the entry point as the old multipage
mode, and a first visit straight to ``/compstat`` then ran that file alone, without this script
(no wide layout, a sidebar listing every file).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Dozor", page_icon="🚓", layout="wide", initial_sidebar_state="collapsed")

PAGES = Path(__file__).with_name("app_pages")
nav = st.navigation(
    [
        st.Page(PAGES / "wall.py", title="Wall", default=True),
        # Managers' pages sign in first and check the role themselves (dashboard/view.py).
        st.Page(PAGES / "compstat.py", title="CompStat", url_path="compstat"),
        st.Page(PAGES / "trends.py", title="Trends", url_path="trends"),
        st.Page(PAGES / "responses.py", title="Response times", url_path="responses"),
        st.Page(PAGES / "incidents.py", title="Incidents", url_path="incidents"),
        st.Page(PAGES / "integrity.py", title="Integrity", url_path="integrity"),
        st.Page(PAGES / "audit.py", title="Audit", url_path="audit"),
    ],
    position="hidden",
)
nav.run()
