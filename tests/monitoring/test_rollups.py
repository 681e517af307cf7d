"""Rollups give the raw rows' figures, stay current, and cost the same at any size."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviews.models import (
    DailyCodeRollup,
    DailyDecisionRollup,
    DailyReviewerRollup,
    ItemStatus,
    JudgeVerdict,
    Project,
    ReviewItem,
    RollupState,
)
from reviews.monitoring.rollups import rollups_fold, rollups_rebuild
from reviews.monitoring.selectors import dashboard
from reviews.monitoring.services import drift_findings, period_start, window_stats
from reviews.services.decisions import item_finalize
from reviews.services.transitions import item_transition
from tests import factories
from tests.monitoring import reference
from tests.monitoring.helpers import audits, decide, ingest_many

URL = "admin:reviews_dashboard"


def judged(items, *, at, flagged_every: int = 3) -> None:
    JudgeVerdict.objects.bulk_create(
        JudgeVerdict(
            item=item,
            backend="openai",
            model="judge-1",
            rubric_version=1,
            score=0.2 if n % flagged_every == 0 else 0.9,
            label="flag" if n % flagged_every == 0 else "pass",
        )
        for n, item in enumerate(items)
    )
    JudgeVerdict.objects.filter(item__in=items).update(created_at=at)
    rollups_fold()


@pytest.fixture
def history(project, audited_project, reviewer, second_reviewer, auditor):
    """Three projects, two model names, versions shared across projects, 40 days, every verdict,
    audits, judge verdicts, three reviewers."""
    now = timezone.now()
    other = factories.make_project(name="Contracts", slug="contracts", mode="gate")
    plan = [
        # project, model name, version, days ago, (approve, correct, reject)
        (project, "acme-med", "v1", 40, (6, 1, 1)),
        (project, "acme-med", "v1", 8, (5, 0, 2)),
        (project, "acme-med", "v2", 3, (4, 2, 0)),
        (project, "other-llm", "v1", 1, (3, 0, 1)),
        (project, "acme-med", "v2", 0, (2, 1, 1)),
        (other, "acme-med", "v1", 8, (1, 0, 3)),
        (other, "acme-med", "v1", 0, (4, 1, 0)),
    ]
    people = [reviewer, second_reviewer]
    for n, (target, model_name, version, ago, counts) in enumerate(plan):
        at = now - timedelta(days=ago, hours=1) if ago else now
        for verdict, count in zip(("approve", "correct", "reject"), counts, strict=True):
            items = ingest_many(target, count, model_name=model_name, model_version=version)
            decide(
                items,
                reviewer=people[n % 2],
                verdict=verdict,
                at=at,
                reason_code=["factual_error", "format"][n % 2],
                severity=["minor", "major"][n % 2],
            )
        waiting = ingest_many(target, 4, model_name=model_name, model_version=version)
        judged(waiting, at=at)
    for version, ago, correct, wrong in [("v1", 20, 18, 2), ("v1", 2, 7, 3), ("v2", 1, 5, 0)]:
        audits(
            audited_project,
            reviewer=auditor,
            correct=correct,
            wrong=wrong,
            model_version=version,
            at=now - timedelta(days=ago),
        )
    return [project, audited_project, other]


def assert_rollups_match_raw(admin_user, projects, *, days: int = 90):
    now = timezone.now()
    ids = [p.pk for p in projects]
    first = period_start(now=now, days=days)
    data = dashboard(user=admin_user, days=days, bucket="day", now=now)

    got = {
        (p.source, p.project_id, p.model_name, p.model_version, p.bucket): (
            p.accuracy.successes,
            p.accuracy.total,
        )
        for p in data.accuracy
    }
    assert got == reference.accuracy(ids, first)
    assert {
        (r.project_id, r.bucket): (r.rate.successes, r.rate.total) for r in data.interventions
    } == reference.interventions(ids, first)
    assert {
        (r.project_id, r.bucket): (r.rate.successes, r.rate.total) for r in data.judge_flags
    } == reference.judge_flags(ids, first)
    reasons, severities = reference.codes(ids, first)
    assert dict(data.reasons) == reasons
    assert dict(data.severities) == severities
    got_reviewers = {
        r.username: (r.total, r.approved, r.corrected, r.rejected, r.audits) for r in data.reviewers
    }
    raw_reviewers = reference.reviewers(ids, first)
    assert got_reviewers == {name: row[:5] for name, row in raw_reviewers.items()}
    for r in data.reviewers:
        assert r.avg_seconds == pytest.approx(raw_reviewers[r.username][5])

    stats = window_stats(projects=projects, now=now)
    for project in projects:
        s = stats[project.pk]
        got_window = tuple((p.successes, p.total) for p in (s.reviewed, s.interventions, s.audit))
        assert got_window == reference.window(project, now), project.slug
    findings = drift_findings(projects=Project.objects.filter(pk__in=ids), now=now)
    for project in projects:
        got_drift = {
            f.model_version: (
                (f.window.successes, f.window.total),
                (f.baseline.successes, f.baseline.total),
            )
            for f in findings
            if f.project_id == project.pk
        }
        assert got_drift == reference.drift(project, now), project.slug
    return data


def rollup_rows():
    return (
        sorted(
            DailyDecisionRollup.objects.values_list(
                "project_id",
                "model_name",
                "model_version",
                "day",
                "reviewed_total",
                "reviewed_correct",
                "reviewed_corrected",
                "reviewed_rejected",
                "auto_approved",
                "auto_rejected",
                "audit_total",
                "audit_correct",
                "reviews_total",
                "reviews_changed",
                "judge_total",
                "judge_flagged",
            )
        ),
        sorted(
            DailyReviewerRollup.objects.values_list(
                "project_id",
                "reviewer_id",
                "day",
                "reviews",
                "approved",
                "corrected",
                "rejected",
                "audits",
                "seconds_spent",
            )
        ),
        sorted(DailyCodeRollup.objects.values_list("project_id", "day", "kind", "code", "count")),
    )


def test_rollup_figures_equal_the_raw_figures(history, admin_user):
    # Folded step by step as the data came in (the helpers fold, as the cron would).
    data = assert_rollups_match_raw(admin_user, history)
    assert len({p.series for p in data.accuracy}) == 6  # two projects' "acme-med v1" stay apart
    assert assert_rollups_match_raw(admin_user, history, days=7).first_day == (
        timezone.localdate() - timedelta(days=6)
    )


def test_folding_again_or_rebuilding_changes_nothing(history):
    folded = rollup_rows()
    rollups_fold()
    assert rollup_rows() == folded
    rollups_rebuild()
    assert rollup_rows() == folded
    call_command("monitoring_rollups_backfill", stdout=io.StringIO())
    assert rollup_rows() == folded


def test_fold_picks_up_an_old_decision_overturned_today(history, admin_user, reviewer):
    old = ReviewItem.objects.filter(
        project=history[0],
        status=ItemStatus.APPROVED,
        decided_at__lt=timezone.now() - timedelta(30),
    ).first()
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=old.pk)
        item_transition(item=item, to_status=ItemStatus.IN_ADJUDICATION, reason="override")
        item_finalize(
            item=item,
            verdict="reject",
            corrected_output=None,
            reason_code="unsafe",
            severity="critical",
            user=reviewer,
            reason="Overturned",
        )
    day = timezone.localtime(old.decided_at).date()
    before = DailyDecisionRollup.objects.get(
        project=history[0], model_name="acme-med", model_version="v1", day=day
    )
    rollups_fold()
    after = DailyDecisionRollup.objects.get(
        project=history[0], model_name="acme-med", model_version="v1", day=day
    )
    assert (after.reviewed_correct, after.reviewed_rejected) == (
        before.reviewed_correct - 1,
        before.reviewed_rejected + 1,
    )
    assert_rollups_match_raw(admin_user, history)


def test_a_decision_made_after_the_last_fold_shows_after_the_next(project, reviewer, admin_user):
    rollups_fold()
    items = ingest_many(project, 3)
    for item in items:
        with transaction.atomic():
            locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
            item_transition(item=locked, to_status=ItemStatus.IN_REVIEW, reason="claimed")
            item_finalize(
                item=locked,
                verdict="approve",
                corrected_output=None,
                reason_code="",
                severity="none",
                user=reviewer,
                reason="ok",
            )
    stats = lambda: window_stats(projects=[project], now=timezone.now())[project.pk]  # noqa: E731
    assert stats().reviewed.total == 0  # not folded yet
    result = rollups_fold()
    assert result.days == 1
    assert (stats().reviewed.successes, stats().reviewed.total) == (3, 3)


def test_first_fold_without_a_watermark_backfills_everything(project, reviewer, admin_user):
    items = ingest_many(project, 2)
    decide(items, reviewer=reviewer, verdict="approve", at=timezone.now() - timedelta(days=5))
    DailyDecisionRollup.objects.all().delete()
    RollupState.objects.all().delete()
    assert rollups_fold().days == -1  # a full rebuild
    assert DailyDecisionRollup.objects.get().reviewed_total == 2


def test_dashboard_says_how_fresh_its_figures_are(client, admin_user, project, reviewer):
    client.force_login(admin_user)
    assert not RollupState.objects.exists()
    html = client.get(reverse(URL)).content.decode()
    assert "The figures have not been computed yet" in html
    decide(ingest_many(project, 1), reviewer=reviewer, verdict="approve")
    html = client.get(reverse(URL)).content.decode()
    folded_at = timezone.localtime(RollupState.objects.get().folded_at)
    assert f"Figures include decisions made up to {folded_at:%Y-%m-%d %H:%M:%S}" in html


def test_backfill_command_refuses_bad_options_and_rebuilds_one_project(project, reviewer):
    decide(ingest_many(project, 2), reviewer=reviewer, verdict="reject")
    with pytest.raises(CommandError, match="--since"):
        call_command("monitoring_rollups_backfill", since="yesterday")
    with pytest.raises(CommandError, match="no project with slug nope"):
        call_command("monitoring_rollups_backfill", project=["nope"])
    DailyDecisionRollup.objects.all().delete()
    call_command(
        "monitoring_rollups_backfill",
        project=[project.slug],
        since=str(timezone.localdate() - timedelta(days=1)),
        stdout=io.StringIO(),
    )
    assert DailyDecisionRollup.objects.get().reviewed_rejected == 2


def test_dashboard_query_count_is_the_same_at_two_data_sizes(
    client, admin_user, project, audited_project, reviewer, second_reviewer, auditor
):
    client.force_login(admin_user)
    decide(ingest_many(project, 1), reviewer=reviewer, verdict="approve")
    counts = []
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse(URL), {"days": 90}).status_code == 200
    counts.append(len(small.captured_queries))

    now = timezone.now()
    for n in range(3):
        factories.make_project(name=f"Extra {n}", slug=f"extra-{n}")
    for ago in (0, 2, 9, 30, 60):
        for version in ("v1", "v2", "v3"):
            items = ingest_many(project, 3, model_version=version)
            decide(
                items,
                reviewer=[reviewer, second_reviewer][ago % 2],
                verdict="correct",
                at=now - timedelta(days=ago),
            )
            judged(ingest_many(project, 2, model_version=version), at=now - timedelta(days=ago))
        audits(audited_project, reviewer=auditor, correct=3, wrong=2, at=now - timedelta(days=ago))
    assert DailyDecisionRollup.objects.count() > 15
    with CaptureQueriesContext(connection) as large:
        assert client.get(reverse(URL), {"days": 90}).status_code == 200
    counts.append(len(large.captured_queries))
    assert counts[0] == counts[1], [q["sql"] for q in large.captured_queries]
