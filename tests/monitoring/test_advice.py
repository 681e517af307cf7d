from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviews.errors import DomainError
from reviews.models import Project, ProjectMode
from reviews.monitoring.services import mode_advice, mode_advice_apply, window_stats
from tests.monitoring.helpers import audits, gate_decisions


def advice_for(project):
    project.refresh_from_db()
    stats = window_stats(projects=[project], now=timezone.now())
    return mode_advice(project=project, stats=stats[project.pk])


@pytest.fixture
def gate_project(project):
    Project.objects.filter(pk=project.pk).update(
        advice_min_reviews=40, accuracy_target=0.9, max_intervention_rate=0.1
    )
    project.refresh_from_db()
    return project


def test_monitor_advice_needs_enough_reviews_and_a_lower_bound_above_target(gate_project, reviewer):
    gate_decisions(gate_project, reviewer=reviewer, approved=39, wrong=0)
    assert advice_for(gate_project) is None  # 39 < advice_min_reviews

    gate_decisions(gate_project, reviewer=reviewer, approved=1, wrong=0)
    advice = advice_for(gate_project)  # 40/40: Wilson lower bound 91.2% > 90%
    assert advice.to_mode == ProjectMode.MONITOR
    assert advice.headline == "Ready for monitor mode"
    assert "Accuracy 100.0% (95% CI 91.2%-100.0%) over 40 decisions" in advice.details
    assert "intervention rate 0.0% < 10.0% over 40 reviews" in advice.details

    gate_decisions(gate_project, reviewer=reviewer, approved=0, wrong=2)
    assert advice_for(gate_project) is None  # 40/42 = 95.2%, but the lower bound is 84.2%


def test_monitor_advice_needs_the_intervention_rate_below_the_threshold(gate_project, reviewer):
    Project.objects.filter(pk=gate_project.pk).update(
        accuracy_target=0.5, max_intervention_rate=0.04
    )
    gate_decisions(gate_project, reviewer=reviewer, approved=40, wrong=2)
    assert advice_for(gate_project) is None  # 2/42 = 4.8% interventions >= 4%
    Project.objects.filter(pk=gate_project.pk).update(max_intervention_rate=0.05)
    assert advice_for(gate_project).to_mode == ProjectMode.MONITOR


def test_decisions_outside_the_window_do_not_count(gate_project, reviewer):
    old = timezone.now() - timedelta(days=10)
    gate_decisions(gate_project, reviewer=reviewer, approved=60, wrong=0, at=old)
    assert advice_for(gate_project) is None
    Project.objects.filter(pk=gate_project.pk).update(monitoring_window_days=14)
    assert advice_for(gate_project) is not None


def test_gate_advice_appears_when_audit_accuracy_falls_below_target(audited_project, auditor):
    audits(audited_project, reviewer=auditor, correct=26, wrong=3)
    assert advice_for(audited_project) is None  # 29 audits < drift_min_samples
    audits(audited_project, reviewer=auditor, correct=1, wrong=0)
    assert advice_for(audited_project) is None  # 27/30 = 90%, not below the target
    audits(audited_project, reviewer=auditor, correct=0, wrong=1)
    advice = advice_for(audited_project)  # 27/31 = 87.1%
    assert advice.to_mode == ProjectMode.GATE
    assert advice.headline == "Return to gate mode"
    assert "Audit accuracy 87.1%" in advice.details
    assert "over 31 audit reviews" in advice.details


def test_applying_advice_switches_mode_with_an_audited_history_row(
    gate_project, reviewer, admin_user
):
    gate_decisions(gate_project, reviewer=reviewer, approved=40, wrong=0)
    mode_advice_apply(project=gate_project, to_mode=ProjectMode.MONITOR, user=admin_user)
    gate_project.refresh_from_db()
    assert gate_project.mode == ProjectMode.MONITOR
    record = gate_project.history.first()
    assert record.history_user == admin_user
    assert record.history_change_reason.startswith("Applied advice: Ready for monitor mode.")
    assert "over 40 decisions" in record.history_change_reason


def test_stale_advice_is_refused(gate_project, reviewer, admin_user):
    gate_decisions(gate_project, reviewer=reviewer, approved=10, wrong=0)
    with pytest.raises(DomainError, match="no longer holds"):
        mode_advice_apply(project=gate_project, to_mode=ProjectMode.MONITOR, user=admin_user)
    gate_project.refresh_from_db()
    assert gate_project.mode == ProjectMode.GATE
    assert gate_project.history.count() == 1  # only the creation


def test_admin_applies_advice_in_one_click(client, gate_project, reviewer, admin_user):
    gate_decisions(gate_project, reviewer=reviewer, approved=40, wrong=0)
    client.force_login(admin_user)
    page = client.get(reverse("admin:reviews_dashboard"), {"project": gate_project.pk})
    assert b"Ready for monitor mode" in page.content
    assert b"Switch to monitor mode" in page.content
    response = client.post(
        reverse("admin:reviews_dashboard_apply_advice"),
        {"project": gate_project.pk, "to_mode": "monitor"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"is now in Monitor (HOTL)" in response.content
    gate_project.refresh_from_db()
    assert gate_project.mode == ProjectMode.MONITOR
    assert gate_project.history.first().history_user == admin_user
    # Applying it twice: the advice is gone, nothing changes, the admin is told why.
    again = client.post(
        reverse("admin:reviews_dashboard_apply_advice"),
        {"project": gate_project.pk, "to_mode": "monitor"},
        follow=True,
    )
    assert b"no longer holds" in again.content


def test_reviewers_cannot_apply_advice(client, gate_project, reviewer):
    gate_decisions(gate_project, reviewer=reviewer, approved=40, wrong=0)
    client.force_login(reviewer)
    response = client.post(
        reverse("admin:reviews_dashboard_apply_advice"),
        {"project": gate_project.pk, "to_mode": "monitor"},
    )
    assert response.status_code == 404
    gate_project.refresh_from_db()
    assert gate_project.mode == ProjectMode.GATE
