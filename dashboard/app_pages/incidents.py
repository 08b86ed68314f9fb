"""The incidents of an area and time range, sortable and paged: id, category, channel, priority,
district, opened, first arrival, closure, status — never a caller, an address or an officer.
The page's rows download as CSV (exactly the rows shown), recorded in the audit log."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import streamlit as st

from dozor.dashboard import data, queries, view
from dozor.dashboard.i18n import label, t
from dozor.dashboard.queries import INCIDENT_SORT

PAGE_SIZE = 50

v = view.open_page("incidents", families=("incidents",))
st.title(f"{t('incidents', v.lang)}: {view.area_name(v.area, v.lang)}")
cols = st.columns([2, 1, 1])
sorts = list(INCIDENT_SORT)
heading = {"opened_at": "col_opened", "first_arrival": "col_arrival", "closed_at": "col_closed"}
with cols[0]:
    sort = st.selectbox(t("sort_by", v.lang), sorts, key="sort", on_change=view.to_url("sort"),
                        index=sorts.index(view.url_choice("sort", sorts, "opened_at")),
                        format_func=lambda s: t(heading.get(s, f"col_{s}"), v.lang))  # fmt: skip
with cols[1]:
    descending = st.checkbox(t("descending", v.lang), value=st.query_params.get("desc", "1") == "1",
                             key="desc", on_change=view.to_url("desc"))  # fmt: skip
c = data.client()
first, total = queries.incident_list(c, v.scope, v.area, v.start, v.end, v.tz, v.filters, sort, descending,
                                     limit=1, offset=0)  # fmt: skip
pages = max(1, math.ceil(total / PAGE_SIZE))
with cols[2]:
    page = st.number_input(t("page", v.lang), min_value=1, max_value=pages, step=1, key="page",
                           value=view.url_int("page", 1, 1, pages),
                           on_change=view.to_url("page"))  # fmt: skip
    st.caption(t("of_total", v.lang, n=f"{pages} · {total}"))
rows, total = queries.incident_list(
    c, v.scope, v.area, v.start, v.end, v.tz, v.filters, sort, descending,
    limit=PAGE_SIZE, offset=(int(page) - 1) * PAGE_SIZE,
)  # fmt: skip
zone = ZoneInfo(v.tz)


def _local(x: dt.datetime | None) -> str:
    return "" if x is None else x.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


table = [
    {t("col_id", v.lang): r.incident_id, t("col_category", v.lang): label(r.category, v.lang),
     t("col_channel", v.lang): label(r.channel, v.lang), t("col_priority", v.lang): r.priority,
     t("col_district", v.lang): view.district_name(v.area.city, r.district, v.lang),
     t("col_opened", v.lang): _local(r.opened_at), t("col_arrival", v.lang): _local(r.first_arrival),
     t("col_closed", v.lang): _local(r.closed_at), t("col_status", v.lang): label(r.status, v.lang),
     t("col_source_code", v.lang): r.source_code, t("col_source_area", v.lang): r.source_area}
    for r in rows
]  # fmt: skip
if not table:
    st.info(t("no_rows", v.lang))
st.dataframe(table, hide_index=True, width="stretch")
v.csv_download(table, f"incidents_p{int(page)}", f"page={int(page)} sort={sort}", "dozor_inc_csv")
