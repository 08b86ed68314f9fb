"""The wall laid out for the screens it hangs on: 1920×1080 and 3840×2160, with the city of the most
districts (Almaty, 8) in focus, every city in the overview, a full waiting list and long alerts.

Nothing may be clipped (no text cut short, no "…"), nothing may spill past the screen (a wall has
no one to scroll it), and the table text must be legible from across a room (at least 1.8 % of the
screen's height, 19 px at 1080p). Screenshots of both sizes go to the artifacts.
"""

from __future__ import annotations

import datetime as dt
import sys
import urllib.request
import uuid

import pytest

from dozor.cities import CITIES, city
from dozor.clickhouse import connect
from dozor.infra.migrate import migrate
from dozor.infra.procs import port_open, wait_until
from tests.helpers.chromium import SETTLED

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SIZES = [(1920, 1080), (3840, 2160)]

#: Every element whose text must show whole, and the layout's own boxes.
_CHECK = """() => {
  const w = window.innerWidth, h = window.innerHeight;
  const out = {spill: [], clipped: [], small: [], tableFont: 0, rows: 0};
  const sel = ['.dz-head', '.dz-title', '.dz-clock', '[data-testid="stMetric"]', 'table.dz',
               '.dz-ticker', '.dz-wait', '.dz-h2', '[data-testid="stDeckGlJsonChart"]'];
  for (const s of sel) {
    for (const el of document.querySelectorAll(s)) {
      const r = el.getBoundingClientRect();
      if (r.right > w + 1 || r.bottom > h + 1 || r.left < -1) out.spill.push(s + ' ' + JSON.stringify(r));
    }
  }
  const texts = document.querySelectorAll(
    '[data-testid="stMetricLabel"] p, [data-testid="stMetricValue"], [data-testid="stMetricDelta"], ' +
    'table.dz td, table.dz th, .dz-title, .dz-clock, .dz-ticker, .dz-wait');
  for (const el of texts) {
    const cs = getComputedStyle(el);
    const cut = el.scrollWidth > el.clientWidth + 1;
    if (cut && (cs.overflow !== 'visible' || cs.textOverflow === 'ellipsis')) {
      out.clipped.push(el.innerText.slice(0, 60));
    }
  }
  const cells = [...document.querySelectorAll('table.dz td')]
    .map(td => parseFloat(getComputedStyle(td).fontSize));
  out.tableFont = cells.length ? Math.min(...cells) : 0;  // the smallest text of any table
  out.rows = document.querySelectorAll('table.dz-overview tbody tr').length;
  out.docOverflowX = document.documentElement.scrollWidth > w + 1;
  return out;
}"""


def _seed(settings) -> int:
    """Violations in every district of every city this last hour, Almaty's incidents waiting past
    their targets, and long alerts for Almaty; returns how many cities have data."""
    migrate(settings)
    c = connect(settings)
    now = dt.datetime.now(dt.UTC)
    rows, n = [], 0
    for ci, place in enumerate(CITIES):
        for di, d in enumerate(place.districts):
            for k in range(3 + (ci * 7 + di * 3) % 40):
                at = now - dt.timedelta(seconds=20 + 97 * k % 3000)
                rows.append([uuid.uuid4(), at, place.id, d.id, f"{place.id}-cam-{di:03d}", "speeding",
                             d.lat, d.lon, "a" * 64, "1*****01", 0, n])  # fmt: skip
                n += 1
    c.insert(
        "violations", rows,
        column_names=["event_id", "event_time", "city", "district", "camera_id", "violation_type", "lat",
                      "lon", "plate_hash", "plate_masked", "src_partition", "src_offset"],
    )  # fmt: skip
    almaty = city("almaty")
    incidents = []
    for i in range(12):
        d = almaty.districts[i % len(almaty.districts)]
        opened = now - dt.timedelta(minutes=5 + 9 * i)
        incidents.append([uuid.uuid4(), opened, f"ALM-{i:05d}", "opened", "call_102", "domestic",
                          1 + i % 4, "almaty", d.id, d.lat, d.lon, opened, 0, i])  # fmt: skip
    c.insert(
        "incident_events", incidents,
        column_names=["event_id", "event_time", "incident_id", "status", "channel", "category", "priority",
                      "city", "district", "lat", "lon", "opened_at", "src_partition", "src_offset"],
    )  # fmt: skip
    alerts = []
    for i, d in enumerate(almaty.districts[:4]):
        at = now - dt.timedelta(minutes=i + 1)
        alerts.append([uuid.uuid4(), at, "incident_waiting", "almaty", d.id, f"ALM-{i:05d}", 1, 1900.0 + i,
                       600, None, None, "waiting", 0, i])  # fmt: skip
    c.insert(
        "alerts", alerts,
        column_names=["event_id", "event_time", "kind", "city", "district", "incident_id", "priority",
                      "waited_s", "target_s", "observed", "baseline", "detail", "src_partition",
                      "src_offset"],
    )  # fmt: skip
    return len(CITIES)


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_the_wall_fits_1080p_and_4k_with_nothing_clipped(
    settings_factory, start_service, browser, artifacts_dir, lang
):
    settings = settings_factory(refresh_seconds=2.0)
    cities = _seed(settings)
    dash = start_service([sys.executable, "-m", "dozor", "dashboard"], settings, "dashboard")
    url = f"http://127.0.0.1:{settings.dashboard_port}"
    wait_until(
        "dashboard",
        lambda: port_open("127.0.0.1", settings.dashboard_port)
        and urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200,
        60, dash.proc, dash.log_path,
    )  # fmt: skip
    for width, height in SIZES:
        page = browser.new_page()
        try:
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{url}/?city=almaty&lang={lang}")
            page.locator("table.dz-overview tbody tr").first.wait_for(timeout=60_000)
            page.locator("#dz-waiting, .dz-wait").first.wait_for(timeout=60_000)
            page.wait_for_function(SETTLED, timeout=30_000)
            page.screenshot(path=str(artifacts_dir / f"wall-almaty-{lang}-{width}x{height}.png"))
            found = page.evaluate(_CHECK)
        finally:
            page.close()
        assert found["rows"] == cities, f"{width}x{height}: {found['rows']} of {cities} cities shown"
        assert not found["spill"], f"{width}x{height}: past the screen: {found['spill']}"
        assert not found["docOverflowX"], f"{width}x{height}: the page scrolls sideways"
        assert not found["clipped"], f"{width}x{height}: text cut short: {found['clipped']}"
        font = found["tableFont"]
        assert font >= 0.018 * height, f"{width}x{height}: table text {font} px"
