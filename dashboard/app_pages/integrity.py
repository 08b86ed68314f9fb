"""Integrity reports by region and month, for the integrity unit and the ministry's analysts only.

Aggregates only (the reports themselves are stored by day, with no personal data). The month range
is in the URL (``?from=2026-01&to=2026-11``), so a view is a link a colleague can open — and it
still obeys their role. Every view, range change and export is in the audit log.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dozor import localtime
from dozor.access import Scope
from dozor.dashboard import data, queries, signin
from dozor.dashboard.tables import csv_bytes

scope = signin.manager_scope(
    "integrity",
    Scope.require_integrity,
    "Access refused: integrity reports are for the integrity unit and the ministry.",
)


def _month(text: str | None, default: dt.date) -> dt.date:
    try:
        y, m = (int(x) for x in (text or "").split("-"))
        return dt.date(y, m, 1)
    except ValueError:
        return default


today = dt.datetime.now(localtime.zone("astana")).date().replace(day=1)
params = st.query_params
start = _month(params.get("from"), dt.date(today.year, 1, 1))
end = _month(params.get("to"), today)
st.title("Integrity reports by region and month")
# Three years back and this year, as the 3-year baseline of crime statistics asks.
months = sorted(d for y in range(4) for m in range(1, 13) if (d := dt.date(today.year - y, m, 1)) <= today)
chosen = st.select_slider(
    "Months", options=months, value=(min(max(start, months[0]), today), min(max(end, months[0]), today)),
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
table = [
    {"region": r.region, "month": r.month.strftime("%Y-%m"), "kind": r.kind, "service": r.service,
     "reports": r.reports}
    for r in rows
]  # fmt: skip
st.metric("Reports in the range", sum(r.reports for r in rows))
st.dataframe(table, hide_index=True, width="stretch")
span = f"from={start:%Y-%m} to={end:%Y-%m}"
st.download_button(
    "Download CSV", csv_bytes(table), file_name=f"integrity_{start:%Y-%m}_{end:%Y-%m}.csv",
    mime="text/csv", key="dozor_integrity_csv",
    on_click=signin.audit, args=("export", "integrity", f"csv {span}", len(rows), scope),
)  # fmt: skip
