"""The wall screen in a real browser shows exactly what ClickHouse holds."""

from __future__ import annotations

import re
import sys
import time
import urllib.request

import pytest

from dozor.clickhouse import connect
from dozor.infra.procs import port_open, wait_until
from tests.helpers.pipeline import produce_violations, wait_for_rows

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _astana_today_sql(settings) -> int:
    """The truth, written independently of the dashboard's query module."""
    return connect(settings).command(
        "SELECT count() FROM violations WHERE city = 'astana' "
        "AND event_time >= toStartOfDay(now('Asia/Almaty'))"
    )


def _metric_value(page, label: str) -> int:
    metric = page.locator('[data-testid="stMetric"]', has_text=label)
    metric.wait_for(timeout=30_000)
    text = metric.locator('[data-testid="stMetricValue"]').inner_text()
    return int(re.sub(r"\D", "", text))


def test_astana_today_equals_clickhouse(settings_factory, start_service, browser, artifacts_dir):
    settings = settings_factory(refresh_seconds=1.0)
    truth = produce_violations(settings, 2000, seed=11)
    start_service([sys.executable, "-m", "dozor", "worker"], settings, "worker")
    wait_for_rows(settings, truth.valid)
    dash = start_service([sys.executable, "-m", "dozor", "dashboard"], settings, "dashboard")
    url = f"http://127.0.0.1:{settings.dashboard_port}"
    wait_until(
        "dashboard",
        lambda: (
            port_open("127.0.0.1", settings.dashboard_port)
            and urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200
        ),
        60,
        dash.proc,
        dash.log_path,
    )

    page = browser.new_page()
    page.goto(f"{url}/?city=astana&lang=ru")
    expected = _astana_today_sql(settings)
    assert expected == truth.per_city["astana"] > 0
    shown = _metric_value(page, "Астана · сегодня")
    page.screenshot(path=str(artifacts_dir / "wall-astana-ru.png"))
    assert shown == expected

    # The table of all cities carries every city that has data, Almaty first (the largest).
    first_row = page.locator("table.dz-overview tbody tr").first.inner_text()
    assert "Алматы" in first_row
    assert page.locator("table.dz-overview tbody tr").count() == len(truth.per_city)

    # Produce more and see the figure change in place, without reloading the page.
    page.evaluate("window.__dozor_marker = 1")
    more = produce_violations(settings, 300, seed=12)
    wait_for_rows(settings, truth.valid + more.valid)
    expected = _astana_today_sql(settings)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _metric_value(page, "Астана · сегодня") != expected:
        time.sleep(0.5)
    assert _metric_value(page, "Астана · сегодня") == expected
    assert page.evaluate("window.__dozor_marker") == 1, "the page reloaded instead of updating"
    page.screenshot(path=str(artifacts_dir / "wall-astana-ru-updated.png"))
    page.close()
