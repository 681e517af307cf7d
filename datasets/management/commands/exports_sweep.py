"""``manage.py exports_sweep``: recover exports whose build job died or was lost."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from datasets.services import exports_sweep


class Command(BaseCommand):
    help = (
        "Re-enqueue queued exports whose job is missing and mark failed the exports whose "
        "job died, among those queued or running longer than a timeout. Safe at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=settings.HITL_EXPORT_STUCK_MINUTES,
            help="Only exports queued or running longer than this "
            "(default: HITL_EXPORT_STUCK_MINUTES).",
        )

    def handle(self, *args, older_than_minutes: float, **options):
        if older_than_minutes < 0:
            raise CommandError("--older-than-minutes must not be negative.")
        try:
            result = exports_sweep(older_than=timedelta(minutes=older_than_minutes))
        except RedisError as exc:
            raise CommandError(
                f"Cannot reach the export queue, Redis is unavailable: {exc}"
            ) from exc
        self.stdout.write(
            f"Re-enqueued {result.requeued} export(s) whose job was missing; "
            f"marked {result.failed} export(s) failed whose job died."
        )
