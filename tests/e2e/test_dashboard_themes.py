"""The dashboard's charts are legible in the admin's light and dark themes.

Every SVG text element of every chart: its fill against the first opaque
background behind it (both from getComputedStyle), as a WCAG 2 contrast ratio,
must reach 4.5:1; its rendered size must be at least 12 px; and no label may
run past its chart's edge. Checked with the dark theme from the browser's
preference and from the admin's theme toggle. Screenshots are saved under
tests/e2e/screenshots/ (git-ignored) for a person to look at.
"""

import pytest
from django.urls import reverse

from tests.e2e.conftest import SCREENSHOTS, login
from tests.e2e.test_dashboard import seed
from tests.monitoring.helpers import gate_decisions

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG_VERSION = "2026-12-01-finetune-contracts-long-version-name"

# For each chart text: [chart id, text, contrast ratio, rendered px, overflows its chart].
MEASURE = """
() => {
  const rgba = (value) => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const luminance = ({r, g, b}) => {
    const lin = (c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};  // the canvas
  };
  const out = [];
  for (const svg of document.querySelectorAll("svg.hitl-chart")) {
    const bg = background(svg);
    const scale = svg.getScreenCTM().a;
    const width = svg.viewBox.baseVal.width;
    for (const text of svg.querySelectorAll("text")) {
      const style = getComputedStyle(text);
      const fill = rgba(style.fill);
      const alpha = (fill ? fill.a : 0) * Number(style.fillOpacity) * Number(style.opacity);
      // The fill as painted over the background (alpha blended).
      const painted = {
        r: fill.r * alpha + bg.r * (1 - alpha),
        g: fill.g * alpha + bg.g * (1 - alpha),
        b: fill.b * alpha + bg.b * (1 - alpha),
      };
      const [hi, lo] = [luminance(painted), luminance(bg)].sort((a, b) => b - a);
      const box = text.getBBox();
      out.push([
        svg.id,
        text.textContent,
        (hi + 0.05) / (lo + 0.05),
        parseFloat(style.fontSize) * scale,
        box.x < -0.5 || box.x + box.width > width + 0.5,
      ]);
    }
  }
  return out;
}
"""


def check(page, name: str) -> list:
    page.wait_for_selector("svg.hitl-chart")
    measured = page.evaluate(MEASURE)
    assert len(measured) > 50, measured
    charts = {row[0] for row in measured}
    assert {"chart-queue", "chart-interventions", "chart-judge", "chart-reasons"} <= charts
    assert sum(1 for c in charts if c.startswith("chart-accuracy-")) == 2
    low = [row[:3] for row in measured if row[2] < 4.5]
    assert not low, f"{name}: text below 4.5:1 contrast: {low[:10]}"
    small = [row[:2] + row[3:4] for row in measured if row[3] < 12 - 0.01]
    assert not small, f"{name}: text smaller than 12 px: {small[:10]}"
    cut = [row[:2] for row in measured if row[4]]
    assert not cut, f"{name}: text running past the chart's edge: {cut}"
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=True)
    return measured


def theme(page) -> str:
    return page.evaluate("document.documentElement.dataset.theme || 'auto'")


def background_of_body(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_chart_text_is_legible_in_light_and_dark(live_server, browser, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")
    reviewer = django_user_model.objects.create_user("rita", password="x-pass-123", is_staff=True)
    auditor = django_user_model.objects.create_user("audrey", password="x-pass-123", is_staff=True)
    gate, _support = seed(reviewer, auditor)
    gate_decisions(gate, reviewer=reviewer, approved=40, wrong=2, model_version=LONG_VERSION)
    SCREENSHOTS.mkdir(exist_ok=True)
    url = f"{live_server.url}{reverse('admin:reviews_dashboard')}?days=30"

    results = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
        try:
            page = context.new_page()
            login(page, live_server.url, "admin", "admin-pass-1")
            page.goto(url)
            assert theme(page) == "auto"
            results[scheme] = check(page, scheme)
            if scheme == "light":
                assert background_of_body(page) == "rgb(255, 255, 255)"
                # The admin's own toggle: auto (light) -> dark.
                page.locator("button.theme-toggle").first.click()
                assert theme(page) == "dark"
                assert background_of_body(page) == "rgb(18, 18, 18)"
                results["toggle"] = check(page, "dark-toggle")
            else:
                assert background_of_body(page) == "rgb(18, 18, 18)"
        finally:
            context.close()

    # The same labels in every theme, and the long version's legend entry in full.
    texts = {name: sorted(row[1] for row in rows) for name, rows in results.items()}
    assert texts["light"] == texts["dark"] == texts["toggle"]
    assert f"acme-med {LONG_VERSION} (reviewed)" in texts["light"]
