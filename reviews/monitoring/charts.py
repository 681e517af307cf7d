"""Server-side SVG charts for the admin dashboards: no JavaScript, nothing fetched.

Every label may come from stored data (model versions, usernames, reason
codes), so all text goes through ``format_html``; the SVG is assembled only
from escaped fragments. Each chart has a ``<title>`` and ``<desc>`` for screen
readers, and the page shows the same numbers in a table beside it.
"""

import math
from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

PALETTE = ["#2463a6", "#c2571a", "#2f7d4f", "#7048b6", "#b1306f", "#23797a", "#8a6414", "#4a5568"]
# SVG presentation attributes, not a style attribute: the CSP allows no inline style.
FONT = "system-ui,sans-serif"


@dataclass
class LinePoint:
    x: int
    """Index into the chart's x labels."""
    y: float
    low: float | None = None
    high: float | None = None
    note: str = ""
    """Tooltip text (e.g. the sample size)."""


@dataclass
class LineSeries:
    name: str
    points: list[LinePoint] = field(default_factory=list)
    dashed: bool = False


def _join(parts) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


def _n(value: float) -> str:
    """A coordinate: format_html escapes its arguments to strings, so format numbers first."""
    return f"{value:.1f}"


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.1f}%"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _frame(*, chart_id: str, title: str, desc: str, width: int, height: int, body) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="hitl-chart" id="{id}" role="img" '
        'viewBox="0 0 {w} {h}" width="{w}" preserveAspectRatio="xMinYMin meet" '
        'aria-labelledby="{id}-title {id}-desc" font-family="{font}" font-size="11">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        id=chart_id,
        w=width,
        h=height,
        font=FONT,
        title=title,
        desc=desc,
        body=body,
    )


def line_chart(
    *,
    chart_id: str,
    title: str,
    x_labels: list[str],
    series: list[LineSeries],
    percent: bool = True,
    desc: str = "",
    width: int = 720,
    height: int = 280,
) -> SafeString:
    """Lines over shared x labels, with a shaded band where points carry low/high bounds.

    Percent charts zoom the y axis to the data (down to the lowest bound,
    rounded to 10%), so a drop from 97% to 90% is visible.
    """
    left, right, top, bottom = 52, 16, 14, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [
        v
        for s in series
        for p in s.points
        for v in (p.y, p.low, p.high)
        if v is not None and math.isfinite(v)
    ]
    if percent:
        # Zoom to the data in steps of 20% so the ticks stay round numbers.
        y_min = min(0.8, max(0.0, math.floor(min(values, default=0.0) * 5) / 5))
        y_max = 1.0
    else:
        y_min, y_max = 0.0, _nice_max(max(values, default=1.0))
    span = y_max - y_min
    tick_step = span / 4 if not percent else (0.05 if span <= 0.2 else 0.1 if span <= 0.4 else 0.2)
    ticks = round(span / tick_step)
    count = max(len(x_labels), 1)

    def px(index: int) -> float:
        if count == 1:
            return left + plot_w / 2
        return left + plot_w * index / (count - 1)

    def py(value: float) -> float:
        return top + plot_h * (1 - (value - y_min) / (y_max - y_min))

    parts = []
    for tick in range(ticks + 1):
        value = y_min + tick_step * tick
        y = py(value)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>',
                left,
                width - right,
                _n(y),
                _n(y),
                left - 6,
                _n(y + 4),
                _fmt(value, percent),
            )
        )
    step = max(1, math.ceil(count / 8))
    for index, label in enumerate(x_labels):
        if index % step and index != count - 1:
            continue
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle" fill="#555">{}</text>',
                _n(px(index)),
                top + plot_h + 16,
                label,
            )
        )
    for number, line in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        banded = [p for p in line.points if p.low is not None and p.high is not None]
        if len(banded) >= 2:
            upper = [f"{px(p.x):.1f},{py(p.high):.1f}" for p in banded]
            lower = [f"{px(p.x):.1f},{py(p.low):.1f}" for p in reversed(banded)]
            parts.append(
                format_html(
                    '<polygon points="{}" fill="{}" fill-opacity="0.13" stroke="none"/>',
                    " ".join(upper + lower),
                    color,
                )
            )
        if len(line.points) >= 2:
            parts.append(
                format_html(
                    '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}/>',
                    " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in line.points),
                    color,
                    format_html(' stroke-dasharray="{}"', "5 4") if line.dashed else "",
                )
            )
        for point in line.points:
            label = x_labels[point.x] if point.x < len(x_labels) else ""
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="3.5" fill="{}">'
                    "<title>{} {}: {} {}</title></circle>",
                    _n(px(point.x)),
                    _n(py(point.y)),
                    color,
                    line.name,
                    label,
                    _fmt(point.y, percent),
                    point.note,
                )
            )
    legend_y = height - 22
    x = left
    for number, line in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
                '<text x="{}" y="{}" fill="#333">{}</text>',
                x,
                legend_y - 10,
                color,
                x + 16,
                legend_y,
                line.name,
            )
        )
        x += 28 + 7 * len(line.name)
    if not series:
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle" fill="#777">{}</text>',
                left + plot_w / 2,
                top + plot_h / 2,
                "No data in this period",
            )
        )
    return _frame(
        chart_id=chart_id,
        title=title,
        desc=desc or f"{title}; the table beside the chart lists the same figures.",
        width=width,
        height=height,
        body=_join(parts),
    )


def bar_chart(
    *,
    chart_id: str,
    title: str,
    bars: list[tuple[str, float]],
    percent: bool = False,
    desc: str = "",
    width: int = 520,
) -> SafeString:
    """Horizontal bars, one per (label, value), largest scale first as given."""
    row, left, right, top = 22, 150, 60, 8
    height = top * 2 + row * max(len(bars), 1)
    plot_w = width - left - right
    top_value = 1.0 if percent else _nice_max(max((v for _, v in bars), default=1.0))
    parts = []
    for index, (label, value) in enumerate(bars):
        y = top + index * row
        short = label if len(label) <= 22 else label[:21] + "…"
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" fill="#333">{}<title>{}</title></text>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<text x="{}" y="{}" fill="#333">{}</text>',
                left - 6,
                y + 14,
                short,
                label,
                left,
                y + 3,
                _n(max(plot_w * value / top_value, 1.0) if value else 0.0),
                row - 6,
                PALETTE[0],
                _n(left + (plot_w * value / top_value if top_value else 0) + 6),
                y + 14,
                _fmt(value, percent),
            )
        )
    if not bars:
        parts.append(
            format_html(
                '<text x="{}" y="{}" fill="#777">{}</text>',
                left,
                top + 14,
                "No data in this period",
            )
        )
    return _frame(
        chart_id=chart_id,
        title=title,
        desc=desc or f"{title}; the table beside the chart lists the same figures.",
        width=width,
        height=height,
        body=_join(parts),
    )
