"""Trends: a figure's daily or weekly series over any range beside the same days a year before
(364 days back: the same weekdays), the weekday × hour heat map, and a map of the city's districts
coloured by the figure (district heads see their own districts only)."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import pydeck as pdk
import streamlit as st

from dozor.dashboard import data, queries, view
from dozor.dashboard.i18n import t, weekday
from dozor.geo import district_map

FIGURES = ["violations", "incidents"]
STEPS = ["daily", "weekly"]

v = view.open_page("trends")
st.title(f"{t('trends', v.lang)}: {view.area_name(v.area, v.lang)}")
cols = st.columns(2)
with cols[0]:
    figure = st.segmented_control(
        t("figure", v.lang), FIGURES, default=view.url_choice("figure", FIGURES, "violations"), key="figure",
        on_change=view.to_url("figure"), format_func=lambda f: t(f"figure_{f}", v.lang), required=True,
    )  # fmt: skip
with cols[1]:
    step = st.segmented_control(
        " ", STEPS, default=view.url_choice("step", STEPS, "daily"), key="step",
        on_change=view.to_url("step"),
        format_func=lambda s: t(s, v.lang), required=True,
    )  # fmt: skip
figure = figure or "violations"
c = data.client()
series = queries.daily_series(c, v.scope, v.area, v.start, v.end, figure, v.tz, v.filters)
now_label, before_label = t("this_period", v.lang), t("year_before", v.lang)
series_names = [now_label, before_label]
rows = [{"day": d, now_label: n, before_label: b} for d, n, b in series]
if step == "weekly":
    weeks: dict[dt.date, dict[str, object]] = {}
    for r in rows:
        monday = r["day"] - dt.timedelta(days=r["day"].weekday())  # type: ignore[operator]
        w = weeks.setdefault(monday, {"day": monday, now_label: 0, before_label: 0})
        w[now_label] += r[now_label]  # type: ignore[operator]
        w[before_label] += r[before_label]  # type: ignore[operator]
    rows = list(weeks.values())
frame = pd.DataFrame(rows)
if not frame.empty:
    long = frame.melt("day", var_name="series", value_name="n")
    chart = (
        alt.Chart(long)
        .mark_line(point=len(rows) <= 60)
        .encode(
            x=alt.X("yearmonthdate(day):T", title=None, axis=alt.Axis(format="%d.%m", labelAngle=0)),
            y=alt.Y("n:Q", title=t(f"figure_{figure}", v.lang)),
            color=alt.Color(
                "series:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(domain=series_names, range=["#e8553e", "#8c8c8c"]),
            ),
            strokeDash=alt.StrokeDash(
                "series:N", legend=None, scale=alt.Scale(domain=series_names, range=[[1, 0], [5, 4]])
            ),
            tooltip=[alt.Tooltip("yearmonthdate(day):T", title=None), "series:N", "n:Q"],
        )
    )
    st.altair_chart(chart, width="stretch")
table = [{**r, "day": r["day"].isoformat()} for r in rows]  # type: ignore[union-attr]
v.csv_download(table, f"trend_{figure}", figure, "dozor_trend_csv")

st.subheader(t("heatmap", v.lang))
cells = queries.heatmap(c, v.scope, v.area, v.start, v.end, figure, v.tz, v.filters)
heat = pd.DataFrame(
    [{"weekday": weekday(w, v.lang), "wd": w, "hour": h, "n": cells.get((w, h), 0)}
     for w in range(1, 8) for h in range(24)]
)  # fmt: skip
order = [weekday(w, v.lang) for w in range(1, 8)]
st.altair_chart(
    alt.Chart(heat)
    .mark_rect()
    .encode(
        x=alt.X("hour:O", title=t("g_hour", v.lang)),
        y=alt.Y("weekday:N", sort=order, title=None),
        color=alt.Color("n:Q", title=t(f"figure_{figure}", v.lang), scale=alt.Scale(scheme="orangered")),
        tooltip=["weekday:N", "hour:O", "n:Q"],
    ),
    width="stretch",
)

st.subheader(t("by_district", v.lang))
totals = queries.district_totals(c, v.scope, v.area.city, v.start, v.end, figure, v.tz, v.filters)
dmap = district_map()
features = []
top = max(totals.values(), default=0) or 1
for district, n in sorted(totals.items()):
    if not district:
        continue
    try:
        geom = dmap.geometry(v.area.city, district)
    except KeyError:
        continue
    shade = int(40 + 200 * n / top)
    name = view.district_name(v.area.city, district, v.lang)
    features.append({"type": "Feature", "geometry": geom.__geo_interface__,
                     "properties": {"name": name, "n": n, "fill": [220, 60, 30, shade]}})  # fmt: skip
if features:
    centre = dmap.geometry(v.area.city, next(iter(sorted(d for d in totals if d)))).centroid
    st.pydeck_chart(
        pdk.Deck(
            layers=[
                pdk.Layer(
                    "GeoJsonLayer",
                    {"type": "FeatureCollection", "features": features},
                    pickable=True,
                    stroked=True,
                    filled=True,
                    get_fill_color="properties.fill",
                    get_line_color=[40, 40, 40],
                    line_width_min_pixels=1,
                )
            ],
            initial_view_state=pdk.ViewState(latitude=centre.y, longitude=centre.x, zoom=10),
            tooltip={"text": "{name}: {n}"},
            map_style=None,
        )  # fmt: skip
    )
district_rows = [
    {t("district", v.lang): view.district_name(v.area.city, d, v.lang),
     t(f"figure_{figure}", v.lang): n}
    for d, n in sorted(totals.items(), key=lambda kv: -kv[1])
]  # fmt: skip
st.dataframe(district_rows, hide_index=True, width="stretch")
