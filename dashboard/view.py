"""What every managers' page shares: sign-in and scope, the header with the other pages, and the
filters — area, time range, language, type/category/channel/priority — kept in the URL.

Each filter is a widget drawn from a query parameter and writing its changes back to it
(:func:`to_url`), so a filtered view is a link a colleague can open. (Streamlit's own
``bind="query-params"`` puts an option's *label* in the URL, so a link would change with the
language and break on a translated name; here the URL holds stable ids.)

A link still obeys the colleague's scope: a city or district in the URL that the scope does not
cover is refused, recorded, and nothing is read — before any widget could quietly fall back to a
city the user may see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

import streamlit as st

from dozor import localtime
from dozor.access import AccessDenied, Scope
from dozor.cities import CITY_IDS, city
from dozor.dashboard import data, queries, signin
from dozor.dashboard.i18n import LANGS, label, t
from dozor.dashboard.queries import Area, Filters
from dozor.schemas import IncidentCategory, IncidentChannel, ViolationType

__all__ = [
    "View", "PRESETS", "preset_range", "open_page", "open_plain_page", "header", "may_open", "area_name",
    "district_name", "record_view",
    "url_choice", "url_list", "url_date", "url_int", "url_notes", "to_url",
]  # fmt: skip

T = TypeVar("T")

PRESETS = ("today", "yesterday", "7d", "28d", "mtd", "ytd", "custom")

#: The managers' pages (``app_pages/<name>.py``, title ``t(name)``); integrity and audit for their roles.
PAGES = ("compstat", "trends", "responses", "incidents", "integrity", "audit")


def preset_range(preset: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of a preset, for the local ``today``."""
    d = dt.timedelta
    return {
        "today": (today, today),
        "yesterday": (today - d(days=1), today - d(days=1)),
        "7d": (today - d(days=6), today),
        "28d": (today - d(days=27), today),
        "mtd": (today.replace(day=1), today),
        "ytd": (today.replace(month=1, day=1), today),
    }.get(preset, (today - d(days=27), today))


@dataclass(frozen=True)
class View:
    """One page's choices: who looks, in which language, at which area, days and families."""

    scope: Scope
    page: str
    lang: str
    area: Area
    start: dt.date
    end: dt.date
    filters: Filters
    tz: str

    @property
    def detail(self) -> str:
        """The view as the audit log records it."""
        f = self.filters
        parts = [f"city={self.area.city}", f"district={self.area.district or '*'}",
                 f"from={self.start}", f"to={self.end}"]  # fmt: skip
        for name, values in (("type", f.violation_types), ("category", f.categories),
                             ("channel", f.channels), ("priority", f.priorities)):  # fmt: skip
            if values:
                parts.append(f"{name}={','.join(map(str, values))}")
        return " ".join(parts)

    def csv_download(self, table: list[dict], name: str, what: str, key: str) -> None:
        """The CSV button of a table, named after the view; the export goes to the audit log."""
        from dozor.dashboard.tables import csv_bytes

        file_name = f"{name}_{self.area.city}_{self.start}_{self.end}.csv"
        audit = ("export", self.page, f"csv {what} {self.detail}", len(table), self.scope)
        st.download_button(
            t("csv", self.lang), csv_bytes(table), file_name=file_name, mime="text/csv", key=key,
            on_click=signin.audit, args=audit,
        )  # fmt: skip


def district_name(city_id: str, district: str, lang: str) -> str:
    """A district's name in ``lang``; "no district" for events outside the city's map."""
    if not district:
        return t("no_district", lang)
    d = next((x for x in city(city_id).districts if x.id == district), None)
    return d.name(lang) if d else district


def area_name(area: Area, lang: str) -> str:
    name = city(area.city).name(lang)
    return name if area.district is None else f"{name} · {district_name(area.city, area.district, lang)}"


def _refuse(scope: Scope, page: str, message: str, detail: str, lang: str) -> None:
    """Refuse a link's area: say why in the page's language, record it, and offer the same page
    without the area (the user's own) and the wall."""
    signin.audit("refused", page, detail, scope=scope)
    st.error(message)
    signin.way_back(lang, page)
    signin.way_back(lang)
    st.stop()


def _require_operations(scope: Scope) -> None:
    if not scope.visible_cities():
        raise AccessDenied(f"{scope.user} ({scope.role}) may not see operational figures")


#: What a link to another managers' page carries over: the area, the range and the language.
CARRIED = ("lang", "city", "district", "range", "from", "to")


def may_open(scope: Scope, name: str) -> bool:
    """Whether this user's role opens the managers' page ``name`` (the header's links, the wall's)."""
    if name == "integrity":
        return scope.integrity
    if name == "audit":
        return scope.audit
    return bool(scope.visible_cities())


def header(scope: Scope, page: str, lang: str) -> str:
    """The same header on every managers' page: the wall and the pages this user may open (the
    area, range and language carried over), the language, who is signed in, sign-out. Returns the
    language chosen."""
    carried = {k: st.query_params[k] for k in CARRIED if k in st.query_params}
    carried["lang"] = lang
    names = [n for n in PAGES if may_open(scope, n)]
    cols = st.columns([8, 1, 1, 1], vertical_alignment="center")
    with cols[0]:
        links = st.columns(len(names) + 1)
        with links[0]:
            wall = {k: v for k, v in carried.items() if k in ("lang", "city")}
            st.page_link("app_pages/wall.py", label=t("wall", lang), query_params=wall, icon="🖥️")
        for name, col in zip(names, links[1:], strict=True):
            with col:
                st.page_link(f"app_pages/{name}.py", label=t(name, lang), query_params=carried,
                             disabled=name == page)  # fmt: skip
    with cols[1]:
        lang = st.selectbox(t("language", lang), LANGS, index=LANGS.index(lang), key="lang",
                            on_change=to_url("lang"), label_visibility="collapsed")  # fmt: skip
    with cols[2]:
        st.caption(scope.user)
    with cols[3]:
        st.button(t("sign_out", lang), on_click=st.logout, key="dozor_sign_out")
    return lang


def open_plain_page(page: str, require: Callable[[Scope], None], refusal: str) -> tuple[Scope, str]:
    """A managers' page without area filters (integrity, audit): sign-in, role, the header.
    Returns the scope and the page's language."""
    scope = signin.manager_scope(page, require, refusal)
    lang = header(scope, page, signin.page_lang())
    url_notes(lang)
    return scope, lang


def _city_changed() -> None:
    """A new city: its district is not the old city's, so the URL forgets the district."""
    to_url("city")()
    st.query_params.pop("district", None)
    st.session_state.pop("district", None)


def url_choice(name: str, options: Sequence[T], default: T) -> T:
    """The URL's value of ``name`` if it is one of ``options`` (compared as text), else ``default``."""
    text = st.query_params.get(name)
    return next((o for o in options if str(o) == text), default)


def url_list(name: str, options: Sequence[T]) -> list[T]:
    """The URL's comma-separated values of ``name`` that are among ``options``."""
    wanted = (st.query_params.get(name) or "").split(",")
    return [o for o in options if str(o) in wanted]


#: What the URL asked for that could not be shown as asked, for :func:`url_notes` (one run).
_URL_NOTES: list[tuple[str, str, str]] = []


def url_date(name: str, default: dt.date, latest: dt.date, earliest: dt.date | None = None) -> dt.date:
    """The URL's ``name`` as a day between ``earliest`` (the oldest an event may have,
    DOZOR_EARLIEST_EVENT_DATE) and ``latest``; a day outside is moved to the nearer end and a text
    that is no day gives ``default`` — either way noted for the page (:func:`url_notes`), never an
    error (a link to ``from=0001-01-01`` once ended in a traceback)."""
    earliest = earliest or data.settings().earliest_event_date
    text = st.query_params.get(name)
    if not text:
        return default
    try:
        asked = dt.date.fromisoformat(text)
    except ValueError:
        _URL_NOTES.append((name, text[:40], default.isoformat()))
        return default
    day = min(max(asked, earliest), latest)
    if day != asked:
        _URL_NOTES.append((name, text[:40], day.isoformat()))
    return day


def url_notes(lang: str) -> None:
    """Say on the page which URL values were not used as given, and what was used instead."""
    for name, asked, used in _URL_NOTES:
        st.info(t("url_adjusted", lang, name=name, asked=asked, used=used))
    _URL_NOTES.clear()


def url_int(name: str, default: int, lowest: int, highest: int) -> int:
    try:
        return max(lowest, min(highest, int(st.query_params.get(name) or "")))
    except ValueError:
        return default


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def to_url(name: str) -> Callable[[], None]:
    """An ``on_change`` for the widget keyed ``name``: the new value goes to the URL, and the
    widget's own state is dropped, so the next run draws it from the URL again — the URL is the
    one truth of a view (a link shows what its sender saw), whatever the widget's format_func."""

    def sync() -> None:
        text = _text(st.session_state.get(name))
        if text:
            st.query_params[name] = text
        else:
            st.query_params.pop(name, None)
        st.session_state.pop(name, None)

    return sync


def open_page(
    page: str, families: tuple[str, ...] = ("violations", "incidents"), single_day: bool = False
) -> View:
    """Sign in, check the role, draw header and filters, refuse what the scope does not cover.

    ``single_day``: the page takes one *as of* date (CompStat) instead of a range.
    """
    scope = signin.manager_scope(page, _require_operations, "refused_operations")
    params = st.query_params
    lang = signin.page_lang()
    cities = scope.visible_cities()

    # The URL is checked against the scope before any widget reads it.
    asked_city = params.get("city")
    if asked_city is not None and asked_city in CITY_IDS and not scope.covers_city(asked_city):
        _refuse(scope, page, t("refused_city", lang, city=city(asked_city).name(lang)), f"city={asked_city}",
                lang)  # fmt: skip
    current_city = asked_city if asked_city in cities else cities[0]
    asked_district = params.get("district")
    district_ids = [d.id for d in city(current_city).districts]
    if asked_district and asked_district in district_ids:
        if not scope.covers_district(current_city, asked_district):
            _refuse(scope, page, t("refused_district", lang, district=asked_district),
                    f"city={current_city} district={asked_district}", lang)  # fmt: skip

    lang = header(scope, page, lang)
    # Days and hours are the city's own, for the period (dozor.localtime): Aktobe's day before
    # March 2024 began an hour after Astana's.
    tz = localtime.zone_name(current_city)
    today = dt.datetime.now(ZoneInfo(tz)).date()
    row = st.columns([2, 2, 2, 2, 2, 1])
    with row[0]:
        chosen_city = st.selectbox(
            t("city", lang), cities, index=cities.index(current_city), key="city",
            on_change=_city_changed, format_func=lambda c: city(c).name(lang),
        )  # fmt: skip
    districts = [d.id for d in city(chosen_city).districts if scope.covers_district(chosen_city, d.id)]
    options: list[str] = ([""] if scope.districts is None else []) + districts
    with row[1]:
        if len(options) > 1 or scope.districts is not None:
            chosen_district = st.selectbox(
                t("district", lang), options, key="district", on_change=to_url("district"),
                index=options.index(url_choice("district", options, options[0])),
                format_func=lambda d: t("all_districts", lang) if d == "" else district_name(
                    chosen_city, d, lang),
            )  # fmt: skip
        else:
            chosen_district = ""
    if single_day:
        with row[2]:
            # Yesterday by default: today is not over, and a part of a day against whole ones
            # would flag a fall every morning.
            yesterday = today - dt.timedelta(days=1)
            day = st.date_input(t("as_of", lang), value=url_date("day", yesterday, today), max_value=today,
                                key="day", on_change=to_url("day"))  # fmt: skip
        start = end = day if isinstance(day, dt.date) else today
    else:
        with row[2]:
            preset = st.selectbox(
                t("range", lang), PRESETS, index=PRESETS.index(url_choice("range", PRESETS, "28d")),
                key="range", on_change=to_url("range"),
                format_func=lambda p: t(f"preset_{p}", lang),
            )  # fmt: skip
        start, end = preset_range(preset, today)
        if preset == "custom":
            with row[3]:
                start = st.date_input(t("from", lang), value=url_date("from", start, today), max_value=today,
                                      key="from", on_change=to_url("from"))  # fmt: skip
            with row[4]:
                end = st.date_input(t("to", lang), value=url_date("to", end, today), max_value=today,
                                    key="to", on_change=to_url("to"))  # fmt: skip
            if start > end:
                start, end = end, start
    url_notes(lang)
    if not single_day and end == today:
        now = dt.datetime.now(ZoneInfo(localtime.zone_name(chosen_city)))
        st.caption(t("partial_today", lang, day=today.isoformat(), time=now.strftime("%H:%M")))
    filters = _family_filters(lang, families)
    area = Area(chosen_city, chosen_district or None)
    tz = localtime.zone_name(chosen_city)
    view = View(scope, page, lang, area, start, end, filters, tz)
    record_view(view)
    simulated = queries.simulated_days(data.client(), start - dt.timedelta(days=366), end)
    if simulated:
        st.caption(t("simulated", lang, lo=simulated[0], hi=simulated[1]))
    return view


def _url_multiselect(title: str, name: str, options: Sequence[T], lang: str) -> list[T]:
    """A multiselect drawn from the URL's ``name`` and writing back to it (:func:`to_url`)."""
    return st.multiselect(
        title, options, default=url_list(name, options), key=name, on_change=to_url(name),
        format_func=lambda k: label(str(k), lang) if isinstance(k, str) else str(k),
    )  # fmt: skip


def _family_filters(lang: str, families: tuple[str, ...]) -> Filters:
    if not families:
        return Filters()
    with st.expander(", ".join(t(k, lang) for k in _family_keys(families)), expanded=False):
        cols = st.columns(4)
        types: list[str] = []
        cats: list[str] = []
        chans: list[str] = []
        prios: list[int] = []
        if "violations" in families:
            with cols[0]:
                types = _url_multiselect(t("types", lang), "type", [v.value for v in ViolationType], lang)
        if "incidents" in families:
            with cols[1]:
                categories = [c.value for c in IncidentCategory]
                cats = _url_multiselect(t("categories", lang), "category", categories, lang)
            with cols[2]:
                channels = [c.value for c in IncidentChannel]
                chans = _url_multiselect(t("channels", lang), "channel", channels, lang)
            with cols[3]:
                prios = _url_multiselect(t("priorities", lang), "priority", [1, 2, 3, 4], lang)
    return Filters(tuple(types), tuple(cats), tuple(chans), tuple(int(p) for p in prios))


def _family_keys(families: tuple[str, ...]) -> list[str]:
    keys = []
    if "violations" in families:
        keys.append("types")
    if "incidents" in families:
        keys += ["categories", "channels", "priorities"]
    return keys


def record_view(view: View) -> None:
    """A first view of a page, and every change of its filters, go to the audit log once."""
    key = f"dozor_view_{view.page}"
    previous = st.session_state.get(key)
    if previous == view.detail:
        return
    st.session_state[key] = view.detail
    signin.audit("view" if previous is None else "filter", view.page, view.detail, scope=view.scope)
