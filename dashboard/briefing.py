"""The CompStat page as a PDF briefing in the reader's language (fpdf2, DejaVu Sans for Cyrillic
and Kazakh letters): the same tables as the page (:func:`dozor.dashboard.tables.compstat_tables`),
so a printed number is the number on the screen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from dozor.dashboard.i18n import t
from dozor.dashboard.queries import CompstatRow
from dozor.dashboard.tables import COMPARISONS, compstat_tables, flag_heading, number_text
from dozor.errors import ConfigError

__all__ = ["FONT_DIRS", "briefing_pdf"]

#: Where DejaVu Sans is looked for (Debian's fonts-dejavu-core; infra/bootstrap.sh installs it).
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


def _font(name: str) -> Path:
    for d in FONT_DIRS:
        if (d / name).exists():
            return d / name
    raise ConfigError(f"font {name} not found in {', '.join(map(str, FONT_DIRS))}; install fonts-dejavu-core")


def briefing_pdf(
    rows: Sequence[CompstatRow], lang: str, area: str, day: dt.date, user: str, made_at: dt.datetime,
    notes: Sequence[str] = (), warning: str = "",
) -> bytes:  # fmt: skip
    """A landscape A4 briefing: title, who it was made for and when (``made_at`` as given: the
    city's local time), a ``warning`` in red under the title (simulated data), one table per
    figure. A change and its flag share a cell, as on paper they are read together."""
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_font("DejaVu", "", str(_font("DejaVuSans.ttf")))
    pdf.add_font("DejaVu", "B", str(_font("DejaVuSans-Bold.ttf")))
    pdf.set_title(t("briefing_title", lang, area=area, day=day.isoformat()))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 9, t("briefing_title", lang, area=area, day=day.isoformat()), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    pdf.cell(0, 5, t("briefing_by", lang, user=user, at=made_at.strftime("%Y-%m-%d %H:%M (UTC%z)")),
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    if warning:
        pdf.set_font("DejaVu", "B", 10)
        pdf.set_text_color(200, 30, 30)
        pdf.multi_cell(0, 5, warning, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("DejaVu", "", 8)
    for note in notes:
        pdf.multi_cell(0, 4, note, new_x="LMARGIN", new_y="NEXT")
    for family, table in compstat_tables(rows, lang).items():
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(0, 6, t(f"fam_{family}", lang), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 7.5)
        flags = {flag_heading(c, lang): t(c, lang) for c, _, _ in COMPARISONS}
        headings = [h for h in table[0] if h not in flags]
        widths = (34, *([17] * 7), *([21] * 4))
        with pdf.table(col_widths=widths, text_align="RIGHT", line_height=4.2,
                       headings_style=FontFace(emphasis="BOLD")) as out:  # fmt: skip
            head = out.row()
            for h in headings:
                head.cell(h)
            for line in table:
                r = out.row()
                flag_of = {v: line[k] for k, v in flags.items()}
                for h in headings:
                    text = number_text(line[h], lang)
                    r.cell(f"{text} {flag_of[h]}" if flag_of.get(h) else text)
    return bytes(pdf.output())
