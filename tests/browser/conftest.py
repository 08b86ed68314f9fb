"""Headless Debian chromium, driven by Playwright for Python (never Playwright's own browser build)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.helpers.chromium import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1920, "height": 1080},
            locale="ru-RU",
        )
        yield ctx
        ctx.close()
