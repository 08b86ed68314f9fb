"""Interface text in Russian (working language), Kazakh (state language) and English, and number
and time formatting per language through Babel."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

__all__ = ["LANGS", "t", "fmt_int", "fmt_pct", "fmt_local_time", "fmt_age", "fmt_minutes", "fmt_change"]

LANGS = ("ru", "kk", "en")

_TEXT: dict[str, dict[str, str]] = {
    "title": {"ru": "Дозор", "kk": "Дозор", "en": "Dozor"},
    "violations": {"ru": "Нарушения ПДД", "kk": "ЖҚЕ бұзушылықтары", "en": "Traffic violations"},
    "last_minute": {"ru": "за минуту", "kk": "соңғы минутта", "en": "last minute"},
    "today": {"ru": "сегодня", "kk": "бүгін", "en": "today"},
    "yesterday": {"ru": "вчера к этому часу", "kk": "кеше осы уақытқа дейін", "en": "yesterday by now"},
    "city": {"ru": "Город", "kk": "Қала", "en": "City"},
    "vs_yesterday": {"ru": "к вчера", "kk": "кешемен", "en": "vs yesterday"},
    "all_cities": {"ru": "Все города", "kk": "Барлық қалалар", "en": "All cities"},
    "updated": {"ru": "Данные на", "kk": "Деректер уақыты", "en": "Data as of"},
    "stale": {
        "ru": "ДАННЫЕ УСТАРЕЛИ: последнее событие {age} назад",
        "kk": "ДЕРЕКТЕР ЕСКІРДІ: соңғы оқиға {age} бұрын",
        "en": "DATA STALE: newest event {age} ago",
    },
    "no_data": {"ru": "Нет данных за сегодня", "kk": "Бүгінге деректер жоқ", "en": "No data today"},
    "ch_down": {
        "ru": "Нет связи с хранилищем ClickHouse. Показаны последние полученные данные ({at}).",
        "kk": "ClickHouse қоймасымен байланыс жоқ. Соңғы алынған деректер көрсетілген ({at}).",
        "en": "ClickHouse is unreachable. Showing the last figures received ({at}).",
    },
    "ch_down_nothing": {
        "ru": "Нет связи с хранилищем ClickHouse; данных пока нет.",
        "kk": "ClickHouse қоймасымен байланыс жоқ; деректер әлі жоқ.",
        "en": "ClickHouse is unreachable; no figures yet.",
    },
    "last_hour": {"ru": "за час", "kk": "соңғы сағатта", "en": "last hour"},
    "incidents_open": {"ru": "открытые происшествия", "kk": "ашық оқиғалар", "en": "open incidents"},
    "units": {
        "ru": "наряды: в пути · на месте · свободны",
        "kk": "жасақтар: жолда · орнында · бос",
        "en": "units: en route · on scene · free",
    },  # fmt: skip
    "units_short": {"ru": "Наряды", "kk": "Жасақтар", "en": "Units"},
    "response": {"ru": "прибытие: медиана / 90%", "kk": "келу: медиана / 90%", "en": "arrival: median / p90"},
    "within_target": {"ru": "в нормативе", "kk": "нормативте", "en": "within target"},
    "district": {"ru": "Район", "kk": "Аудан", "en": "District"},
    "no_district": {"ru": "без района", "kk": "ауданы жоқ", "en": "no district"},
    "incidents_today": {"ru": "происшествий сегодня", "kk": "бүгінгі оқиғалар", "en": "incidents today"},
    "open_now": {"ru": "открыто", "kk": "ашық", "en": "open"},
    "alerts": {"ru": "Тревоги", "kk": "Дабылдар", "en": "Alerts"},
    "no_alerts": {"ru": "Тревог нет", "kk": "Дабыл жоқ", "en": "No alerts"},
    "refused_city": {
        "ru": "Нет доступа: {city} вне вашей зоны ответственности. Попытка записана в журнал.",
        "kk": "Рұқсат жоқ: {city} сіздің жауапкершілік аймағыңыздан тыс. Әрекет журналға жазылды.",
        "en": "Access refused: {city} is outside your scope. The attempt has been recorded.",
    },
    "map": {"ru": "Последние 15 минут", "kk": "Соңғы 15 минут", "en": "Last 15 minutes"},
    "alert_violations_spike": {
        "ru": "Всплеск нарушений: {observed} за минуту (обычно {baseline})",
        "kk": "Бұзушылықтар күрт өсті: минутына {observed} (әдетте {baseline})",
        "en": "Violations spike: {observed} in a minute (usually {baseline})",
    },
    "alert_incidents_spike": {
        "ru": "Всплеск происшествий: {observed} за минуту (обычно {baseline})",
        "kk": "Оқиғалар күрт өсті: минутына {observed} (әдетте {baseline})",
        "en": "Incidents spike: {observed} in a minute (usually {baseline})",
    },
    "alert_incident_waiting": {
        "ru": "Происшествие ждёт наряд: приоритет {priority}, более {minutes} мин",
        "kk": "Оқиға жасақты күтуде: басымдық {priority}, {minutes} минуттан астам",
        "en": "Incident waiting for a unit: priority {priority}, over {minutes} min",
    },
    "col_minute": {"ru": "мин", "kk": "мин", "en": "min"},
    "col_hour": {"ru": "час", "kk": "сағ", "en": "hour"},
    "col_response": {"ru": "прибытие", "kk": "келу", "en": "arrival"},
    "minutes": {"ru": "мин", "kk": "мин", "en": "min"},
    "ch_failed_at": {"ru": "данные на {at}", "kk": "деректер уақыты {at}", "en": "figures as of {at}"},
}


def t(key: str, lang: str, **kwargs: object) -> str:
    """The text for ``key`` in ``lang`` (Russian if the language is unknown)."""
    entry = _TEXT[key]
    return entry.get(lang, entry["ru"]).format(**kwargs)


def _locale(lang: str) -> str:
    return {"ru": "ru_RU", "kk": "kk_KZ", "en": "en_US"}.get(lang, "ru_RU")


def fmt_int(n: int, lang: str) -> str:
    """'23 800' in Russian and Kazakh (non-breaking space), '23,800' in English."""
    return format_decimal(n, locale=_locale(lang))


def fmt_pct(x: float, lang: str) -> str:
    return format_percent(x, format="+#,##0%;-#,##0%", locale=_locale(lang))


def fmt_local_time(t: dt.datetime, tz: str) -> str:
    """Wall-clock time in the control centre's zone (UTC+5), 24-hour."""
    return t.astimezone(ZoneInfo(tz)).strftime("%H:%M:%S")


def fmt_age(seconds: float, lang: str) -> str:
    units = {"ru": ("с", "мин", "ч"), "kk": ("с", "мин", "сағ"), "en": ("s", "min", "h")}[
        lang if lang in LANGS else "ru"
    ]
    if seconds < 120:
        return f"{int(seconds)} {units[0]}"
    if seconds < 7200:
        return f"{int(seconds // 60)} {units[1]}"
    return f"{int(seconds // 3600)} {units[2]}"


def fmt_minutes(seconds: float | None, lang: str) -> str:
    """Seconds as minutes with one decimal, in the language's notation ('11,5' in Russian)."""
    if seconds is None:
        return "—"
    return format_decimal(round(seconds / 60, 1), format="#,##0.0", locale=_locale(lang))


def fmt_change(now: int, before: int, lang: str) -> str | None:
    """'+12%' against the same time yesterday; None when yesterday had nothing to compare with."""
    if not before:
        return None
    change = (now - before) / before
    return "±0%" if abs(change) < 0.005 else fmt_pct(change, lang)
