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

import html
import json
from functools import cache

import pydeck as pdk
import streamlit as st

from dozor.access import KIOSK
from dozor.cities import CITIES, CITY_IDS, city, resolve_district
from dozor.dashboard import data, signin, view
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
from dozor.dashboard.queries import AlertRow, CityRow, QueueRow
from dozor.dashboard.screen import focus_city, response_status
from dozor.geo import DISTRICTS_FILE

CSS = """
<style>
  /* Sized by the screen's height: the same wall fills a 1080p and a 4K screen, read from across the
     room (table text about 2 % of the height: 22 px at 1080p, 44 px at 4K). */
  [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
  [data-testid="stSidebarCollapsedControl"] {display: none;}
  .block-container {padding: 0.8vh 1.2vw 0 1.2vw !important; max-width: 100%;}
  [data-testid="stVerticalBlock"] {gap: 0.7vh !important;}
  [data-testid="stHorizontalBlock"] {gap: 1vw !important; flex-wrap: nowrap !important;}
  [data-testid="stColumn"] {min-width: 0 !important;}
  [data-testid="stMetricValue"] {font-size: 5vh !important; line-height: 1.05; font-weight: 700;}
  [data-testid="stMetricLabel"] p {font-size: 1.8vh !important; white-space: normal !important;
       overflow: visible !important; text-overflow: clip !important; line-height: 1.15;}
  [data-testid="stMetricLabel"] div, [data-testid="stMetricLabel"] {overflow: visible !important;
       white-space: normal !important; text-overflow: clip !important; max-width: none !important;}
  [data-testid="stMetricDelta"] {font-size: 1.8vh !important;}
  [data-testid="stMetricDelta"] div {white-space: normal !important; overflow: visible !important;}
  /* A refreshed fragment must not grey out: that is the flicker wall screens are judged by. */
  [data-stale="true"], .stale-element {opacity: 1 !important; transition: none !important;}
  .dz-head {display: flex; justify-content: space-between; align-items: baseline; gap: 1vw;}
  .dz-title {font-size: 3.4vh; font-weight: 700; white-space: nowrap;}
  .dz-clock {font-size: 3.2vh; font-variant-numeric: tabular-nums; white-space: nowrap;}
  .dz-fresh {font-size: 2vh; padding: 0.1vh 0.8vw; border-radius: 0.4vh; background: #14532d;}
  .dz-fresh.late {background: #b91c1c;}
  .dz-badge {font-size: 2vh; padding: 0.1vh 0.8vw; border-radius: 0.4vh; background: #7c2d12;}
  .dz-stale {font-size: 2.8vh; font-weight: 700; padding: 0.4vh 1vw; border-radius: 0.4vh;
             background: #b91c1c; color: white;}
  .dz-down {font-size: 2.4vh; font-weight: 700; padding: 0.4vh 1vw; border-radius: 0.4vh;
            background: #92400e; color: white;}
  table.dz {width: 100%; border-collapse: collapse; font-size: 2.05vh; font-variant-numeric: tabular-nums;
            line-height: 1.2;}
  table.dz-overview {font-size: 1.9vh;}
  table.dz th {text-align: right; font-weight: 600; color: #9ca3af; border-bottom: 1px solid #374151;
               padding: 0.1vh 0.35vw; white-space: nowrap;}
  table.dz td {white-space: nowrap; text-align: right; padding: 0.1vh 0.35vw;
               border-bottom: 1px solid #1f2937;}
  table.dz th:first-child, table.dz td:first-child {text-align: left;}
  table.dz tr.focus td {background: #1e3a8a;}
  .ok {color: #4ade80;} .warn {color: #fbbf24;} .bad {color: #f87171;} .none {color: #6b7280;}
  .dz-ticker {font-size: 2vh; line-height: 1.4;}
  .dz-h2 {font-size: 2.2vh; font-weight: 600; color: #d1d5db; margin: 0.3vh 0 0.1vh 0;}
  .dz-wait {font-size: 2.2vh; line-height: 1.35; font-variant-numeric: tabular-nums;}
  .dz-wait .bad {font-weight: 700;}
  [data-testid="stDeckGlJsonChart"], [data-testid="stDeckGlJsonChart"] > div {height: 24vh !important;}
  [data-testid="stDeckGlJsonChart"] canvas {height: 24vh !important;}
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
    signin.way_back(lang)  # the wall of the user's own city
    st.stop()
chosen = asked if asked in visible else (visible[0] if visible else None)
if chosen is None:  # a role without operational figures (the integrity unit): its own pages
    st.error(t("refused_operations", lang))
    for page in ("integrity", "audit"):
        if getattr(scope, page):
            signin.way_back(lang, page)
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


def _tiles(name: str, r: CityRow, calls: QueueRow | None) -> None:
    cols = st.columns([1, 1, 1.1, 0.9, 1.25, 1.15, 1.3, 1.3])
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
    oldest = (
        None if r.oldest_waiting_s is None
        else t("oldest", lang, age=fmt_age(r.oldest_waiting_s, lang), priority=r.oldest_waiting_priority)
    )  # fmt: skip
    cols[4].metric(
        t("waiting", lang), f"{fmt_int(r.waiting, lang)} · {fmt_int(r.missed, lang)}", oldest,
        delta_color="off", delta_arrow="off",
    )  # fmt: skip
    units = " · ".join(fmt_int(r.units.get(k, 0), lang) for k in ("en_route", "on_scene", "free"))
    cols[5].metric(t("units", lang), units)
    response = f"{fmt_minutes(r.response_p50_s, lang)} / {fmt_minutes(r.response_p90_s, lang)}"
    within = (
        None
        if r.within_target is None
        else f"{fmt_pct(r.within_target, lang).lstrip('+')} {t('on_time', lang)}"
    )
    cols[6].metric(t("response", lang), response, within, delta_color="off", delta_arrow="off")
    # 102: the citizens on hold now (the first minutes of every response), and NENA's hour figure.
    q = calls or QueueRow(r.city)
    longest = "—" if q.longest_wait_s is None else fmt_age(q.longest_wait_s, lang)
    share = q.within_15_share
    answered = (
        t("no_answers_hour", lang) if share is None
        else t("answered_15", lang, pct=fmt_pct(share, lang).lstrip("+"))
    )  # fmt: skip
    cols[7].metric(
        t("calls_102", lang), f"{fmt_int(q.waiting, lang)} · {longest}", answered,
        delta_color="off", delta_arrow="off",
    )  # fmt: skip


def _overview_tables(rows: dict[str, CityRow], focus: str) -> None:
    """Every city, busiest first, in one table: twenty rows fit the right half of a 1080p screen."""
    ranked = [
        c for c in sorted(CITIES, key=lambda c: -(rows[c.id].today if c.id in rows else 0)) if c.id in rows
    ]
    st.markdown(_overview_table(rows, ranked, focus), unsafe_allow_html=True)


def _overview_table(rows: dict[str, CityRow], cities: list, focus: str) -> str:
    keys = ("city", "col_minute", "col_hour", "today", "vs_yesterday", "open_now", "past_target_short",
            "units_short", "col_response")  # fmt: skip
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
                 fmt_int(r.incidents_open, lang)]  # fmt: skip
        cls = " class='focus'" if c.id == focus else ""
        out.append(f"<tr{cls} data-city='{c.id}'>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells))
        late = "bad" if r.missed else "none"
        out.append(f"<td class='{late}'>{html.escape(fmt_int(r.missed, lang))}</td>")
        out.append(f"<td>{html.escape(units)}</td>")
        out.append(f"<td class='{response_status(r.within_target)}'>{html.escape(resp)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _districts_table(snapshot: data.Snapshot, focus: str) -> str:
    head = [t("district", lang), t("col_minute", lang), t("last_hour", lang), t("today", lang),
            t("incidents_today", lang), t("open_now", lang), t("col_response", lang)]  # fmt: skip
    out = [
        "<table class='dz' id='dz-districts'><thead><tr>",
        *(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    for d in snapshot.districts:
        cells = [_district_name(focus, d.district), fmt_int(d.minute, lang), fmt_int(d.hour, lang),
                 fmt_int(d.today, lang), fmt_int(d.incidents_today, lang), fmt_int(d.incidents_open, lang),
                 fmt_minutes(d.response_p50_s, lang)]  # fmt: skip
        out.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _waiting_list(snapshot: data.Snapshot, focus: str, limit: int = 5) -> str:
    """The incidents no unit has reached: past target first, the longest wait first."""
    if not snapshot.waiting:
        none = html.escape(t("no_waiting", lang))
        return f"<div class='dz-wait' id='dz-waiting'><span class='ok'>{none}</span></div>"
    lines = []
    for w in snapshot.waiting[:limit]:
        cls = "bad" if w.past_target else "warn"
        text = f"P{w.priority} · {_district_name(focus, w.district)} · {fmt_age(w.waited_s, lang)}"
        lines.append(f"<span class='{cls}'>{html.escape(text)}</span>")
    more = len(snapshot.waiting) - limit
    if more > 0:
        lines.append(f"<span class='none'>+{fmt_int(more, lang)}</span>")
    return "<div class='dz-wait' id='dz-waiting'>" + "<br>".join(lines) + "</div>"


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


def _badges() -> str:
    """What the screen must say about its data: simulated, and a load test's multiplier."""
    rate = settings.simulate_rate
    if rate is None:
        return ""
    text = t("load_test", lang, rate=f"{rate:g}") if rate != 1 else t("simulated_feed", lang)
    return f"<span class='dz-badge' id='dz-simulated'>{html.escape(text)}</span>"


@st.fragment(run_every=settings.refresh_seconds)
def live() -> None:
    t0 = data.read_instant()
    failed_at = None
    try:
        snap = data.snapshot(chosen, TZ, scope, t0)
        st.session_state["last_good"] = snap
    except Exception:  # network, HTTP, server: a banner and the last good figures, never a traceback
        snap = st.session_state.get("last_good")
        failed_at = snap.read_at if snap else t0
    if rotate_s:
        focus = focus_city(t0, snap.overview if snap else {}, chosen, rotate_s)
        if snap is not None and focus != chosen and failed_at is None:
            # The rotated city's read can fail too: the same banner and last good figures, never a
            # traceback on a wall screen. Same instant: the rotated screen agrees with the others.
            try:
                snap = data.snapshot(focus, TZ, scope, t0)
                st.session_state["last_good"] = snap
            except Exception:
                failed_at, focus = snap.read_at, chosen
    else:
        focus = chosen
    name = city(focus).name(lang)

    # Stale is a stopped feed, not a quiet city: judged by the workers' heartbeat (at a real
    # country's pace a city has minutes without an event at night), by the newest event only where
    # no worker beats (figures written without one).
    silent = None
    if snap is not None and snap.beat is not None:
        silent = max((snap.read_at - snap.beat.at).total_seconds(), 0)
    elif snap is not None and snap.newest is not None:
        silent = max((snap.read_at - snap.newest).total_seconds(), 0)
    stale = silent is not None and silent > settings.stale_after_seconds
    fresh = ""
    if snap is not None and snap.newest is not None and failed_at is None:
        age = max((snap.read_at - snap.newest).total_seconds(), 0)
        stamp = f"{t('updated', lang)} {fmt_local_time(snap.newest, TZ)} ({fmt_age(age, lang)})"
        fresh = f"<span class='dz-fresh{' late' if stale else ''}' id='dz-fresh'>{stamp}</span>"
    # Every figure below is as of this instant (the clock): one read, one moment.
    shown_at = snap.read_at if snap is not None else t0
    st.markdown(
        f"<div class='dz-head'><span class='dz-title'>{t('title', lang)} · {html.escape(name)}</span>"
        f"{_badges()}{fresh}<span class='dz-clock' id='dz-as-of' data-instant='{shown_at.isoformat()}'>"
        f"{t('as_of', lang)} {fmt_local_time(shown_at, TZ)}</span></div>",
        unsafe_allow_html=True,
    )
    if failed_at is not None:
        text = t("ch_down", lang, at=fmt_local_time(failed_at, TZ)) if snap else t("ch_down_nothing", lang)
        st.markdown(f"<div class='dz-down' id='dz-down'>{html.escape(text)}</div>", unsafe_allow_html=True)
        if snap is None:
            return
    elif snap.newest is None and snap.beat is None:
        st.markdown(f"<div class='dz-stale' id='dz-stale'>{t('no_data', lang)}</div>", unsafe_allow_html=True)
    elif stale and silent is not None:
        key = "feed_stopped" if snap.beat is not None else "stale"
        text = t(key, lang, age=fmt_age(silent, lang))
        st.markdown(f"<div class='dz-stale' id='dz-stale'>{html.escape(text)}</div>", unsafe_allow_html=True)

    _tiles(name, snap.overview.get(focus, CityRow(focus)), snap.calls)
    # Two halves, each its own column of boxes: the focused city on the left (districts, map and
    # the incidents waiting, alerts), every city on the right in one table, busiest first. Sized in
    # vh so that 1080p and 4K look alike; the layout test measures both (tests/browser).
    left, right = st.columns([0.95, 1.05])
    with left:
        st.markdown(_districts_table(snap, focus), unsafe_allow_html=True)
        inner = st.columns([1.2, 1])
        with inner[0]:
            st.markdown(f"<div class='dz-h2'>{t('map', lang)}</div>", unsafe_allow_html=True)
            st.pydeck_chart(_map(snap, focus), height=260)
        with inner[1]:
            st.markdown(f"<div class='dz-h2'>{t('waiting_list', lang)}</div>", unsafe_allow_html=True)
            st.markdown(_waiting_list(snap, focus), unsafe_allow_html=True)
        st.markdown(f"<div class='dz-h2'>{t('alerts', lang)}</div>", unsafe_allow_html=True)
        ticker = "<br>".join(_alert_text(a) for a in snap.alerts[:4]) or t("no_alerts", lang)
        st.markdown(f"<div class='dz-ticker' id='dz-alerts'>{ticker}</div>", unsafe_allow_html=True)
    with right:
        _overview_tables(snap.overview, focus)


live()
if scope is not KIOSK:
    # A signed-in manager's way to the analysis pages (a kiosk wall shows none: no one clicks it).
    links = [p for p in view.PAGES if view.may_open(scope, p)]
    for col, page in zip(st.columns(len(links) + 4), links, strict=False):
        with col:
            st.page_link(
                f"app_pages/{page}.py", label=t(page, lang), query_params={"lang": lang, "city": chosen}
            )
