"""Sign-in through a real OIDC provider in a real browser: each user sees only their own cities.

The provider is the local one of ``dozor up`` (oidc-provider-mock on loopback); the dashboard is
configured as for an organisation's IdP, by DOZOR_OIDC_SERVER_METADATA_URL, and no address is a
kiosk, so nobody sees anything signed out. The expected cities come from the access file the test
reads itself; refusals must land in the audit table.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import uuid

import pytest

from dozor.clickhouse import connect
from dozor.infra.migrate import migrate
from dozor.infra.procs import port_open, wait_until
from tests.helpers.chromium import SETTLED
from tests.helpers.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _seed(settings) -> None:
    migrate(settings)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    rows = [
        [uuid.uuid4(), now, city, "", f"{city}-cam-001", "red_light", lat, lon, "a" * 64, "1*****01", 0, i]
        for i, (city, lat, lon) in enumerate([("astana", 51.13, 71.43)] * 7 + [("almaty", 43.24, 76.89)] * 11)
    ]
    connect(settings).insert(
        "violations", rows,
        column_names=["event_id", "event_time", "city", "district", "camera_id", "violation_type", "lat",
                      "lon", "plate_hash", "plate_masked", "src_partition", "src_offset"],
    )  # fmt: skip


def _signed_in_settings(settings_factory):
    """A dashboard wired to the local provider as to an organisation's IdP, with no kiosk."""
    port = free_port()
    return settings_factory(
        oidc_port=port,
        oidc_server_metadata_url=f"http://localhost:{port}/.well-known/openid-configuration",
        kiosk_addresses="",
    )


def _start(settings, start_service) -> str:
    """The provider and the dashboard, running; the dashboard's address (on localhost, where the
    sign-in's redirect and cookie are)."""
    oidc = start_service([sys.executable, "-m", "dozor", "oidc", "serve"], settings, "oidc")
    wait_until("OIDC provider", lambda: port_open("127.0.0.1", settings.oidc_port), 60, oidc.proc)
    dash = start_service([sys.executable, "-m", "dozor", "dashboard"], settings, "dashboard")
    wait_until("dashboard", lambda: port_open("127.0.0.1", settings.dashboard_port), 60, dash.proc)
    return f"http://localhost:{settings.dashboard_port}"


SIGN_IN = re.compile("^(Sign in|Войти|Кіру)$")


def _sign_in(page, base: str, user: str, path: str = "/") -> None:
    page.goto(base + path)
    page.get_by_role("button", name=SIGN_IN).click()
    page.wait_for_url("**/oauth2/authorize**", timeout=30_000)  # the identity provider's page
    page.get_by_role("button", name=user).click()
    page.wait_for_url(base + "/**", timeout=30_000)


def _title(page) -> str:
    title = page.locator(".dz-title")
    title.wait_for(timeout=30_000)
    return title.inner_text()


def test_two_users_see_only_their_cities_and_a_foreign_link_is_refused(
    settings_factory, start_service, browser, artifacts_dir
):
    settings = _signed_in_settings(settings_factory)
    _seed(settings)
    base = _start(settings, start_service)
    page = browser.new_page()
    try:
        # Signed out and not a kiosk: the wall is not shown, sign-in is asked for.
        page.goto(base + "/?city=astana")
        page.get_by_role("button", name="Войти").wait_for(timeout=30_000)  # the page's language
        assert page.locator(".dz-title").count() == 0
        page.screenshot(path=str(artifacts_dir / "sign-in-required.png"))

        _sign_in(page, base, "astana.head@police.kz")
        assert "Астана" in _title(page)
        page.screenshot(path=str(artifacts_dir / "signed-in-astana-head.png"))
        page.goto(base + "/?city=almaty")  # a colleague's link, outside this user's scope
        refusal = page.get_by_text("Нет доступа")
        refusal.wait_for(timeout=30_000)
        assert page.locator(".dz-title").count() == 0
        page.get_by_role("link", name=re.compile("Вернуться")).first.wait_for(timeout=30_000)  # a way back
        page.screenshot(path=str(artifacts_dir / "refused-almaty-for-astana-head.png"))

        browser.clear_cookies()  # the next person at the same browser
        _sign_in(page, base, "almaty.head@police.kz")
        assert "Алматы" in _title(page)
        page.goto(base + "/?city=astana")
        page.get_by_text("Нет доступа").wait_for(timeout=30_000)
    finally:
        page.close()
        browser.clear_cookies()

    audit = (
        connect(settings)
        .query(
            "SELECT user, action, detail FROM audit_log WHERE action IN ('sign_in', 'refused') ORDER BY at"
        )
        .result_rows
    )
    assert [(u, a) for u, a, _ in audit if a == "sign_in"] == [
        ("astana.head@police.kz", "sign_in"), ("almaty.head@police.kz", "sign_in"),
    ]  # fmt: skip
    assert [(u, d) for u, a, d in audit if a == "refused"] == [
        ("astana.head@police.kz", "city=almaty"), ("almaty.head@police.kz", "city=astana"),
    ]  # fmt: skip


def test_the_integrity_page_signs_in_first_and_its_csv_is_the_sql_truth(
    settings_factory, start_service, browser, artifacts_dir
):
    settings = _signed_in_settings(settings_factory)
    migrate(settings)
    year = dt.datetime.now(dt.UTC).year - 1
    kz = dt.timezone(dt.timedelta(hours=5))
    rows = [
        [uuid.uuid4(), dt.datetime(year, 3, d, tzinfo=kz), region, "integrity_check", "front_office", 0, i]
        for i, (region, d) in enumerate([("astana", 2)] * 3 + [("abai", 9)] * 2)
    ]
    connect(settings).insert(
        "integrity_reports", rows,
        column_names=["event_id", "event_time", "region", "kind", "service", "src_partition", "src_offset"],
    )  # fmt: skip
    base = _start(settings, start_service)
    page = browser.new_page()
    try:
        # A manager page with its filters, signed out: sign-in brings the analyst back to it.
        asked = f"/integrity?lang=en&from={year}-03&to={year}-03"
        _sign_in(page, base, "analyst@mvd.kz", asked)
        try:
            page.get_by_text("Integrity reports by region and month").wait_for(timeout=30_000)
        finally:
            page.screenshot(path=str(artifacts_dir / "integrity-after-sign-in.png"))
        assert page.url.endswith(asked), page.url
        page.get_by_role("button", name="Download CSV").wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts_dir / "integrity-analyst.png"))
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download CSV").click()
        lines = open(dl.value.path(), encoding="utf-8").read().splitlines()
    finally:
        page.close()
        browser.clear_cookies()
    truth = (
        connect(settings)
        .query("SELECT region, count() FROM integrity_reports GROUP BY region ORDER BY region")
        .result_rows
    )
    assert truth == [("abai", 2), ("astana", 3)]
    # The CSV is the table on the screen: regions, kinds and services by name, not by id.
    assert lines[0].lstrip("\ufeff") == "region,month,kind,service,reports"
    got = sorted((r.split(",")[0], r.split(",")[2], int(r.split(",")[-1])) for r in lines[1:])
    assert got == [("Abai region", "integrity check", 2), ("Astana", "integrity check", 3)]
    audit = (
        connect(settings)
        .query("SELECT user, action FROM audit_log WHERE page = 'integrity' AND action IN ('view', 'export')")
        .result_rows
    )
    assert ("analyst@mvd.kz", "export") in audit and ("analyst@mvd.kz", "view") in audit


def _settled(page) -> None:
    """Until the app's run is over and drawn (:data:`~tests.helpers.chromium.SETTLED`)."""
    page.wait_for_function(SETTLED, timeout=30_000)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_a_manager_drills_into_a_district_changes_the_range_and_exports_the_truth(
    settings_factory, start_service, browser, artifacts_dir
):
    from zoneinfo import ZoneInfo

    from dozor.producers.backfill import backfill

    settings = _signed_in_settings(settings_factory)
    migrate(settings)
    backfill(connect(settings), settings, days=30, seed=4)
    base = _start(settings, start_service)
    page = browser.new_page()
    try:
        _sign_in(page, base, "astana.head@police.kz")
        page.goto(f"{base}/compstat?lang=en&city=astana")
        page.get_by_text("CompStat overview: Astana").wait_for(timeout=30_000)
        page.get_by_role("button", name="PDF briefing").wait_for(timeout=30_000)  # the page's last element
        _settled(page)
        page.screenshot(path=str(artifacts_dir / "compstat-astana.png"))

        _choose(page, "District", "Yesil")  # drill into a district
        page.get_by_text("CompStat overview: Astana · Yesil").wait_for(timeout=30_000)
        assert "district=yesil" in page.url
        page.get_by_role("button", name="PDF briefing").wait_for(timeout=30_000)
        _settled(page)
        page.screenshot(path=str(artifacts_dir / "compstat-astana-yesil.png"))
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download CSV").first.click()  # violations by type
        compstat_csv = open(dl.value.path(), encoding="utf-8-sig").read().splitlines()
        with page.expect_download() as dl:
            page.get_by_role("button", name="PDF briefing").click()
        pdf = artifacts_dir / "compstat-astana-yesil.pdf"
        dl.value.save_as(pdf)

        page.get_by_role("link", name="Trends").click()  # the area comes along
        page.get_by_text("Trends: Astana · Yesil").wait_for(timeout=30_000)
        _choose(page, "Range", "7 days")
        page.wait_for_url("**range=7d**", timeout=30_000)
        page.get_by_role("button", name="Download CSV").wait_for(timeout=30_000)
        _settled(page)
        page.screenshot(path=str(artifacts_dir / "trends-astana-yesil-7d.png"))
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download CSV").click()
        lines = open(dl.value.path(), encoding="utf-8-sig").read().splitlines()
        shared = f"{base}/compstat?lang=en&city=astana&district=yesil"

        for name in ("Response times", "Incidents"):
            page.get_by_role("link", name=name).click()
            page.get_by_text(f"{name}: Astana · Yesil").wait_for(timeout=30_000)
            page.get_by_role("button", name="Download CSV").wait_for(timeout=30_000)
            _settled(page)
            page.screenshot(path=str(artifacts_dir / f"{name.lower().replace(' ', '-')}-astana-yesil.png"))

        browser.clear_cookies()  # a colleague of another city opens the shared link
        _sign_in(page, base, "almaty.head@police.kz")
        page.goto(shared)
        page.get_by_text("Access refused").wait_for(timeout=30_000)
        assert page.get_by_text("Traffic violations by type").count() == 0
        page.screenshot(path=str(artifacts_dir / "compstat-shared-link-refused.png"))
    finally:
        page.close()
        browser.clear_cookies()

    # The briefing opens (poppler renders its page) and carries the page's numbers.
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
                    str(artifacts_dir / "compstat-briefing")], check=True)  # fmt: skip
    assert (artifacts_dir / "compstat-briefing-1.png").stat().st_size > 10_000
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert "CompStat briefing: Astana · Yesil" in text
    pdf_lines = {}
    for line in text.splitlines():
        # Columns are apart by runs of spaces; thousands by a comma in English (a no-break space
        # in Russian and Kazakh).
        cells = [
            c.replace(" ", "").replace("\u00a0", "").replace(",", "")
            for c in re.split(r"\s{2,}", line.strip())
        ]
        if cells and cells[0] in ("Total", "speeding") and cells[0] not in pdf_lines:
            pdf_lines[cells[0]] = cells[1:8]
    header, *csv_rows = compstat_csv
    assert header.split(",")[:3] == ["Figure", "Week", "Previous week"]
    for row in csv_rows:
        cells = row.split(",")
        if cells[0] in pdf_lines:
            assert pdf_lines[cells[0]] == cells[1:8], (cells, pdf_lines[cells[0]])
    assert set(pdf_lines) == {"Total", "speeding"}

    today = dt.datetime.now(ZoneInfo(settings.display_timezone)).date()
    first = today - dt.timedelta(days=6)
    truth = dict(
        connect(settings)
        .query(
            "SELECT toString(toDate(event_time, 'Asia/Almaty')) AS d, count() FROM violations "
            "WHERE city = 'astana' AND district = 'yesil' "
            "AND toDate(event_time, 'Asia/Almaty') >= {first:Date} GROUP BY d",
            parameters={"first": first},
        )
        .result_rows
    )
    assert lines[0].split(",")[:2] == ["day", "chosen range"]
    got = {line.split(",")[0]: int(line.split(",")[1]) for line in lines[1:]}
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(7)]
    assert sorted(got) == days
    assert got == {d: truth.get(d, 0) for d in days}
    assert sum(got.values()) > 0
    audit = (
        connect(settings)
        .query(
            "SELECT user, action, page, detail FROM audit_log WHERE action IN ('export', 'refused', 'filter')"
        )
        .result_rows
    )
    assert ("astana.head@police.kz", "export", "trends") in {(u, a, p) for u, a, p, _ in audit}
    assert [(u, p) for u, a, p, _ in audit if a == "refused"] == [("almaty.head@police.kz", "compstat")]
