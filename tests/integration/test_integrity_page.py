"""The integrity page under AppTest, on the real engine: its counts equal the rows the test wrote,
and only the integrity and ministry roles see it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dozor.access import Scope
from dozor.clickhouse import connect
from dozor.infra.migrate import migrate
from tests.helpers.apptest import page_as

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "dashboard" / "app_pages" / "integrity.py"
KZ = dt.timezone(dt.timedelta(hours=5))
ANALYST = Scope("analyst@mvd.kz", "ministry_analyst", None, integrity=True)
ASTANA_HEAD = Scope("astana.head@police.kz", "city_head", frozenset({"astana"}))


def _page(settings, monkeypatch, scope: Scope, **params: str) -> AppTest:  # noqa: ANN001
    return page_as(settings, monkeypatch, scope, PAGE, **params)


def _reports(settings) -> Counter:
    """Reports this year, stored as the worker stores them (by Kazakhstan day); the truth by
    (region, month) is counted here from the same list."""
    migrate(settings)
    year = dt.datetime.now(KZ).year - 1  # last year: always in the past, inside the page's range
    rows, truth = [], Counter()
    for i, (region, month, day) in enumerate(
        [("astana", 1, 3)] * 4 + [("almaty", 1, 31)] * 2 + [("astana", 2, 1)] * 5
    ):
        # 00:00 local on the day: the first of a month must count in that month, not the one before.
        t = dt.datetime(year, month, day, tzinfo=KZ).astimezone(dt.UTC)
        rows.append([uuid.uuid4(), t, region, "bribe_attempt_reported", "patrol", 0, i])
        truth[(region, f"{year}-{month:02d}")] += 1
    connect(settings).insert(
        "integrity_reports", rows,
        column_names=["event_id", "event_time", "region", "kind", "service", "src_partition", "src_offset"],
    )  # fmt: skip
    return truth


def test_counts_by_region_and_month_equal_the_rows(settings_factory, monkeypatch):
    settings = settings_factory()
    truth = _reports(settings)
    year = dt.datetime.now(KZ).year - 1  # last year: always in the past, inside the page's range
    at = _page(settings, monkeypatch, ANALYST, lang="en", **{"from": f"{year}-01", "to": f"{year}-02"})
    at.run()
    assert not at.exception, at.exception
    shown = Counter()
    for row in at.dataframe[0].value.to_dict("records"):
        # Named for a reader, never as ids (bribe_attempt_reported, aktobe-region).
        assert (row["kind"], row["service"]) == ("bribe attempt reported", "patrol")
        shown[(row["region"], row["month"])] += row["reports"]
    names = {"astana": "Astana", "almaty": "Almaty"}
    assert shown == Counter({(names[region], month): n for (region, month), n in truth.items()})
    assert at.metric[0].value == str(sum(truth.values()))
    views = (
        connect(settings)
        .query("SELECT user, action, rows FROM audit_log WHERE page = 'integrity'")
        .result_rows
    )
    assert views == [("analyst@mvd.kz", "view", len(truth))]  # one table row per region and month


def test_a_city_head_is_refused_and_the_refusal_recorded(settings_factory, monkeypatch):
    settings = settings_factory()
    _reports(settings)
    at = _page(settings, monkeypatch, ASTANA_HEAD, lang="en")
    at.run()
    assert not at.exception
    assert "Access refused" in at.error[0].value
    assert not at.dataframe
    refused = (
        connect(settings).query("SELECT user, action FROM audit_log WHERE page = 'integrity'").result_rows
    )
    assert refused == [("astana.head@police.kz", "refused")]


AUDIT_PAGE = PAGE.with_name("audit.py")


def test_the_audit_log_is_readable_by_the_ministry_only(settings_factory, monkeypatch):
    settings = settings_factory()
    migrate(settings)
    connect(settings).insert(
        "audit_log", [["astana.head@police.kz", "city_head", "refused", "wall", "city=almaty", 0, ""]],
        column_names=["user", "role", "action", "page", "detail", "rows", "address"],
    )  # fmt: skip
    analyst = Scope("analyst@mvd.kz", "ministry_analyst", None, integrity=True, audit=True)
    for scope, sees in ((analyst, True), (ASTANA_HEAD, False)):
        at = page_as(settings, monkeypatch, scope, AUDIT_PAGE, action="refused", lang="en")
        at.run()
        assert not at.exception, at.exception
        if sees:
            shown = at.dataframe[0].value.to_dict("records")
            assert [(r["user"], r["detail"]) for r in shown] == [("astana.head@police.kz", "city=almaty")]
        else:
            assert "Access refused" in at.error[0].value and not at.dataframe
