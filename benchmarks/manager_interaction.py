"""In chromium, a manager opens a page and changes a filter: how long until every figure is drawn.

**First load**: ``goto`` of the page's link (signed in, area in the URL) to the end of its first run,
``--rounds`` times per page, alternating pages so that no result comes from the page just shown.

Starts the local OIDC provider and a dashboard on the configured ClickHouse (the history is
whatever the database holds: run ``dozor backfill`` first), signs in as the ministry analyst,
and on each page flips a filter back and forth ``--rounds`` times: the city on CompStat, the range
on Trends and Response times, the sort on Incidents. Timed from the click on the option to the end
of the app's run (no "Running…" icon, no element left from the previous run) — what the manager
waits for. Target: p95 ≤ 1.5 s. With ``--screenshots DIR`` the pages are saved for the README.

    python benchmarks/manager_interaction.py --rounds 20 --screenshots docs/img \\
        > benchmarks/results/manager_interaction.txt
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dozor.infra.procs import port_open, wait_until  # noqa: E402
from dozor.settings import Settings  # noqa: E402
from tests.helpers.chromium import CHROMIUM, CHROMIUM_ARGS, SETTLED  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402

TARGET_S = 1.5


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def _choose(page: object, label: str, option: str) -> float:
    t0 = time.perf_counter()
    page.get_by_role("combobox", name=label).click()  # type: ignore[attr-defined]
    page.get_by_role("option", name=option, exact=True).click()  # type: ignore[attr-defined]
    page.wait_for_timeout(50)  # type: ignore[attr-defined]  # the rerun's first message
    page.wait_for_function(SETTLED, timeout=30_000)  # type: ignore[attr-defined]
    return time.perf_counter() - t0


@click.command()
@click.option("--rounds", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--screenshots", type=click.Path(file_okay=False, path_type=Path), default=None)
def main(rounds: int, screenshots: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    base_settings = Settings()
    oidc_port, dash_port = free_port(), free_port()
    env = {
        **os.environ,
        "DOZOR_OIDC_PORT": str(oidc_port),
        "DOZOR_OIDC_SERVER_METADATA_URL": f"http://localhost:{oidc_port}/.well-known/openid-configuration",
        "DOZOR_DASHBOARD_PORT": str(dash_port),
        "DOZOR_KIOSK_ADDRESSES": "",
    }
    logs = base_settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen([sys.executable, "-m", "dozor", "oidc", "serve"], env=env,
                         stdout=open(logs / "bench-oidc.log", "ab"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "dozor", "dashboard"], env=env,
                         stdout=open(logs / "bench-dashboard.log", "ab"), stderr=subprocess.STDOUT),
    ]  # fmt: skip
    base = f"http://localhost:{dash_port}"
    times: dict[str, list[float]] = {}
    loads: dict[str, list[float]] = {}
    try:
        wait_until("OIDC provider", lambda: port_open("127.0.0.1", oidc_port), 60, procs[0])
        wait_until("dashboard", lambda: port_open("127.0.0.1", dash_port), 60, procs[1])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(base + "/compstat?lang=en")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/oauth2/authorize**", timeout=30_000)
            page.get_by_role("button", name="analyst@mvd.kz").click()
            page.wait_for_url(base + "/**", timeout=30_000)
            plan = [
                ("compstat", "/compstat?lang=en&city=astana", "City", ["Almaty", "Astana"]),
                ("trends", "/trends?lang=en&city=astana", "Range", ["7 days", "28 days"]),
                ("responses", "/responses?lang=en&city=astana", "Range", ["Year to date", "28 days"]),
                ("incidents", "/incidents?lang=en&city=astana", "Sort by", ["priority", "opened"]),
            ]
            for _ in range(rounds):
                for name, url, label, _options in plan:
                    t0 = time.perf_counter()
                    page.goto(base + url)
                    page.get_by_role("combobox", name=label).wait_for(timeout=30_000)
                    page.wait_for_timeout(50)
                    page.wait_for_function(SETTLED, timeout=30_000)
                    loads.setdefault(name, []).append(time.perf_counter() - t0)
            for name, url, label, options in plan:
                page.goto(base + url)
                page.get_by_role("combobox", name=label).wait_for(timeout=30_000)
                page.wait_for_function(SETTLED, timeout=30_000)
                if screenshots:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshots / f"{name}-astana-en.png"))
                times[name] = [_choose(page, label, options[i % 2]) for i in range(rounds * 2)]
            browser.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)

    print(f"# manager interaction in chromium: {platform.node()}, python {platform.python_version()}, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"# database {base_settings.clickhouse_database} at {base_settings.clickhouse_url}; "
          f"{rounds} first loads and {rounds * 2} filter changes per page; target p95 <= {TARGET_S} s")  # fmt: skip
    print(f"{'page (what)':<30} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  verdict")
    rows = [(f"{name} (first load)", loads[name]) for name, *_ in plan]
    rows += [(f"{name} ({label})", times[name]) for name, _url, label, _opts in plan]
    for what, values in rows:
        p95 = _pct(values, 0.95)
        verdict = "ok" if p95 <= TARGET_S else "OVER TARGET"
        print(f"{what:<30} {_pct(values, 0.5):>7.2f} {p95:>7.2f} {max(values):>7.2f}  {verdict}")


if __name__ == "__main__":
    main()
