"""``manage.py exports_sweep``: recover exports whose build job died or was lost."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from datasets.services import exports_sweep


class Command(BaseCommand):
    help = (
        "Re-enqueue queued exports whose job is missing, mark failed the exports whose job "
        "died or whose build stopped beating, remove the temporary files of dead builds and "
        "delete exports past HITL_EXPORT_RETENTION_DAYS. Safe at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=settings.HITL_EXPORT_STUCK_MINUTES,
            help="Only exports queued longer than this (default: HITL_EXPORT_STUCK_MINUTES); "
            "running ones are judged by their heartbeat.",
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
            f"marked {result.failed} export(s) failed whose job died or went silent; "
            f"removed {result.temp_removed} temporary file(s) of dead builds; "
            f"deleted {result.expired} export(s) past retention."
        )
