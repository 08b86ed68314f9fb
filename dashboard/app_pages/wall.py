"""The wall screen: a control centre's live picture, legible across a room, honest about freshness.

URL parameters (no widgets: a wall screen has no keyboard):

- ``city``: the focused city (default ``astana``);
- ``lang``: ``ru`` (default), ``kk`` or ``en``;
- ``rotate``: cycle the focused city through the busiest cities every N seconds (N ≥ 5).

Everything below the title lives in one fragment that reruns every ``DOZOR_REFRESH_SECONDS``; the
page itself never reruns, and CSS keeps a rerunning fragment from greying out, so nothing flickers.
The header says how old the newest event is and turns red when it is older than
``DOZOR_STALE_AFTER_SECONDS``. When ClickHouse fails, the last good figures stay on screen under a
banner with their time. Only aggregates are read (``dozor.dashboard.queries``): never a plate or an
officer.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from functools import cache

import pydeck as pdk
import streamlit as st

from dozor.cities import CITIES, CITY_IDS, city, resolve_district
from dozor.dashboard import data, signin
from dozor.dashboard.i18n import (
    LANGS,
    fmt_age,
    fmt_change,
    fmt_int,
    fmt_local_time,
    fmt_minutes,
    fmt_pct,
    t,
)
from dozor.dashboard.queries import AlertRow, CityRow
from dozor.dashboard.screen import focus_city, response_status
from dozor.geo import DISTRICTS_FILE

CSS = """
<style>
  [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
  [data-testid="stSidebarCollapsedControl"] {display: none;}
  .block-container {padding: 0.6rem 1.2rem 0 1.2rem; max-width: 100%;}
  [data-testid="stMetricValue"] {font-size: 3.6rem; line-height: 1.05; font-weight: 700;}
  [data-testid="stMetricLabel"] p {font-size: 1.35rem;}
  [data-testid="stMetricDelta"] {font-size: 1.25rem;}
  /* A refreshed fragment must not grey out: that is the flicker wall screens are judged by. */
  [data-stale="true"], .stale-element {opacity: 1 !important; transition: none !important;}
  .dz-head {display: flex; justify-content: space-between; align-items: baseline;}
  .dz-title {font-size: 2.3rem; font-weight: 700;}
  .dz-clock {font-size: 2.2rem; font-variant-numeric: tabular-nums;}
  .dz-fresh {font-size: 1.4rem; padding: 0.1rem 0.8rem; border-radius: 0.4rem; background: #14532d;}
  .dz-fresh.late {background: #b91c1c;}
  .dz-stale {font-size: 2rem; font-weight: 700; padding: 0.4rem 1rem; border-radius: 0.4rem;
             background: #b91c1c; color: white; margin: 0.3rem 0;}
  .dz-down {font-size: 1.6rem; font-weight: 700; padding: 0.4rem 1rem; border-radius: 0.4rem;
            background: #92400e; color: white; margin: 0.3rem 0;}
  table.dz {width: 100%; border-collapse: collapse; font-size: 1.15rem; font-variant-numeric: tabular-nums;}
  table.dz th {text-align: right; font-weight: 600; color: #9ca3af; border-bottom: 1px solid #374151;
               padding: 0.15rem 0.5rem;}
  table.dz.dz-overview {font-size: 1.05rem;}
  table.dz td {white-space: nowrap; text-align: right; padding: 0.05rem 0.5rem;
               border-bottom: 1px solid #1f2937;}
  table.dz th:first-child, table.dz td:first-child {text-align: left;}
  table.dz tr.focus td {background: #1e3a8a;}
  .ok {color: #4ade80;} .warn {color: #fbbf24;} .bad {color: #f87171;} .none {color: #6b7280;}
  .dz-ticker {font-size: 1.2rem; line-height: 1.5;}
  .dz-h2 {font-size: 1.5rem; font-weight: 600; color: #d1d5db; margin: 0.4rem 0 0.2rem 0;}
</style>
"""

settings = data.settings()
params = st.query_params
lang = params.get("lang", "ru")
lang = lang if lang in LANGS else "ru"
scope = signin.current_scope("wall", kiosk_ok=True)
if scope is None:
    signin.require_sign_in("wall")
visible = scope.visible_cities()
asked = params.get("city")
if asked is not None and asked in CITY_IDS and not scope.covers_city(asked):
    # An edited or shared link outside this user's scope: refused, and recorded.
    signin.audit("refused", "wall", f"city={asked}", scope=scope)
    st.error(t("refused_city", lang, city=city(asked).name(lang)))
    st.stop()
chosen = asked if asked in visible else (visible[0] if visible else None)
if chosen is None:
    st.error(t("refused_city", lang, city="—"))
    st.stop()
if st.session_state.get("dozor_viewed") != (chosen, lang):
    st.session_state["dozor_viewed"] = (chosen, lang)
    signin.audit("view", "wall", f"city={chosen} lang={lang}", scope=scope)
try:
    rotate_s = max(int(params.get("rotate", "0")), 0)
except ValueError:
    rotate_s = 0
rotate_s = max(rotate_s, 5) if rotate_s else 0
TZ = settings.display_timezone

st.markdown(CSS, unsafe_allow_html=True)


@cache
def _district_shapes(city_id: str) -> list[dict]:
    features = json.loads(DISTRICTS_FILE.read_text())["features"]
    return [f for f in features if f["properties"]["city"] == city_id]


def _district_name(city_id: str, district: str) -> str:
    if not district:
        return t("no_district", lang)
    d = resolve_district(city_id, district)
    return next((x.name(lang) for x in city(city_id).districts if x.id == d), district)


def _alert_text(a: AlertRow) -> str:
    place = city(a.city).name(lang) + (f", {_district_name(a.city, a.district)}" if a.district else "")
    if a.kind == "incident_waiting":
        body = t("alert_incident_waiting", lang, priority=a.priority, minutes=int((a.waited_s or 0) // 60))
    else:
        baseline = fmt_minutes((a.baseline or 0) * 60, lang)
        body = t(f"alert_{a.kind}", lang, observed=fmt_int(a.observed or 0, lang), baseline=baseline)
    return f"{fmt_local_time(a.event_time, TZ)[:5]} · {html.escape(place)} · {html.escape(body)}"


def _tiles(name: str, r: CityRow) -> None:
    cols = st.columns([1, 1, 1.2, 1, 1.3, 1.3])
    cols[0].metric(
        f"{name} · {t('last_minute', lang)}", fmt_int(r.minute, lang),
        fmt_change(r.minute, r.minute_yesterday, lang), delta_color="inverse",
    )  # fmt: skip
    cols[1].metric(
        f"{name} · {t('last_hour', lang)}", fmt_int(r.hour, lang),
        fmt_change(r.hour, r.hour_yesterday, lang), delta_color="inverse",
    )  # fmt: skip
    cols[2].metric(
        f"{name} · {t('today', lang)}", fmt_int(r.today, lang),
        fmt_change(r.today, r.today_yesterday, lang), delta_color="inverse",
    )  # fmt: skip
    cols[3].metric(t("incidents_open", lang), fmt_int(r.incidents_open, lang))
    units = " · ".join(fmt_int(r.units.get(k, 0), lang) for k in ("en_route", "on_scene", "free"))
    cols[4].metric(t("units", lang), units)
    response = f"{fmt_minutes(r.response_p50_s, lang)} / {fmt_minutes(r.response_p90_s, lang)}"
    within = (
        None
        if r.within_target is None
        else f"{fmt_pct(r.within_target, lang).lstrip('+')} {t('within_target', lang)}"
    )
    cols[5].metric(t("response", lang), response, within, delta_color="off", delta_arrow="off")


def _overview_tables(rows: dict[str, CityRow], focus: str) -> None:
    """Every city, busiest first, in two tables side by side: seventeen rows fit a 1080p screen."""
    ranked = [
        c for c in sorted(CITIES, key=lambda c: -(rows[c.id].today if c.id in rows else 0)) if c.id in rows
    ]
    half = (len(ranked) + 1) // 2
    for col, part in zip(st.columns(2), (ranked[:half], ranked[half:]), strict=True):
        col.markdown(_overview_table(rows, part, focus), unsafe_allow_html=True)


def _overview_table(rows: dict[str, CityRow], cities: list, focus: str) -> str:
    keys = (
        "city",
        "col_minute",
        "col_hour",
        "today",
        "vs_yesterday",
        "open_now",
        "units_short",
        "col_response",
    )
    head = [t(k, lang) for k in keys]
    out = [
        "<table class='dz dz-overview'><thead><tr>",
        *(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    for c in cities:
        r = rows[c.id]
        change = fmt_change(r.today, r.today_yesterday, lang) or "—"
        units = " · ".join(fmt_int(r.units.get(k, 0), lang) for k in ("en_route", "on_scene", "free"))
        resp = f"{fmt_minutes(r.response_p50_s, lang)} / {fmt_minutes(r.response_p90_s, lang)}"
        cells = [c.name(lang), fmt_int(r.minute, lang), fmt_int(r.hour, lang), fmt_int(r.today, lang), change,
                 fmt_int(r.incidents_open, lang), units]  # fmt: skip
        cls = " class='focus'" if c.id == focus else ""
        out.append(f"<tr{cls} data-city='{c.id}'>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells))
        out.append(f"<td class='{response_status(r.within_target)}'>{html.escape(resp)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _districts_table(snapshot: data.Snapshot, focus: str) -> str:
    head = [t("district", lang), t("last_hour", lang), t("today", lang), t("incidents_today", lang),
            t("open_now", lang), t("response", lang).split(":")[0]]  # fmt: skip
    out = [
        "<table class='dz' id='dz-districts'><thead><tr>",
        *(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    for d in snapshot.districts:
        cells = [_district_name(focus, d.district), fmt_int(d.hour, lang), fmt_int(d.today, lang),
                 fmt_int(d.incidents_today, lang), fmt_int(d.incidents_open, lang),
                 fmt_minutes(d.response_p50_s, lang)]  # fmt: skip
        out.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _dots(points: list[dict], colour: list[int], radius_m: int, min_px: int) -> pdk.Layer:
    return pdk.Layer("ScatterplotLayer", points, get_position="[lon, lat]", get_fill_color=colour,
                     get_radius=radius_m, radius_min_pixels=min_px)  # fmt: skip


def _map(snapshot: data.Snapshot, focus: str) -> pdk.Deck:
    c = city(focus)
    violations = [{"lon": p.lon, "lat": p.lat} for p in snapshot.points if p.kind == "violation"]
    incidents = [{"lon": p.lon, "lat": p.lat} for p in snapshot.points if p.kind == "incident"]
    layers = [
        pdk.Layer(
            "GeoJsonLayer",
            {"type": "FeatureCollection", "features": _district_shapes(focus)},
            stroked=True,
            filled=True,
            get_fill_color=[30, 58, 138, 40],
            get_line_color=[148, 163, 184],
            line_width_min_pixels=1,
        ),  # fmt: skip
        _dots(violations, [251, 191, 36, 160], radius_m=40, min_px=2),
        _dots(incidents, [248, 113, 113, 230], radius_m=120, min_px=5),
    ]
    view = pdk.ViewState(latitude=c.lat, longitude=c.lon, zoom=10.2)
    # No base map: the control-centre network has no tile server; district outlines give the shape.
    return pdk.Deck(layers=layers, initial_view_state=view, map_style=None)


@st.fragment(run_every=settings.refresh_seconds)
def live() -> None:
    now = dt.datetime.now(dt.UTC)
    failed_at = None
    try:
        snap = data.snapshot(chosen, TZ, scope)
        st.session_state["last_good"] = snap
    except Exception:  # network, HTTP, server: a banner and the last good figures, never a traceback
        snap = st.session_state.get("last_good")
        failed_at = snap.read_at if snap else now
    if rotate_s:
        focus = focus_city(now, snap.overview if snap else {}, chosen, rotate_s)
        if snap is not None and focus != chosen and failed_at is None:
            # The rotated city's read can fail too: the same banner and last good figures, never a
            # traceback on a wall screen.
            try:
                snap = data.snapshot(focus, TZ, scope)
                st.session_state["last_good"] = snap
            except Exception:
                failed_at, focus = snap.read_at, chosen
    else:
        focus = chosen
    name = city(focus).name(lang)

    fresh = ""
    if snap is not None and snap.newest is not None and failed_at is None:
        age = max((now - snap.newest).total_seconds(), 0)
        stamp = f"{t('updated', lang)} {fmt_local_time(snap.newest, TZ)} ({fmt_age(age, lang)})"
        late = age > settings.stale_after_seconds
        fresh = f"<span class='dz-fresh{' late' if late else ''}' id='dz-fresh'>{stamp}</span>"
    st.markdown(
        f"<div class='dz-head'><span class='dz-title'>{t('title', lang)} · {html.escape(name)}</span>"
        f"{fresh}<span class='dz-clock'>{fmt_local_time(now, TZ)[:5]}</span></div>",
        unsafe_allow_html=True,
    )
    if failed_at is not None:
        text = t("ch_down", lang, at=fmt_local_time(failed_at, TZ)) if snap else t("ch_down_nothing", lang)
        st.markdown(f"<div class='dz-down' id='dz-down'>{html.escape(text)}</div>", unsafe_allow_html=True)
        if snap is None:
            return
    elif snap.newest is None:
        st.markdown(f"<div class='dz-stale' id='dz-stale'>{t('no_data', lang)}</div>", unsafe_allow_html=True)
    elif (now - snap.newest).total_seconds() > settings.stale_after_seconds:
        age = fmt_age((now - snap.newest).total_seconds(), lang)
        st.markdown(f"<div class='dz-stale' id='dz-stale'>{html.escape(t('stale', lang, age=age))}</div>",
                    unsafe_allow_html=True)  # fmt: skip

    _tiles(name, snap.overview.get(focus, CityRow(focus)))
    left, right = st.columns([1.35, 1])
    with left:
        st.markdown(_districts_table(snap, focus), unsafe_allow_html=True)
        st.markdown(f"<div class='dz-h2'>{t('alerts', lang)}</div>", unsafe_allow_html=True)
        ticker = "<br>".join(_alert_text(a) for a in snap.alerts[:6]) or t("no_alerts", lang)
        st.markdown(f"<div class='dz-ticker' id='dz-alerts'>{ticker}</div>", unsafe_allow_html=True)
    with right:
        st.markdown(f"<div class='dz-h2'>{t('map', lang)}</div>", unsafe_allow_html=True)
        st.pydeck_chart(_map(snap, focus), height=300)
    _overview_tables(snap.overview, focus)


live()
