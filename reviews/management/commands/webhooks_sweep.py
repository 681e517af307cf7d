"""``manage.py webhooks_sweep``: re-enqueue webhook deliveries whose job was lost."""

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from reviews.webhooks.services import webhook_deliveries_sweep


class Command(BaseCommand):
    help = (
        "Re-enqueue pending webhook deliveries more than HITL_WEBHOOK_SWEEP_GRACE_SECONDS "
        "past due (Redis was down, a worker died). Safe to run at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Send them from this process instead of enqueuing (no Redis needed).",
        )

    def handle(self, *args, inline: bool, **options):
        try:
            count = webhook_deliveries_sweep(send_inline=inline)
        except RedisError as exc:
            raise CommandError(
                f"Cannot enqueue webhook deliveries, Redis is unavailable: {exc}. "
                "Run with --inline to send them from this process."
            ) from exc
        verb = "Sent" if inline else "Re-enqueued"
        self.stdout.write(f"{verb} {count} overdue webhook deliver{'y' if count == 1 else 'ies'}.")
