"""``manage.py reconcile``: re-enqueue work whose RQ job was lost (e.g. Redis was down)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from reviews.judge.services import judge_requeue_stuck


class Command(BaseCommand):
    help = (
        "Re-enqueue judge jobs for items stuck in pending_judge longer than a timeout. "
        "Safe to run at any time: judge jobs skip items already judged."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=settings.HITL_JUDGE_STUCK_MINUTES,
            help="Only items pending for longer than this (default: HITL_JUDGE_STUCK_MINUTES).",
        )

    def handle(self, *args, older_than_minutes: float, **options):
        if older_than_minutes < 0:
            raise CommandError("--older-than-minutes must not be negative.")
        try:
            result = judge_requeue_stuck(older_than=timedelta(minutes=older_than_minutes))
        except RedisError as exc:
            raise CommandError(f"Cannot enqueue judge jobs, Redis is unavailable: {exc}") from exc
        self.stdout.write(
            f"Re-enqueued {result.items} item(s) stuck in pending_judge in {result.jobs} job(s)."
        )
