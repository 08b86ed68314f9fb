"""Dozor's tests: ``unit`` (no services), ``integration`` (the real broker and endpoint, started once
per session by ``conftest``), ``reliability`` (outages, kills, poison, security), ``browser``
(Debian's chromium) and ``e2e`` (``dozor up`` as a new user runs it)."""

__all__: list[str] = []
