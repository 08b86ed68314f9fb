"""CompStat overview for department heads and the ministry: for the chosen area and date, each
figure this week, previous week and the same week last year, 28 days and year to date against a
year before, the change and whether it is beyond chance; a click on a district drills into it.
Every table downloads as CSV, the page as a PDF briefing; both are recorded in the audit log."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import streamlit as st

from dozor.dashboard import briefing, data, queries, signin, view
from dozor.dashboard.i18n import t
from dozor.dashboard.tables import COMPARISONS, compstat_tables, csv_bytes


def _columns(table: list[dict[str, object]]) -> dict[str, object]:
    """Counts with the reader's thousands separator, changes as '+12.5%' (the cells stay numbers,
    so a column sorts as numbers and the CSV holds numbers)."""
    changes = {t(c, v.lang) for c, _, _ in COMPARISONS}
    config: dict[str, object] = {}
    for name in table[0] if table else ():
        if name in changes:
            config[name] = st.column_config.NumberColumn(name, format="%+.1f%%")
        elif isinstance(table[0][name], int):
            config[name] = st.column_config.NumberColumn(name, format="localized")
    return config


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
    st.dataframe(
        table, hide_index=True, width="stretch", key=f"dozor_cs_{family}", column_config=_columns(table)
    )
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
                     selection_mode="single-row", column_config=_columns(drill))  # fmt: skip

made = dt.datetime.now(ZoneInfo(v.tz))  # the city's time, as the page's days
shown = sum(map(len, tables.values()))
# The briefing compares with a year before: simulated days anywhere in that span mark it.
simulated = queries.simulated_days(data.client(), day - dt.timedelta(days=2 * 366), day)
pdf = briefing.briefing_pdf(
    rows, v.lang, view.area_name(v.area, v.lang), day, v.scope.user, made,
    notes=[t("periods_note", v.lang), t("significance_note", v.lang)],
    warning=t("briefing_simulated", v.lang, lo=simulated[0], hi=simulated[1]) if simulated else "",
)  # fmt: skip
st.download_button(
    t("pdf", v.lang), pdf, file_name=f"compstat_{v.area.city}_{day}.pdf", mime="application/pdf",
    key="dozor_cs_pdf", type="primary",
    on_click=signin.audit, args=("export", "compstat", f"pdf {span}", shown, v.scope),
)  # fmt: skip
