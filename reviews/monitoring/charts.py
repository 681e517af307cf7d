"""Server-side SVG charts for the admin dashboards: no JavaScript, nothing fetched.

Every label may come from stored data (model versions are client-supplied
text, so are usernames and reason codes), so all text goes through
``format_html``; the SVG is assembled only from escaped fragments. Each chart
has a ``<title>`` and ``<desc>`` for screen readers, and the page shows the
same numbers in a table beside it.

Colours come from CSS (static/reviews/dashboard.css) through class names, so
the charts follow the admin's light and dark themes: text uses the admin's
``--body-fg`` / ``--body-quiet-color``, series ``--hitl-series-N``. The
presentation attributes are only a fallback (``currentColor``) for an SVG
shown without the stylesheet. Text is 12 px and charts are drawn at their
natural width (the page scrolls a chart sideways rather than shrink its text).
"""

import math
from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

SERIES_STYLES = 8
"""Classes s0 … s7, coloured in dashboard.css; further series reuse them, dashed or not."""
FONT = "system-ui,sans-serif"
FONT_SIZE = 12
LEGEND_ROW = 20
CHAR_WIDTH = 7.0
"""A generous average glyph width at 12 px, for sizing label margins."""


@dataclass
class LinePoint:
    x: int
    """Index into the chart's x labels."""
    y: float
    low: float | None = None
    high: float | None = None
    """The band's bounds, set only where the bucket holds enough data for one."""
    note: str = ""
    """Tooltip text (e.g. the sample size)."""
    thin: bool = False
    """Too few data for a band: drawn as a hollow marker."""


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
        return f"{value * 100:.0f}%" if round(value * 100, 6).is_integer() else f"{value:.1%}"
    if float(value).is_integer():
        return f"{int(value):,}"
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
        'viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'aria-labelledby="{id}-title {id}-desc" font-family="{font}" font-size="{size}">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        id=chart_id,
        w=width,
        h=height,
        font=FONT,
        size=FONT_SIZE,
        title=title,
        desc=desc,
        body=body,
    )


def _text(x, y, content, *, anchor: str = "start", quiet: bool = False, tip: str = ""):
    return format_html(
        '<text x="{}" y="{}" text-anchor="{}" class="{}" fill="currentColor">{}{}</text>',
        _n(x),
        _n(y),
        anchor,
        "chart-text chart-quiet" if quiet else "chart-text",
        content,
        format_html("<title>{}</title>", tip) if tip else "",
    )


def _runs(points: list[LinePoint]) -> list[list[LinePoint]]:
    """Consecutive banded points: a band never bridges a bucket without one."""
    runs, current = [], []
    for point in points:
        if point.low is not None and point.high is not None:
            if current and point.x != current[-1].x + 1:
                runs.append(current)
                current = []
            current.append(point)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def line_chart(
    *,
    chart_id: str,
    title: str,
    x_labels: list[str],
    series: list[LineSeries],
    percent: bool = True,
    desc: str = "",
    width: int = 760,
    plot_height: int = 200,
    target: float | None = None,
    target_label: str = "target",
) -> SafeString:
    """Lines over shared x labels, shaded bands where points carry bounds, a legend below.

    Percent charts zoom the y axis to the data and the target (down to the
    lowest bound, in steps of 20%), so a drop from 97% to 90% is visible. The
    legend lists every series by its full name, one per row.
    """
    left, right, top = 56, 92 if target is not None else 40, 14
    plot_w = width - left - right
    legend_top = top + plot_height + 30  # room for the x labels
    height = legend_top + LEGEND_ROW * max(len(series), 1) + 6
    values = [
        v
        for s in series
        for p in s.points
        for v in (p.y, p.low, p.high)
        if v is not None and math.isfinite(v)
    ]
    if target is not None:
        values.append(target)
    if percent:
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
        return top + plot_height * (1 - (value - y_min) / (y_max - y_min))

    parts = []
    for tick in range(ticks + 1):
        value = y_min + tick_step * tick
        y = py(value)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-grid" stroke="currentColor" '
                'stroke-opacity="0.2"/>',
                left,
                left + plot_w,
                _n(y),
                _n(y),
            )
        )
        parts.append(_text(left - 8, y + 4, _fmt(value, percent), anchor="end"))
    step = max(1, math.ceil(count / 8))
    for index, label in enumerate(x_labels):
        if index % step and index != count - 1:
            continue
        if index != count - 1 and count - 1 - index < step / 2:
            continue  # too close to the last label, which is always shown
        parts.append(_text(px(index), top + plot_height + 18, label, anchor="middle"))
    if target is not None:
        y = py(target)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-target" stroke="currentColor" '
                'stroke-width="1.5" stroke-dasharray="2 3"/>',
                left,
                left + plot_w,
                _n(y),
                _n(y),
            )
        )
        parts.append(_text(left + plot_w + 6, y + 4, f"{target_label} {_fmt(target, percent)}"))
    for number, line in enumerate(series):
        style = f"s{number % SERIES_STYLES}"
        dashed = line.dashed or (number // SERIES_STYLES) % 2 == 1
        for run in _runs(line.points):
            upper = [f"{px(p.x):.1f},{py(p.high):.1f}" for p in run]
            lower = [f"{px(p.x):.1f},{py(p.low):.1f}" for p in reversed(run)]
            parts.append(
                format_html(
                    '<polygon points="{}" class="band {}" fill="currentColor" '
                    'fill-opacity="0.12" stroke="none"/>',
                    " ".join(upper + lower),
                    style,
                )
            )
        if len(line.points) >= 2:
            parts.append(
                format_html(
                    '<polyline points="{}" class="line {}" fill="none" stroke="currentColor" '
                    'stroke-width="2"{}/>',
                    " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in line.points),
                    style,
                    format_html(' stroke-dasharray="{}"', "6 4") if dashed else "",
                )
            )
        for point in line.points:
            label = x_labels[point.x] if point.x < len(x_labels) else ""
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="{}" class="{}" fill="currentColor">'
                    "<title>{} {}: {} {}</title></circle>",
                    _n(px(point.x)),
                    _n(py(point.y)),
                    "3" if point.thin else "3.5",
                    f"dot thin {style}" if point.thin else f"dot {style}",
                    line.name,
                    label,
                    _fmt(point.y, percent),
                    point.note,
                )
            )
    for number, line in enumerate(series):
        style = f"s{number % SERIES_STYLES}"
        dashed = line.dashed or (number // SERIES_STYLES) % 2 == 1
        y = legend_top + LEGEND_ROW * number + 14
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="line {}" stroke="currentColor" '
                'stroke-width="3"{}/>',
                left,
                left + 24,
                _n(y - 4),
                _n(y - 4),
                style,
                format_html(' stroke-dasharray="{}"', "6 4") if dashed else "",
            )
        )
        parts.append(_text(left + 32, y, line.name))
    if not series:
        parts.append(
            _text(
                left + plot_w / 2, top + plot_height / 2, "No data in this period", anchor="middle"
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
    width: int = 480,
) -> SafeString:
    """Horizontal bars, one per (label, value), in the order given.

    The label column is as wide as the longest label needs (up to a third of
    the chart; longer labels are cut with the full text in a tooltip, and the
    table beside the chart has it too).
    """
    row, right, top = 24, 64, 8
    longest = max((len(label) for label, _ in bars), default=8)
    left = int(min(max(60, longest * CHAR_WIDTH + 14), width / 3))
    fits = int((left - 14) / CHAR_WIDTH)
    height = top * 2 + row * max(len(bars), 1)
    plot_w = width - left - right
    top_value = 1.0 if percent else _nice_max(max((v for _, v in bars), default=1.0))
    parts = []
    for index, (label, value) in enumerate(bars):
        y = top + index * row
        short = label if len(label) <= fits else label[: fits - 1] + "…"
        length = plot_w * value / top_value if top_value else 0.0
        parts.append(
            _text(left - 8, y + 16, short, anchor="end", tip=label if short != label else "")
        )
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="bar s0" fill="currentColor"/>',
                left,
                y + 4,
                _n(max(length, 1.0) if value else 0.0),
                row - 8,
            )
        )
        parts.append(_text(left + length + 6, y + 16, _fmt(value, percent)))
    if not bars:
        parts.append(_text(left, top + 16, "No data in this period", quiet=True))
    return _frame(
        chart_id=chart_id,
        title=title,
        desc=desc or f"{title}; the table beside the chart lists the same figures.",
        width=width,
        height=height,
        body=_join(parts),
    )
