from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import DriftAlert, Project, ProjectMode
from reviews.monitoring.services import (
    Proportion,
    accuracy_series,
    drift_evaluate,
    drift_evaluate_all,
    wilson_interval,
)
from tests import factories
from tests.monitoring.helpers import audits, gate_decisions

# Newcombe (1998), "Two-sided confidence intervals for the single proportion",
# Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score, no
# continuity correction).
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_wilson_interval_matches_published_values(counts, expected):
    low, high = wilson_interval(*counts)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


def test_wilson_interval_edges():
    # All successes: upper bound 1, lower bound n / (n + z²).
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert low == pytest.approx(10 / (10 + 1.959963984540054**2))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=5e-5), pytest.approx(0.7634, abs=5e-5))
    with pytest.raises(ValueError, match="between 0 and total"):
        wilson_interval(11, 10)


def test_proportion_exposes_rate_and_bounds():
    p = Proportion(81, 263)
    assert p.rate == pytest.approx(81 / 263)
    assert (p.low, p.high) == (pytest.approx(0.2553, abs=5e-5), pytest.approx(0.3662, abs=5e-5))
    assert Proportion(0, 0).rate is None


def test_accuracy_series_buckets_reviewed_and_audit_separately(project, reviewer, audited_project):
    now = timezone.now()
    two_days_ago = now - timedelta(days=2)
    gate_decisions(project, reviewer=reviewer, approved=3, wrong=1, at=two_days_ago)
    gate_decisions(
        project, reviewer=reviewer, approved=2, wrong=0, at=now, model_version="2026-12-01"
    )
    audits(audited_project, reviewer=reviewer, correct=4, wrong=1, at=two_days_ago)

    points = accuracy_series(
        project_ids=[project.pk, audited_project.pk],
        bucket="day",
        first_day=(now - timedelta(days=30)).date(),
    )
    got = {
        (p.source, p.project_id, p.model_version, p.bucket): (
            p.accuracy.successes,
            p.accuracy.total,
        )
        for p in points
    }
    assert got == {
        ("reviewed", project.pk, "2026-11-01", two_days_ago.date()): (3, 4),
        ("reviewed", project.pk, "2026-12-01", now.date()): (2, 2),
        ("audit", audited_project.pk, "2026-11-01", two_days_ago.date()): (4, 5),
    }
    weekly = accuracy_series(
        project_ids=[project.pk], bucket="week", first_day=(now - timedelta(30)).date()
    )
    assert {p.source for p in weekly} == {"reviewed"}
    assert sum(p.accuracy.total for p in weekly) == 6
    assert all(p.bucket.weekday() == 0 for p in weekly)


def test_series_of_two_projects_sharing_a_version_stay_apart(project, reviewer):
    other = factories.make_project(name="Other", slug="other", mode="gate")
    gate_decisions(project, reviewer=reviewer, approved=4, wrong=0, model_version="v1")
    gate_decisions(other, reviewer=reviewer, approved=0, wrong=4, model_version="v1")
    gate_decisions(
        project, reviewer=reviewer, approved=1, wrong=1, model_version="v1", model_name="other-llm"
    )
    points = accuracy_series(
        project_ids=[project.pk, other.pk], bucket="day", first_day=timezone.now().date()
    )
    got = {p.series: (p.accuracy.successes, p.accuracy.total) for p in points}
    assert got == {
        (project.pk, "acme-med", "v1", "reviewed"): (4, 4),
        (project.pk, "other-llm", "v1", "reviewed"): (1, 2),
        (other.pk, "acme-med", "v1", "reviewed"): (0, 4),
    }


def test_accuracy_series_query_count_is_constant(
    project, reviewer, audited_project, django_assert_max_num_queries
):
    now = timezone.now()
    for version in ("a", "b", "c"):
        gate_decisions(project, reviewer=reviewer, approved=3, wrong=1, model_version=version)
        audits(audited_project, reviewer=reviewer, correct=2, wrong=1, model_version=version)
    with django_assert_max_num_queries(1):
        points = accuracy_series(
            project_ids=[project.pk, audited_project.pk],
            bucket="day",
            first_day=(now - timedelta(days=1)).date(),
        )
    assert len(points) == 6


def _baseline_and_window(project, reviewer, *, version, window_correct, window_wrong):
    now = timezone.now()
    audits(
        project,
        reviewer=reviewer,
        correct=190,
        wrong=10,
        at=now - timedelta(days=20),
        model_version=version,
    )
    audits(
        project,
        reviewer=reviewer,
        correct=window_correct,
        wrong=window_wrong,
        at=now - timedelta(days=2),
        model_version=version,
    )


def test_injected_accuracy_drop_raises_an_alert(audited_project, auditor):
    _baseline_and_window(
        audited_project, auditor, version="v-drop", window_correct=60, window_wrong=40
    )
    alerts = drift_evaluate(project=audited_project)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.model_version == "v-drop"
    assert (alert.baseline_correct, alert.baseline_total) == (190, 200)
    assert (alert.window_correct, alert.window_total) == (60, 100)
    assert not alert.switched_to_gate
    audited_project.refresh_from_db()
    assert audited_project.mode == ProjectMode.MONITOR
    # Evaluating again does not raise a second alert while one is open.
    assert drift_evaluate(project=audited_project) == []
    assert DriftAlert.objects.count() == 1


def test_stable_accuracy_raises_no_alert(audited_project, auditor):
    _baseline_and_window(
        audited_project, auditor, version="v-stable", window_correct=57, window_wrong=3
    )
    assert drift_evaluate(project=audited_project) == []
    assert not DriftAlert.objects.exists()


def test_drop_within_the_margin_or_without_confidence_raises_no_alert(audited_project, auditor):
    # 88% against a 95% baseline: the window's upper bound (~93%) is above 95% - 5%.
    _baseline_and_window(
        audited_project, auditor, version="v-small", window_correct=88, window_wrong=12
    )
    # A steep drop on too few audits (fewer than drift_min_samples) is not judged yet.
    _baseline_and_window(
        audited_project, auditor, version="v-few", window_correct=10, window_wrong=10
    )
    assert drift_evaluate(project=audited_project) == []


def test_drift_with_auto_gate_switches_the_project_back_to_gate_with_history(
    audited_project, auditor
):
    Project.objects.filter(pk=audited_project.pk).update(drift_auto_gate=True)
    _baseline_and_window(
        audited_project, auditor, version="v-drop", window_correct=60, window_wrong=40
    )
    [alert] = drift_evaluate_all()
    assert alert.switched_to_gate
    audited_project.refresh_from_db()
    assert audited_project.mode == ProjectMode.GATE
    record = audited_project.history.first()
    assert record.mode == ProjectMode.GATE
    assert record.history_user is None
    assert "Drift alert on v-drop" in record.history_change_reason
    assert "switched back to gate mode" in record.history_change_reason


def test_drift_is_judged_per_project_and_version(audited_project, auditor):
    other = factories.make_project(mode="monitor", audit_sample_rate=1.0, drift_min_samples=30)
    _baseline_and_window(
        audited_project, auditor, version="shared", window_correct=60, window_wrong=40
    )
    _baseline_and_window(other, auditor, version="shared", window_correct=58, window_wrong=2)
    alerts = drift_evaluate_all()
    assert [(a.project_id, a.model_version) for a in alerts] == [(audited_project.pk, "shared")]
