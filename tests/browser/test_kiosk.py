"""A kiosk is an address, and an address is what the connection says — not what a header claims.

The wall runs signed out only for DOZOR_KIOSK_ADDRESSES. A browser on this machine (127.0.0.1,
not a kiosk here) sends X-Forwarded-For and X-Real-IP naming the kiosk's address: the dashboard
must not believe it unless the connection comes from a proxy named in DOZOR_TRUSTED_PROXIES.
The same request through a trusted proxy does get the wall (so the header did reach the server),
and with the server itself told to trust loopback, the page's own check still refuses.
"""

from __future__ import annotations

import sys

import pytest

from dozor.infra.procs import port_open, wait_until
from dozor.infra.stack import streamlit_cmd
from tests.helpers.chromium import SETTLED

pytestmark = [pytest.mark.integration, pytest.mark.browser]

KIOSK = "10.20.30.40"
CLAIMS = [
    {"X-Forwarded-For": KIOSK},
    {"X-Forwarded-For": f"{KIOSK}, 127.0.0.1"},
    {"X-Real-IP": KIOSK, "X-Forwarded-For": KIOSK},
]


def _open(browser, url: str, headers: dict[str, str]) -> tuple[bool, str]:
    """(the wall was drawn, the page's text) for a page opened with ``headers`` on every request."""
    page = browser.new_page()
    try:
        page.set_extra_http_headers(headers)
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelector('.dz-title') || document.body.innerText.includes('not a kiosk')",
            timeout=60_000,
        )
        page.wait_for_function(SETTLED, timeout=30_000)
        return page.locator(".dz-title").count() > 0, page.inner_text("body")
    finally:
        page.close()


def _dashboard(settings, start_service, env: dict[str, str] | None = None, raw: bool = False) -> str:
    args = (
        streamlit_cmd(settings, settings.dashboard_port, "127.0.0.1")
        if raw
        else [sys.executable, "-m", "dozor", "dashboard"]
    )
    dash = start_service(args, settings, f"dashboard-{settings.dashboard_port}", env)
    wait_until("dashboard", lambda: port_open("127.0.0.1", settings.dashboard_port), 60, dash.proc)
    return f"http://127.0.0.1:{settings.dashboard_port}/?city=astana&lang=en"


@pytest.mark.parametrize("headers", CLAIMS, ids=["xff", "xff-chain", "x-real-ip"])
def test_a_forwarded_kiosk_address_is_not_believed_from_an_untrusted_peer(
    settings_factory, start_service, browser, headers
):
    settings = settings_factory(kiosk_addresses=f"{KIOSK}/32")  # trusted_proxies: none (default)
    url = _dashboard(settings, start_service)
    drawn, text = _open(browser, url, headers)
    assert not drawn and "not a kiosk" in text


def test_the_same_claim_through_a_trusted_proxy_is_a_kiosk(settings_factory, start_service, browser):
    settings = settings_factory(kiosk_addresses=f"{KIOSK}/32", trusted_proxies="127.0.0.1")
    url = _dashboard(settings, start_service)
    drawn, _ = _open(browser, url, {"X-Forwarded-For": KIOSK})
    assert drawn, "a trusted proxy's X-Forwarded-For did not reach the kiosk check"
    drawn, text = _open(browser, url, {})  # the proxy itself is no kiosk
    assert not drawn and "not a kiosk" in text


def test_the_page_refuses_a_forwarded_claim_even_when_the_server_believes_it(
    settings_factory, start_service, browser
):
    # The first wall bypassed on purpose: the server trusts loopback's X-Forwarded-For (uvicorn's
    # own default), while Dozor is told no proxy is trusted.
    settings = settings_factory(kiosk_addresses=f"{KIOSK}/32")
    url = _dashboard(settings, start_service, env={"FORWARDED_ALLOW_IPS": "127.0.0.1"}, raw=True)
    drawn, text = _open(browser, url, {"X-Forwarded-For": KIOSK})
    assert not drawn and "not a kiosk" in text
