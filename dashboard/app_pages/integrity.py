"""Integrity reports by region and month, for the integrity unit and the ministry's analysts only.

Aggregates only (the reports themselves are stored by day, with no personal data). The month range
is in the URL (``?from=2026-01&to=2026-11``), so a view is a link a colleague can open — and it
still obeys their role. Regions, kinds and services are named in the page's language, in the table
and in its CSV alike (the CSV is the table on the screen). Every view, range change and export is
in the audit log.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dozor import localtime
from dozor.access import Scope
from dozor.dashboard import data, queries, signin, view
from dozor.dashboard.i18n import label, t
from dozor.dashboard.tables import csv_bytes

scope, lang = view.open_plain_page("integrity", Scope.require_integrity, "refused_integrity")


def _month(text: str | None, default: dt.date) -> dt.date:
    try:
        y, m = (int(x) for x in (text or "").split("-"))
        return dt.date(y, m, 1)
    except ValueError:
        return default


today = dt.datetime.now(localtime.zone(localtime.DEFAULT_ZONE)).date().replace(day=1)
params = st.query_params
start = _month(params.get("from"), dt.date(today.year, 1, 1))
end = _month(params.get("to"), today)
st.title(t("integrity_title", lang))
# Three years back and this year, as the 3-year baseline of crime statistics asks.
months = sorted(d for y in range(4) for m in range(1, 13) if (d := dt.date(today.year - y, m, 1)) <= today)
chosen = st.select_slider(
    t("months", lang), options=months,
    value=(min(max(start, months[0]), today), min(max(end, months[0]), today)),
    format_func=lambda d: d.strftime("%Y-%m"), key="dozor_integrity_range",
)  # fmt: skip
if (chosen[0], chosen[1]) != (start, end):
    params["from"], params["to"] = chosen[0].strftime("%Y-%m"), chosen[1].strftime("%Y-%m")
    signin.audit("filter", "integrity", f"from={params['from']} to={params['to']}", scope=scope)
    start, end = chosen
rows = queries.integrity_by_month(data.client(), scope, start, end)
key = ("integrity", start, end)
if st.session_state.get("dozor_viewed") != key:
    st.session_state["dozor_viewed"] = key
    signin.audit("view", "integrity", f"from={start:%Y-%m} to={end:%Y-%m}", rows=len(rows), scope=scope)
last_day = dt.date(end.year + end.month // 12, end.month % 12 + 1, 1) - dt.timedelta(days=1)
simulated = queries.simulated_days(data.client(), start, last_day)
if simulated:
    st.caption(t("simulated", lang, lo=simulated[0], hi=simulated[1]))
table = [
    {t("col_region", lang): label(r.region, lang), t("col_month", lang): r.month.strftime("%Y-%m"),
     t("col_kind", lang): label(r.kind, lang), t("col_service", lang): label(r.service, lang),
     t("col_reports", lang): r.reports}
    for r in rows
]  # fmt: skip
st.metric(t("reports_in_range", lang), sum(r.reports for r in rows))
if table:
    st.dataframe(table, hide_index=True, width="stretch")
else:
    st.info(t("no_rows", lang))
span = f"from={start:%Y-%m} to={end:%Y-%m}"
st.download_button(
    t("csv", lang), csv_bytes(table), file_name=f"integrity_{start:%Y-%m}_{end:%Y-%m}.csv",
    mime="text/csv", key="dozor_integrity_csv",
    on_click=signin.audit, args=("export", "integrity", f"csv {span}", len(rows), scope),
)  # fmt: skip
