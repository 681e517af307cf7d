"""The SVG charts: bands only on buckets with enough decisions, full legends, a target line."""

import re

from reviews.monitoring.admin import _point
from reviews.monitoring.charts import LineSeries, bar_chart, line_chart
from reviews.monitoring.selectors import MIN_BAND_N
from reviews.monitoring.services import Proportion

LONG = "ft-2026-12-01-contracts-and-clauses-with-a-very-long-version-name"


def chart(points, **kwargs):
    return str(
        line_chart(
            chart_id="c",
            title="Accuracy",
            x_labels=[f"d{n}" for n in range(6)],
            series=[LineSeries(name=f"acme {LONG} (reviewed)", points=points)],
            **kwargs,
        )
    )


def test_bands_only_where_a_bucket_holds_enough_decisions():
    enough, thin = MIN_BAND_N, MIN_BAND_N - 1
    points = [
        _point(0, Proportion(enough - 1, enough)),
        _point(1, Proportion(enough, enough)),
        _point(2, Proportion(thin, thin)),  # breaks the band
        _point(3, Proportion(enough - 2, enough)),
        _point(4, Proportion(enough - 2, enough)),
    ]
    svg = chart(points)
    # Two bands (buckets 0-1 and 3-4), none bridging the thin bucket 2.
    assert svg.count('class="band s0"') == 2
    assert svg.count('class="dot thin s0"') == 1
    assert f"{thin}/{thin}" in svg  # its size in the tooltip


def test_legend_shows_full_names_and_the_target_line():
    svg = chart([_point(0, Proportion(40, 50))], target=0.9)
    texts = re.findall(r'<text [^>]*class="chart-text"[^>]*>([^<]*)', svg)
    assert f"acme {LONG} (reviewed)" in texts
    assert "target 90%" in texts
    assert 'class="chart-target"' in svg
    assert 'font-size="12"' in svg


def test_chart_text_is_escaped_and_coloured_by_class():
    svg = str(bar_chart(chart_id="b", title="Reasons", bars=[('<b onclick="x">', 3)]))
    assert "<b onclick" not in svg
    assert "&lt;b onclick=&quot;x&quot;&gt;" in svg
    # Colours come from the stylesheet's theme variables, not from hard-coded greys.
    assert not re.search(r'fill="#[0-9a-fA-F]{3,6}"', svg)
