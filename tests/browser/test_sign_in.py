"""Sign-in through a real OIDC provider in a real browser: each user sees only their own cities.

The provider is the local one of ``dozor up`` (oidc-provider-mock on loopback); the dashboard is
configured as for an organisation's IdP, by DOZOR_OIDC_SERVER_METADATA_URL, and no address is a
kiosk, so nobody sees anything signed out. The expected cities come from the access file the test
reads itself; refusals must land in the audit table.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid

import pytest

from dozor.clickhouse import connect
from dozor.infra.migrate import migrate
from dozor.infra.procs import port_open, wait_until
from tests.conftest import free_port

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


def _sign_in(page, base: str, user: str) -> None:
    page.goto(base + "/")
    page.get_by_role("button", name="Sign in").click()
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
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        assert page.locator(".dz-title").count() == 0
        page.screenshot(path=str(artifacts_dir / "sign-in-required.png"))

        _sign_in(page, base, "astana.head@police.kz")
        assert "Астана" in _title(page)
        page.screenshot(path=str(artifacts_dir / "signed-in-astana-head.png"))
        page.goto(base + "/?city=almaty")  # a colleague's link, outside this user's scope
        refusal = page.get_by_text("Нет доступа")
        refusal.wait_for(timeout=30_000)
        assert page.locator(".dz-title").count() == 0
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
        page.goto(f"{base}/integrity?from={year}-03&to={year}-03")  # a manager page, signed out
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        _sign_in(page, base, "analyst@mvd.kz")
        page.goto(f"{base}/integrity?from={year}-03&to={year}-03")
        page.get_by_text("Integrity reports by region and month").wait_for(timeout=30_000)
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
    assert lines[0] == "region,month,kind,service,reports"
    got = sorted((r.split(",")[0], int(r.split(",")[-1])) for r in lines[1:])
    assert got == sorted(truth) == [("abai", 2), ("astana", 3)]
    audit = (
        connect(settings)
        .query("SELECT user, action FROM audit_log WHERE page = 'integrity' AND action IN ('view', 'export')")
        .result_rows
    )
    assert ("analyst@mvd.kz", "export") in audit and ("analyst@mvd.kz", "view") in audit
