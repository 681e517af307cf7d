from django.core.management.base import BaseCommand

from reviews.workspace.services import assignment_expire_stale


class Command(BaseCommand):
    help = (
        "Close review claims whose lease ran out and return their items to pending review. "
        "Optional: claims already ignore expired leases."
    )

    def handle(self, *args, **options):
        closed = assignment_expire_stale()
        self.stdout.write(f"Expired {closed} claim(s).")
