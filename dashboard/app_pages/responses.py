"""Response times as emergency-call standards report them: percentiles, not averages (NENA:
90 % of calls answered within 15 s; NFPA 1225: 90th percentile). Median, 90th and 95th percentile
of time to assignment, to arrival and to closure, grouped by priority, district, channel,
category, hour of day or weekday; the share within each priority's arrival target; the weekly
90th percentile with the target drawn as a line. The clock's start and stop are stated on the page."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dozor.dashboard import data, queries, view
from dozor.dashboard.i18n import fmt_minutes, label, t, weekday
from dozor.dashboard.queries import RESPONSE_GROUPS

v = view.open_page("responses", families=("incidents",))
st.title(f"{t('responses', v.lang)}: {view.area_name(v.area, v.lang)}")
st.caption(t("clock_note", v.lang))
groups = [g for g in RESPONSE_GROUPS if g != "all"]
by = st.segmented_control(
    t("group_by", v.lang), groups, default=view.url_choice("by", groups, "priority"), key="by",
    on_change=view.to_url("by"),
    format_func=lambda g: t(f"g_{g}", v.lang), required=True,
) or "priority"  # fmt: skip
c = data.client()
stats = queries.response_stats(c, v.scope, v.area, v.start, v.end, by, v.tz, v.filters)


def _key(k: str) -> str:
    if by == "priority":
        return f"P{k}"
    if by == "weekday":
        return weekday(int(k), v.lang)
    if by == "hour":
        return f"{int(k):02d}:00"
    if by == "district":
        return view.district_name(v.area.city, k, v.lang)
    return label(k, v.lang)


if by in ("hour", "weekday"):
    stats.sort(key=lambda r: int(r.key))
mins = t("minutes", v.lang)
table = []
for r in stats:
    # Every call opened in the range, and how many reached each moment: a call nobody was sent to
    # is counted, not left out of a table of arrivals.
    line: dict[str, object] = {
        t(f"g_{by}", v.lang): _key(r.key), t("n_calls", v.lang): r.calls, t("n_assigned", v.lang): r.assigned,
        t("n_arrived", v.lang): r.arrived, t("n_closed", v.lang): r.closed,
    }  # fmt: skip
    for step, values in (("assignment", r.assign_s), ("arrival", r.arrive_s), ("closure", r.close_s)):
        for q, value in zip(("p50", "p90", "p95"), values, strict=True):
            line[f"{t(step, v.lang)} {q}, {mins}"] = fmt_minutes(value, v.lang)
    line[t("within", v.lang)] = "—" if r.within_share is None else f"{r.within_share * 100:.1f}%"
    if by == "priority" and r.target_s is not None:
        line[f"{t('target', v.lang)}, {mins}"] = fmt_minutes(float(r.target_s), v.lang)
    table.append(line)
if not table:
    st.info(t("no_rows", v.lang))
st.dataframe(table, hide_index=True, width="stretch")
v.csv_download(table, f"responses_{by}", f"by={by}", "dozor_resp_csv")

st.subheader(t("weekly_p90", v.lang))
weekly = queries.response_weekly(c, v.scope, v.area, v.start, v.end, v.tz, v.filters)
frame = pd.DataFrame(
    [{"week": w, "priority": f"P{p}", "p90": None if p90 is None else p90 / 60,
      "target": None if target is None else target / 60}
     for w, p, _n, p90, _share, target in weekly]
)  # fmt: skip
if not frame.empty:
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("week:T", title=None), y=alt.Y("p90:Q", title=mins),
        color=alt.Color("priority:N", title=None), tooltip=["week:T", "priority:N", "p90:Q"],
    )  # fmt: skip
    targets = alt.Chart(frame).mark_rule(strokeDash=[6, 4]).encode(
        y="target:Q", color=alt.Color("priority:N", title=None), tooltip=["priority:N", "target:Q"],
    )  # fmt: skip
    st.altair_chart(lines + targets, width="stretch")

# 102's answering: the first minutes of every response, before an incident exists (issue #27).
st.subheader(t("answering_102", v.lang))
st.caption(t("answering_note", v.lang))
answering = queries.call_answering(
    c, v.scope, v.area.city, v.start, v.end, "hour_of_day", v.tz, v.area.district
)
answering.sort(key=lambda r: int(r.key))
secs = t("seconds", v.lang)
calls_table = []
for r in answering:
    line = {
        t("g_hour", v.lang): f"{int(r.key):02d}:00", t("col_offered", v.lang): r.offered,
        t("col_answered", v.lang): r.answered, t("col_abandoned", v.lang): r.abandoned,
    }  # fmt: skip
    for q, value in zip(("p50", "p90", "p95"), r.answer_s, strict=True):
        line[f"{t('col_answer', v.lang)} {q}, {secs}"] = None if value is None else round(value, 1)
    for s in queries.ANSWER_WITHIN_S:
        share = r.within_share(s)
        line[t("col_within_s", v.lang, s=s)] = None if share is None else round(share * 100, 1)
    calls_table.append(line)
if calls_table:
    st.dataframe(calls_table, hide_index=True, width="stretch")
    v.csv_download(calls_table, "answering_102", "calls by=hour_of_day", "dozor_calls_csv")
    daily = queries.call_answering(c, v.scope, v.area.city, v.start, v.end, "day", v.tz, v.area.district)
    shares = pd.DataFrame(
        [{"day": r.key, "within": f"≤ {s} s", "share": r.within_share(s) * 100}
         for r in daily for s in queries.ANSWER_WITHIN_S if r.answered]
    )  # fmt: skip
    goals = pd.DataFrame([{"within": f"≤ {s} s", "goal": share * 100, "standard": name}
                          for name, s, share in queries.STANDARDS])  # fmt: skip
    st.markdown(f"**{t('daily_within', v.lang)}**")
    if not shares.empty:
        line_chart = alt.Chart(shares).mark_line(point=True).encode(
            x=alt.X("day:T", title=None), y=alt.Y("share:Q", title="%", scale=alt.Scale(zero=False)),
            color=alt.Color("within:N", title=None), tooltip=["day:T", "within:N", "share:Q"],
        )  # fmt: skip
        goal_rules = alt.Chart(goals).mark_rule(strokeDash=[6, 4]).encode(
            y="goal:Q", color=alt.Color("within:N", title=None), tooltip=["standard:N", "within:N", "goal:Q"],
        )  # fmt: skip
        st.altair_chart(line_chart + goal_rules, width="stretch")
else:
    st.info(t("no_rows", v.lang))
