"""The monitoring dashboard in a real browser, with seeded data; screenshot for review."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import JudgeVerdict, Project, ProjectMode
from reviews.monitoring.rollups import rollups_fold
from reviews.monitoring.services import drift_evaluate
from tests import factories
from tests.e2e.conftest import login
from tests.monitoring.helpers import audits, gate_decisions, ingest_many

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def seed(reviewer, auditor):
    now = timezone.now()
    gate = factories.make_project(
        name="Clinical answers",
        slug="clinical",
        mode="gate",
        advice_min_reviews=60,
        accuracy_target=0.85,
        max_intervention_rate=0.1,
    )
    for day, (version, approved, wrong) in enumerate(
        [("2026-11-01", 18, 2), ("2026-11-01", 19, 1), ("2026-11-15", 20, 0), ("2026-11-15", 20, 0)]
    ):
        gate_decisions(
            gate,
            reviewer=reviewer if day % 2 else auditor,
            approved=approved,
            wrong=wrong,
            at=now - timedelta(days=4 - day, hours=2),
            model_version=version,
        )
    waiting = ingest_many(gate, 12) + ingest_many(gate, 3, prompt="Is an overdose lethal?")
    JudgeVerdict.objects.bulk_create(
        JudgeVerdict(
            item=item,
            backend="openai",
            model="judge-1",
            rubric_version=1,
            score=0.3 if n % 4 == 0 else 0.9,
            label="flag" if n % 4 == 0 else "pass",
        )
        for n, item in enumerate(waiting)
    )
    rollups_fold()
    support = factories.make_project(
        name="Support answers",
        slug="support",
        mode="monitor",
        confidence_threshold=0.5,
        audit_sample_rate=1.0,
        drift_min_samples=30,
    )
    audits(support, reviewer=auditor, correct=190, wrong=10, at=now - timedelta(days=20))
    audits(support, reviewer=auditor, correct=28, wrong=2, at=now - timedelta(days=3))
    audits(support, reviewer=auditor, correct=20, wrong=15, at=now - timedelta(days=1))
    drift_evaluate(project=support)
    return gate, support


def test_dashboard_renders_charts_and_applies_advice(
    live_server, new_page, screenshot, django_user_model
):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-1")
    reviewer = django_user_model.objects.create_user("rita", password="x-pass-123", is_staff=True)
    auditor = django_user_model.objects.create_user("audrey", password="x-pass-123", is_staff=True)
    gate, support = seed(reviewer, auditor)

    page = new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    login(page, live_server.url, "admin", "admin-pass-1")
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Monitoring dashboard").first.click()
    page.wait_for_selector(f"#chart-accuracy-{gate.pk}")

    for chart in (
        f"accuracy-{gate.pk}",
        f"accuracy-{support.pk}",
        "queue",
        "reviewers",
        "interventions",
        "judge",
        "reasons",
    ):
        box = page.locator(f"#chart-{chart}").bounding_box()
        assert box and box["width"] > 200 and box["height"] > 40, chart
    # 20 decisions a day are too few for daily bands: the automatic bucket is weeks.
    assert "by week (automatic" in page.locator("#dash-freshness").inner_text()
    # One chart per project, a line per model version with its full name in the legend,
    # and the project's target.
    gate_chart = page.locator(f"#chart-accuracy-{gate.pk}")
    legend = gate_chart.locator("text").all_text_contents()
    assert "acme-med 2026-11-01 (reviewed)" in legend
    assert "acme-med 2026-11-15 (reviewed)" in legend
    assert "target 85%" in legend
    support_chart = page.locator(f"#chart-accuracy-{support.pk}")
    assert "acme-med 2026-11-01 (audit)" in support_chart.locator("text").all_text_contents()
    # 35 audits in the last week: a band; 190+30 the weeks before: bands too.
    assert support_chart.locator("polygon.band").count() >= 1
    assert page.locator(".drift-alert").count() == 1
    assert "Support answers, 2026-11-01" in page.locator(".drift-alert").inner_text()
    health = page.locator('#health-table tr[data-project="clinical"]')
    assert "Ready for monitor mode" in health.inner_text()
    assert page.locator("#queue-table").get_by_text("Clinical answers").count() == 1
    assert page.locator("#reviewer-table").get_by_text("audrey").count() == 1
    screenshot(page, "dashboard")

    health.get_by_role("button", name="Switch to monitor mode").click()
    page.wait_for_selector(".messagelist .success")
    assert "Clinical answers is now in Monitor (HOTL)" in page.locator(".messagelist").inner_text()
    gate.refresh_from_db()
    assert gate.mode == ProjectMode.MONITOR
    assert gate.history.first().history_user.username == "admin"
    assert Project.objects.get(slug="support").mode == ProjectMode.MONITOR
    # Nothing was fetched from anywhere but this server.
    assert requests and all(url.startswith(live_server.url) for url in requests)
