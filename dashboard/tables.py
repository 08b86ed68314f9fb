"""The managers' tables as rows of plain values: what a page shows, its CSV and its PDF are the same
rows, so an export is exactly what was on the screen."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from dozor.dashboard.i18n import label, t
from dozor.dashboard.queries import CompstatRow

__all__ = [
    "FAMILIES", "COMPARISONS", "compstat_tables", "csv_bytes", "csv_cell", "change_text", "change_percent",
    "change_flag", "flag_heading", "number_text",
]  # fmt: skip

#: CompStat's tables, in the page's order.
FAMILIES = ("violations", "category", "channel", "priority", "arrivals", "within_target", "integrity")

#: The changes a CompStat table shows: (column key, current period, period compared with).
COMPARISONS = (
    ("chg_week", "week", "prev_week"),
    ("chg_week_ly", "week", "week_ly"),
    ("chg_d28", "d28", "d28_ly"),
    ("chg_ytd", "ytd", "ytd_ly"),
)

_COLUMNS = ("week", "prev_week", "week_ly", "d28", "d28_ly", "ytd", "ytd_ly")


def _key_label(family: str, key: str, lang: str) -> str:
    if key == "":
        return t("total", lang)
    if family in ("priority", "arrivals", "within_target"):
        return f"P{key}"
    return label(key, lang)


def change_percent(row: CompstatRow, current: str, before: str) -> float | None:
    """The change in percent, to one decimal (a number, so a spreadsheet can sort and sum it);
    None when there is nothing to compare."""
    change = row.change(current, before)
    return None if change is None else round(change * 100, 1)


def change_flag(row: CompstatRow, current: str, before: str) -> str:
    """▲ or ▼ when the change is beyond chance (|z| > 3), else ''."""
    if row.change(current, before) is None or not row.significant(current, before):
        return ""
    return "▲" if row.n(current) > row.n(before) else "▼"


def change_text(row: CompstatRow, current: str, before: str) -> str:
    """'+12.5% ▲' as a briefing prints it; '—' when there is nothing to compare."""
    change = change_percent(row, current, before)
    if change is None:
        return "—"
    flag = change_flag(row, current, before)
    return f"{change:+.1f}%" + (f" {flag}" if flag else "")


def flag_heading(column: str, lang: str) -> str:
    """The heading of a change's flag column ("Δ 28 days · beyond chance")."""
    return f"{t(column, lang)} · {t('beyond_chance', lang)}"


def number_text(value: object, lang: str) -> str:
    """A cell as a briefing prints it: counts with the language's thousands separator, changes
    as '+12.5%', nothing to compare as '—'."""
    from dozor.dashboard.i18n import fmt_int

    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return fmt_int(value, lang)
    if isinstance(value, float):
        return f"{value:+.1f}%"
    return str(value)


def compstat_tables(rows: Sequence[CompstatRow], lang: str) -> dict[str, list[dict[str, object]]]:
    """Per family, the rows of its table: the figure, every period's count, and for each of the
    four changes its percent (a number) and its flag (▲, ▼ or '').

    Column names are the language's headings; the total comes first, then the keys in order.
    """
    out: dict[str, list[dict[str, object]]] = {}
    for family in FAMILIES:
        members = [r for r in rows if r.family == family]
        if not members:
            continue
        table = []
        for r in sorted(members, key=lambda r: (r.key != "", r.key)):
            line: dict[str, object] = {t("figure", lang): _key_label(family, r.key, lang)}
            for period in _COLUMNS:
                line[t(f"p_{period}", lang)] = r.n(period)
            for column, current, before in COMPARISONS:
                line[t(column, lang)] = change_percent(r, current, before)
                line[flag_heading(column, lang)] = change_flag(r, current, before)
            table.append(line)
        out[family] = table
    return out


#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A cell that is a number as text ("-12", "+3.5", "-2.1%") is left as it is: it is not a formula.
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)(?:[eE][+-]?\d+)?%?$")


def csv_cell(value: object) -> object:
    """A value as a CSV cell a spreadsheet cannot run: text that begins with ``= + - @`` or a tab
    or carriage return gets a leading apostrophe, as OWASP recommends (Excel and LibreOffice then
    show it as text); numbers, and text that is a number, stay as they are. Imported call types and
    areas come from other systems' exports, so any of them may be ``=HYPERLINK(…)``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def csv_bytes(rows: Sequence[dict[str, object]]) -> bytes:
    """The rows as CSV (UTF-8 with a byte-order mark, so Excel reads Cyrillic), header first, every
    cell through :func:`csv_cell` (headers too)."""
    buf = io.StringIO()
    if rows:
        fields = list(rows[0])
        writer = csv.writer(buf)
        writer.writerow([csv_cell(f) for f in fields])
        writer.writerows([csv_cell(row.get(f)) for f in fields] for row in rows)
    return ("\ufeff" + buf.getvalue()).encode()
