"""The building blocks of the PDF risk report (drs/reports/pdf.py): page geometry, styles, tables that fill the text
width and wrap their cells, and the pure text helpers every section uses. It imports reportlab at module level, so it
is itself imported only when a report is written. docs/reports.md has the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Image, Paragraph, Table, TableStyle

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 16 * mm
FOOTER = 4 * mm
FRAME_PADDING = 6  # points on each side of reportlab's default frame
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN - 2 * FRAME_PADDING
FRAME_HEIGHT = PAGE_HEIGHT - 2 * MARGIN - FOOTER - 2 * FRAME_PADDING - 1
MAX_TABLE_ROWS = 14
HEADER_BG = colors.HexColor("#1f3b5c")
ZEBRA = colors.HexColor("#eef2f7")
ALERT = "#b3261e"
GOOD = "#1e6b34"

_styles = getSampleStyleSheet()
TITLE = ParagraphStyle("title", parent=_styles["Title"], fontSize=17, leading=21, alignment=0, spaceAfter=2)
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=15, leading=19, spaceBefore=0, spaceAfter=6, textColor=HEADER_BG)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=11.5, leading=14, spaceBefore=9, spaceAfter=4, textColor=HEADER_BG)
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9, leading=12)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#444444"))
CELL = ParagraphStyle("cell", parent=BODY, fontSize=8, leading=9.8)
CELL_BOLD = ParagraphStyle("cellbold", parent=CELL, fontName="Helvetica-Bold")
HEAD_CELL = ParagraphStyle("headcell", parent=CELL, fontName="Helvetica-Bold", textColor=colors.white)
RIGHT = {s.name: ParagraphStyle(s.name + "right", parent=s, alignment=2) for s in (CELL, HEAD_CELL)}


# ---- formatting: pure helpers -------------------------------------------------


def text(value: Any, limit: int = 300) -> str:
    """Escaped for a Paragraph, cut at `limit` characters."""
    raw = "-" if value is None else str(value)
    return escape(raw if len(raw) <= limit else raw[: limit - 3] + "...")


def newest(items: Sequence[Any], limit: int = MAX_TABLE_ROWS) -> tuple[list[Any], int]:
    """The last `limit` items and how many were left out."""
    items = list(items)
    return items[-limit:], max(len(items) - limit, 0)


# ---- building blocks -------------------------------------------------------------


def table(rows: list[list[Any]], widths: Sequence[float], header: bool = True, align_right: Sequence[int] = ()) -> Table:
    """A zebra table whose widths (fractions of the text width) fill the page; cells wrap."""
    cells = []
    for r, row in enumerate(rows):
        style = HEAD_CELL if header and r == 0 else CELL
        cells.append(
            [
                c if isinstance(c, Flowable) else Paragraph(text(c), RIGHT[style.name] if i in align_right else style)
                for i, c in enumerate(row)
            ]
        )
    result = Table(cells, colWidths=[w * TEXT_WIDTH for w in widths], repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LINEBELOW", (0, -1), (-1, -1), 0.5, colors.HexColor("#9aa7b5")),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), HEADER_BG))
    for r in range(1 if header else 0, len(rows)):
        if (r % 2 == 0) == header:
            commands.append(("BACKGROUND", (0, r), (-1, r), ZEBRA))
    result.setStyle(TableStyle(commands))
    return result


def key_values(pairs: list[tuple[str, Any]], key_width: float = 0.24) -> Table:
    rows = [[Paragraph(text(k), CELL_BOLD), Paragraph(v if isinstance(v, str) else text(v), CELL)] for k, v in pairs]
    return table(rows, [key_width, 1 - key_width], header=False)


def image(path: Path, width: float) -> Image:
    """A PNG scaled to `width`, keeping its aspect ratio."""
    pixels_w, pixels_h = ImageReader(str(path)).getSize()
    return Image(str(path), width=width, height=width * pixels_h / pixels_w)


def left_out(count: int, what: str) -> list[Flowable]:
    return [Paragraph(f"({count} older {what} not shown)", SMALL)] if count else []


# ---- the sections, one page each -------------------------------------------------
