"""CompStat overview for department heads and the ministry: for the chosen area and date, each
figure this week, previous week and the same week last year, 28 days and year to date against a
year before, the change and whether it is beyond chance; a click on a district drills into it.
Every table downloads as CSV, the page as a PDF briefing; both are recorded in the audit log."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dozor.dashboard import briefing, data, queries, signin, view
from dozor.dashboard.i18n import t
from dozor.dashboard.tables import compstat_tables, csv_bytes

v = view.open_page("compstat", families=(), single_day=True)
day = v.end
rows = queries.compstat(data.client(), v.scope, v.area, day, v.tz)
title = f"{t('compstat', v.lang)}: {view.area_name(v.area, v.lang)}"
st.title(title)
st.caption(t("periods_note", v.lang))
st.caption(t("significance_note", v.lang))
tables = compstat_tables(rows, v.lang)
if not tables:
    st.info(t("no_rows", v.lang))
span = f"{v.detail} day={day}"
for family, table in tables.items():
    st.subheader(t(f"fam_{family}", v.lang))
    st.dataframe(table, hide_index=True, width="stretch", key=f"dozor_cs_{family}")
    st.download_button(
        t("csv", v.lang), csv_bytes(table), file_name=f"compstat_{family}_{v.area.city}_{day}.csv",
        mime="text/csv", key=f"dozor_cs_csv_{family}",
        on_click=signin.audit, args=("export", "compstat", f"csv {family} {span}", len(table), v.scope),
    )  # fmt: skip

# Drill-down: the city's districts, 28 days; picking a row opens that district.
if v.area.district is None:
    start = day - dt.timedelta(days=27)
    c = data.client()
    vio = queries.district_totals(c, v.scope, v.area.city, start, day, "violations", v.tz)
    inc = queries.district_totals(c, v.scope, v.area.city, start, day, "incidents", v.tz)
    districts = sorted((set(vio) | set(inc)) - {""})
    if len(districts) > 1:
        st.subheader(t("drill", v.lang))
        drill = [
            {t("district", v.lang): view.district_name(v.area.city, d, v.lang),
             f"{t('figure_violations', v.lang)} · {t('p_d28', v.lang)}": vio.get(d, 0),
             f"{t('figure_incidents', v.lang)} · {t('p_d28', v.lang)}": inc.get(d, 0)}
            for d in districts
        ]  # fmt: skip

        def _drill() -> None:
            picked = st.session_state["dozor_drill"].selection.rows
            if picked:  # the URL is the view's truth (dashboard/view.py): the district goes there
                st.query_params["district"] = districts[picked[0]]
                st.session_state.pop("district", None)

        st.dataframe(drill, hide_index=True, width="stretch", key="dozor_drill", on_select=_drill,
                     selection_mode="single-row")  # fmt: skip

made = dt.datetime.now(dt.UTC).astimezone()
shown = sum(map(len, tables.values()))
pdf = briefing.briefing_pdf(
    rows, v.lang, view.area_name(v.area, v.lang), day, v.scope.user, made,
    notes=[t("periods_note", v.lang), t("significance_note", v.lang)],
)  # fmt: skip
st.download_button(
    t("pdf", v.lang), pdf, file_name=f"compstat_{v.area.city}_{day}.pdf", mime="application/pdf",
    key="dozor_cs_pdf", type="primary",
    on_click=signin.audit, args=("export", "compstat", f"pdf {span}", shown, v.scope),
)  # fmt: skip
