from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviews.models import DriftAlert, JudgeVerdict, Project
from reviews.monitoring.rollups import rollups_fold
from reviews.monitoring.services import drift_evaluate
from tests import factories
from tests.monitoring.helpers import audits, decide, gate_decisions, ingest_many

URL = "admin:reviews_dashboard"


def judge(items, labels):
    JudgeVerdict.objects.bulk_create(
        JudgeVerdict(
            item=item,
            backend="openai",
            model="judge-1",
            rubric_version=1,
            score=0.9 if label == "pass" else 0.2,
            label=label,
        )
        for item, label in zip(items, labels, strict=True)
    )
    rollups_fold()


def seed(project, audited_project, reviewer, auditor, *, versions, scale):
    now = timezone.now()
    for n, version in enumerate(versions):
        gate_decisions(
            project,
            reviewer=reviewer,
            approved=3 * scale,
            wrong=scale,
            at=now - timedelta(days=n + 1),
            model_version=version,
        )
        audits(
            audited_project,
            reviewer=auditor,
            correct=2 * scale,
            wrong=scale,
            model_version=version,
            at=now - timedelta(days=n),
        )
    waiting = ingest_many(project, 2 * scale)
    judge(waiting, ["pass", "flag"] * scale)


def test_dashboard_shows_every_figure_with_tables(
    client, admin_user, project, audited_project, reviewer, auditor
):
    seed(project, audited_project, reviewer, auditor, versions=["v1", "v2"], scale=2)
    client.force_login(admin_user)
    response = client.get(reverse(URL))
    assert response.status_code == 200
    html = response.content.decode()
    for chart in (
        f"chart-accuracy-{project.pk}",
        f"chart-accuracy-{audited_project.pk}",
        "chart-queue",
        "chart-reviewers",
        "chart-interventions",
        "chart-judge",
        "chart-reasons",
        "chart-severities",
    ):
        assert f'id="{chart}"' in html
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in html
    data = response.context["data"]
    queue = {row.project.slug: row.depth for row in data.queue}
    assert queue == {"clinical": 4, "support": 0}
    # Intervention rate: 4 rejections out of 16 non-audit reviews.
    assert (data.intervention_total.successes, data.intervention_total.total) == (4, 16)
    assert (data.judge_flag_total.successes, data.judge_flag_total.total) == (2, 4)
    assert dict(data.reasons) == {"factual_error": 4, "hallucination": 4}
    assert dict(data.severities) == {"major": 8}
    reviewers = {row.username: row.total for row in data.reviewers}
    assert reviewers == {"rita": 16, "audrey": 12}
    sources = {(p.source, p.project_id, p.model_version) for p in data.accuracy}
    assert sources == {
        ("reviewed", project.pk, "v1"),
        ("reviewed", project.pk, "v2"),
        ("audit", audited_project.pk, "v1"),
        ("audit", audited_project.pk, "v2"),
    }
    assert "75.0%" in html  # reviewed accuracy per version and day
    assert 'id="accuracy-table"' in html


def test_dashboard_filters_to_one_project_and_weeks(
    client, admin_user, project, audited_project, reviewer, auditor
):
    seed(project, audited_project, reviewer, auditor, versions=["v1"], scale=1)
    client.force_login(admin_user)
    response = client.get(
        reverse(URL), {"project": audited_project.pk, "bucket": "week", "days": 7}
    )
    data = response.context["data"]
    assert data.selected == audited_project
    assert {p.source for p in data.accuracy} == {"audit"}
    assert [h.project for h in data.health] == [audited_project]
    # Every figure honours the project filter, the queue included.
    assert [row.project for row in data.queue] == [audited_project]
    assert data.bucket == "week"
    html = response.content.decode()
    assert f'id="chart-accuracy-{audited_project.pk}"' in html
    assert f'id="chart-accuracy-{project.pk}"' not in html
    assert "Clinical answers" not in html.split('id="queue-h"')[1]
    # Invalid filters fall back to the defaults instead of failing.
    response = client.get(reverse(URL), {"project": "x", "bucket": "year", "days": "-3"})
    assert response.status_code == 200
    assert response.context["data"].selected is None


def test_dashboard_query_count_does_not_grow_with_data(
    client, admin_user, project, audited_project, reviewer, auditor, django_assert_max_num_queries
):
    client.force_login(admin_user)
    seed(project, audited_project, reviewer, auditor, versions=["v1"], scale=1)
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse(URL)).status_code == 200
    for n in range(3):
        factories.make_project(name=f"Extra {n}", slug=f"extra-{n}")
    seed(project, audited_project, reviewer, auditor, versions=["v2", "v3", "v4"], scale=3)
    drift_evaluate(project=audited_project)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(reverse(URL)).status_code == 200


def test_stored_text_is_escaped_in_charts_and_tables(client, admin_user, project, reviewer):
    evil = '<script>alert("v")</script>'
    items = ingest_many(project, 2, model_version=evil)
    decide(items, reviewer=reviewer, verdict="reject", reason_code='<img src=x onerror="1">')
    client.force_login(admin_user)
    html = client.get(reverse(URL)).content.decode()
    assert evil not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;v&quot;)&lt;/script&gt;" in html


def test_members_see_only_their_projects(client, project, reviewer, audited_project, auditor):
    gate_decisions(project, reviewer=reviewer, approved=2, wrong=1)
    audits(audited_project, reviewer=auditor, correct=2, wrong=1)
    client.force_login(reviewer)
    response = client.get(reverse(URL))
    assert response.status_code == 200
    data = response.context["data"]
    assert [p.slug for p in data.projects] == ["clinical"]
    assert {p.source for p in data.accuracy} == {"reviewed"}
    assert "Support answers" not in response.content.decode()
    # Asking for someone else's project shows only what the member may see.
    response = client.get(reverse(URL), {"project": audited_project.pk})
    assert response.context["data"].selected is None


def test_dashboard_needs_a_staff_login(client, django_user_model):
    response = client.get(reverse(URL))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_open_drift_alert_is_shown_and_resolved(client, admin_user, audited_project, auditor):
    now = timezone.now()
    audits(audited_project, reviewer=auditor, correct=190, wrong=10, at=now - timedelta(days=20))
    audits(audited_project, reviewer=auditor, correct=60, wrong=40, at=now - timedelta(days=1))
    [alert] = drift_evaluate(project=audited_project)
    client.force_login(admin_user)
    html = client.get(reverse(URL)).content.decode()
    assert 'id="alerts-h"' in html
    assert "audited accuracy 60.0% (60/100)" in html
    assert "Return to gate mode" in html  # the audit accuracy is below target too
    client.post(reverse("admin:reviews_dashboard_resolve_alert", args=[alert.pk]))
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert alert.resolved_by == admin_user
    assert 'id="alerts-h"' not in client.get(reverse(URL)).content.decode()
    assert DriftAlert.objects.filter(resolved_at__isnull=True).count() == 0


@pytest.mark.parametrize("path", ["admin:index", "admin:reviews_driftalert_changelist"])
def test_admin_pages_list_the_monitoring_entries(client, admin_user, path):
    client.force_login(admin_user)
    response = client.get(reverse(path))
    assert response.status_code == 200
    if path == "admin:index":
        assert reverse(URL).encode() in response.content
        assert reverse("admin:reviews_webhookdelivery_changelist").encode() in response.content


def test_project_admin_has_webhook_and_monitoring_fields(client, admin_user, project):
    client.force_login(admin_user)
    html = client.get(reverse("admin:reviews_project_change", args=[project.pk])).content.decode()
    for name in ("webhook_url", "webhook_secret", "accuracy_target", "drift_auto_gate"):
        assert f'name="{name}"' in html
    assert Project.objects.get(pk=project.pk).webhook_secret


def test_project_admin_refuses_non_http_webhooks_and_missing_secrets(client, admin_user, project):
    client.force_login(admin_user)
    url = reverse("admin:reviews_project_change", args=[project.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: form[name].value() if form[name].value() is not None else "" for name in form.fields
    }
    data.update(
        {
            "risk_keywords": "[]",
            "reason_codes": '["factual_error"]',
            "webhook_url": "ftp://hooks.example.com/x",
        }
    )
    for prefix in ("check_rules", "rubric_criteria", "memberships"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Webhooks are sent over http or https only." in response.content.decode()
    data.update(
        {
            "webhook_url": "https://hooks.example.com/x",
            "webhook_secret": "",
            "webhook_secret_action": "remove",
        }
    )
    response = client.post(url, data)
    assert "A webhook needs a secret to sign its requests." in response.content.decode()
    project.refresh_from_db()
    assert project.webhook_url == ""
