"""The wall screen: large live figures for one city and a table of all cities.

URL parameters: ``city`` (default astana), ``lang`` (ru, kk, en; default ru). The figures refresh in
place in a fragment every ``DOZOR_REFRESH_SECONDS``; the page itself never reruns, so nothing
flickers. When ClickHouse fails the last good figures stay on screen under a banner that says so.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dozor.cities import CITIES, CITY_IDS, city
from dozor.dashboard import data
from dozor.dashboard.i18n import LANGS, fmt_age, fmt_int, fmt_local_time, fmt_pct, t

CSS = """
<style>
  [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"] {display: none;}
  .block-container {padding-top: 1.2rem; max-width: 100%;}
  [data-testid="stMetricValue"] {font-size: 5.5rem; line-height: 1.05; font-weight: 700;}
  [data-testid="stMetricLabel"] p {font-size: 1.7rem;}
  [data-testid="stMetricDelta"] {font-size: 1.4rem;}
  h1 {font-size: 3.2rem !important;}
  table {font-size: 1.5rem;}
  /* A refreshed fragment must not grey out: that is the flicker wall screens are judged by. */
  [data-stale="true"] {opacity: 1 !important; transition: none !important;}
</style>
"""

settings = data.settings()
params = st.query_params
lang = params.get("lang", "ru")
lang = lang if lang in LANGS else "ru"
focus = params.get("city", "astana")
focus = focus if focus in CITY_IDS else "astana"

st.markdown(CSS, unsafe_allow_html=True)


@st.fragment(run_every=settings.refresh_seconds)
def live() -> None:
    now = dt.datetime.now(dt.UTC)
    tz = settings.display_timezone
    failed = False
    try:
        figures = data.city_figures(tz)
        st.session_state["last_good"] = (figures, now)
    except Exception:  # network, HTTP, server: the screen shows a banner, never a traceback
        failed = True
        figures, at = st.session_state.get("last_good", (None, None))
        if figures is None:
            st.error(t("ch_down_nothing", lang))
            return
        st.error(t("ch_down", lang, at=fmt_local_time(at, tz)))

    c = city(focus)
    st.title(f"{t('title', lang)} · {c.name(lang)} · {t('violations', lang)}")
    newest = max((f.newest for f in figures.values()), default=None)
    if not failed:
        if newest is None:
            st.warning(t("no_data", lang))
        else:
            age = (now - newest).total_seconds()
            if age > settings.stale_after_seconds:
                st.error(t("stale", lang, age=fmt_age(age, lang)))
            else:
                st.caption(
                    f"{t('updated', lang)} {fmt_local_time(newest, tz)} ({fmt_age(max(age, 0), lang)})"
                )

    f = figures.get(focus)
    minute, today, yday = (f.last_minute, f.today, f.yesterday_same_time) if f else (0, 0, 0)
    cols = st.columns(3)
    cols[0].metric(f"{c.name(lang)} · {t('last_minute', lang)}", fmt_int(minute, lang))
    delta = fmt_pct((today - yday) / yday, lang) + " " + t("vs_yesterday", lang) if yday else None
    cols[1].metric(f"{c.name(lang)} · {t('today', lang)}", fmt_int(today, lang), delta, delta_color="inverse")
    cols[2].metric(f"{c.name(lang)} · {t('yesterday', lang)}", fmt_int(yday, lang))

    st.subheader(t("all_cities", lang))
    rows = []
    for cc in sorted(CITIES, key=lambda x: -(figures[x.id].today if x.id in figures else 0)):
        ff = figures.get(cc.id)
        if ff is None:
            continue
        rows.append(
            {
                t("city", lang): cc.name(lang),
                t("last_minute", lang): fmt_int(ff.last_minute, lang),
                t("today", lang): fmt_int(ff.today, lang),
                t("vs_yesterday", lang): fmt_pct(
                    (ff.today - ff.yesterday_same_time) / ff.yesterday_same_time, lang
                )
                if ff.yesterday_same_time
                else "—",
            }
        )
    if rows:
        st.table(pd.DataFrame(rows).set_index(t("city", lang)))


live()
