from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from reviews.roles import roles_sync_permissions


class Command(BaseCommand):
    help = (
        "Give the Reviewer, Senior reviewer and Project admin groups their permissions "
        "(run after adding models; migrate does it once)."
    )

    def handle(self, *args, **options):
        for name, count in roles_sync_permissions(
            group_model=Group, permission_model=Permission
        ).items():
            self.stdout.write(f"{name}: {count} permissions")
