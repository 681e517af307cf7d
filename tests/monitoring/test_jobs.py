from datetime import timedelta

import fakeredis
from django.utils import timezone
from rq.cron import CronScheduler

from datasets.jobs import exports_sweep_job
from reviews.judge.jobs import judge_requeue_stuck_job
from reviews.models import DeliveryStatus, DriftAlert, Project, WebhookDelivery
from reviews.monitoring.jobs import drift_evaluate_job, rollups_fold_job
from reviews.quality.jobs import reviewers_evaluate_job
from reviews.search.jobs import search_index_sweep_job
from reviews.webhooks.jobs import webhook_deliver_job, webhooks_sweep_job
from tests import factories
from tests.monitoring.helpers import audits


def test_cron_schedule_registers_the_sweeps_and_the_drift_evaluation(settings):
    for _ in range(2):  # the scheduler reloads the module: each job is registered once
        scheduler = CronScheduler(connection=fakeredis.FakeStrictRedis())
        scheduler.load_config_from_file("hitlplatform.schedule")
        jobs = [(job.func, job.queue_name, job.interval) for job in scheduler.get_jobs()]
        assert sorted(jobs, key=str) == sorted(
            [
                (judge_requeue_stuck_job, "judge", settings.HITL_RECONCILE_INTERVAL),
                (webhooks_sweep_job, "webhooks", 60),
                (drift_evaluate_job, "default", 900),
                (rollups_fold_job, "default", 60),
                (reviewers_evaluate_job, "default", 900),
                (exports_sweep_job, "default", 60),
                (search_index_sweep_job, "default", settings.HITL_SEARCH_SWEEP_INTERVAL),
            ],
            key=str,
        )


def test_drift_job_evaluates_every_project(audited_project, auditor):
    now = timezone.now()
    audits(audited_project, reviewer=auditor, correct=190, wrong=10, at=now - timedelta(days=20))
    audits(audited_project, reviewer=auditor, correct=50, wrong=50, at=now - timedelta(days=1))
    assert drift_evaluate_job() == 1
    assert drift_evaluate_job() == 0
    assert DriftAlert.objects.get().model_version == "2026-11-01"


def test_deliver_job_skips_deliveries_that_are_done_or_unknown(monitor_project, settings):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = False
    Project.objects.filter(pk=monitor_project.pk).update(webhook_url="http://127.0.0.1:9/x")
    monitor_project.refresh_from_db()
    factories.ingest(monitor_project, factories.item_payload(), factories.item_payload())
    first, second = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.DELIVERED)
    webhook_deliver_job([str(first.pk), str(second.pk), "00000000-0000-0000-0000-000000000000"])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts) == (DeliveryStatus.DELIVERED, 0)
    assert (second.status, second.attempts) == (DeliveryStatus.FAILED, 1)  # loopback refused
