"""How the tests and benchmarks start Debian's chromium (never Playwright's own browser build)."""

from __future__ import annotations

import shutil

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SETTLED"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: As root on these machines chromium needs --no-sandbox; the network flags stop it reaching for
#: Google's services, which this closed network refuses many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: A Streamlit page's run is over and drawn (for ``page.wait_for_function``): no "Running…" icon,
#: no element left from the previous run (Streamlit keeps those, marked stale, until the new run
#: replaces them), no skeleton of an element still loading its code (tables and charts load theirs
#: on first use).
SETTLED = (
    "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    " && !document.querySelector('[data-stale=\"true\"]')"
    " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
)
