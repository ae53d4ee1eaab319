"""The reliability curve as a small inline SVG for the page: drawn on the server, no script, no image file; pure.

Presentation attributes only (no style attributes), so a strict Content-Security-Policy
leaves it alone. Each point carries a <title> (a tooltip) with its decile's numbers. See docs/reports.md#can-the-exit-probability-be-read-as-a-chance.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 340, 304
LEFT, RIGHT, TOP, BOTTOM = 52, 326, 34, 254  # the plot area
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
INK, GRID, LINE, DIAGONAL = "#1d2733", "#e3e8ee", "#1f3b5c", "#8a96a5"


def _x(value: float) -> float:
    return round(LEFT + (RIGHT - LEFT) * min(max(value, 0.0), 1.0), 1)


def _y(value: float) -> float:
    return round(BOTTOM - (BOTTOM - TOP) * min(max(value, 0.0), 1.0), 1)


def svg(record: dict[str, Any], title_id: str = "reliability-title") -> Markup:
    """The curve of a drs.model.calibration record: mean predicted probability (x) against the share that left (y)."""
    deciles = record["deciles"]
    parts = [
        f'<svg class="reliability" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-labelledby="{escape(title_id)}" font-family="system-ui, sans-serif" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(title_id)}">Reliability curve on the test data: for each tenth of the {record["rows"]:,} clients, '
        "the mean predicted exit probability against the share that left</title>",
    ]
    for tick in TICKS:
        label = f"{tick:.0%}"
        parts.append(f'<line x1="{_x(tick)}" y1="{TOP}" x2="{_x(tick)}" y2="{BOTTOM}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<line x1="{LEFT}" y1="{_y(tick)}" x2="{RIGHT}" y2="{_y(tick)}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{_x(tick)}" y="{BOTTOM + 16}" font-size="11" text-anchor="middle" fill="{INK}">{label}</text>')
        parts.append(f'<text x="{LEFT - 6}" y="{_y(tick) + 4}" font-size="11" text-anchor="end" fill="{INK}">{label}</text>')
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="none" stroke="#9aa5b4" stroke-width="1"/>'
    )
    parts.append(
        f'<line x1="{_x(0)}" y1="{_y(0)}" x2="{_x(1)}" y2="{_y(1)}" stroke="{DIAGONAL}" stroke-width="1.2" stroke-dasharray="5 4"/>'
    )
    # the legend above the plot, where no point can cover it
    parts.append(f'<line x1="{LEFT}" y1="14" x2="{LEFT + 24}" y2="14" stroke="{DIAGONAL}" stroke-width="1.2" stroke-dasharray="5 4"/>')
    parts.append(f'<text x="{LEFT + 30}" y="18" font-size="11" fill="{INK}">80% means 8 in 10</text>')
    parts.append(f'<line x1="{LEFT + 150}" y1="14" x2="{LEFT + 174}" y2="14" stroke="{LINE}" stroke-width="2"/>')
    parts.append(f'<circle cx="{LEFT + 162}" cy="14" r="4" fill="{LINE}"/>')
    parts.append(f'<text x="{LEFT + 180}" y="18" font-size="11" fill="{INK}">the model</text>')
    points = " ".join(f"{_x(d['mean_predicted'])},{_y(d['observed_rate'])}" for d in deciles)
    parts.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for d in deciles:
        tip = (
            f"Tenth {d['decile']} of {len(deciles)}: {d['rows']:,} clients given {d['lowest']:.0%} to {d['highest']:.0%}, "
            f"{d['mean_predicted']:.1%} on average; {d['observed_rate']:.1%} left ({d['exits']:,})"
        )
        parts.append(
            f'<circle cx="{_x(d["mean_predicted"])}" cy="{_y(d["observed_rate"])}" r="4.5" fill="{LINE}" stroke="#fff" stroke-width="1.5">'
            f"<title>{escape(tip)}</title></circle>"
        )
    parts.append(
        f'<text x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 20}" font-size="12" text-anchor="middle" fill="{INK}">predicted exit probability</text>'
    )
    parts.append(
        f'<text x="14" y="{(TOP + BOTTOM) / 2}" font-size="12" text-anchor="middle" fill="{INK}" '
        f'transform="rotate(-90 14 {(TOP + BOTTOM) / 2})">share that left</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
