"""How the judge tier is wired in: inline queues for the demo, webhooks for items
the judge releases, and the RQ cron schedule of the reconcile sweep."""

from rq.cron import CronScheduler

from reviews.judge.services import judge_pending_items
from reviews.models import ItemStatus, ReviewItem
from reviews.models.monitoring import WebhookDelivery
from tests.factories import ingest, item_payload
from tests.judge.conftest import make_judge


def test_without_redis_the_judge_job_runs_inline_after_commit(
    judged_monitor_project, fake_judge, settings, django_capture_on_commit_callbacks
):
    settings.RQ_INLINE = True
    settings.RQ_QUEUES = {
        name: {"HOST": "127.0.0.1", "PORT": 6379, "DB": 0, "ASYNC": False}
        for name in settings.RQ_QUEUE_NAMES
    }
    make_judge(judged_monitor_project, fake_judge, max_retries=2)
    with django_capture_on_commit_callbacks(execute=True):
        passed, failing = ingest(
            judged_monitor_project,
            item_payload(output="[[judge:pass]]"),
            item_payload(output="[[judge:500]]"),
        )
    assert ReviewItem.objects.get(pk=passed.pk).status == ItemStatus.AUTO_APPROVED
    # Inline there is no retry: a transient failure is recorded at once, never lost.
    failing = ReviewItem.objects.get(pk=failing.pk)
    assert failing.status == ItemStatus.PENDING_REVIEW
    assert failing.judge_verdicts.get().label == "error"


def test_items_the_judge_releases_get_their_webhook(judged_monitor_project, fake_judge):
    judged_monitor_project.webhook_url = "https://hooks.example.com/hitl"
    judged_monitor_project.save()
    make_judge(judged_monitor_project, fake_judge)
    passed, flagged = ingest(
        judged_monitor_project,
        item_payload(output="[[judge:pass]]"),
        item_payload(output="[[judge:flag]]"),
    )
    assert not WebhookDelivery.objects.exists()
    judge_pending_items(item_ids=[passed.pk, flagged.pk])
    assert list(WebhookDelivery.objects.values_list("item_id", flat=True)) == [passed.pk]


def test_cron_schedule_runs_the_reconcile_sweep(settings):
    scheduler = CronScheduler(connection=None)
    scheduler.load_config_from_file("hitlplatform.schedule")
    (job,) = [job for job in scheduler.get_jobs() if job.queue_name == "judge"]
    assert job.func_name == "reviews.judge.jobs.judge_requeue_stuck_job"
    assert job.queue_name == "judge"
    assert job.interval == settings.HITL_RECONCILE_INTERVAL
