"""The Streamlit dashboard: ``app.py`` (navigation only), the pages in ``app_pages/`` (the wall
screen; the managers' CompStat, trends, response times, incidents, integrity and audit), their
shared sign-in (``signin``), filters (``view``), tables and PDF briefing, texts (``i18n``) and every
SQL query they run (``queries/``)."""

__all__ = ["briefing", "data", "i18n", "screen", "signin", "tables", "view", "app_pages", "queries"]
