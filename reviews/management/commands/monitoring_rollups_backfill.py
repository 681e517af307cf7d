"""``manage.py monitoring_rollups_backfill``: rebuild the monitoring rollups from the raw rows."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from reviews.models import Project
from reviews.monitoring.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily monitoring rollups (dashboard, drift, mode advice) from items, "
        "reviews and judge verdicts. Idempotent: safe to re-run. Without options it rebuilds "
        "everything and resets the fold's watermark."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", help="A project slug (repeatable).")
        parser.add_argument("--since", help="First day to rebuild (YYYY-MM-DD).")

    def handle(self, *args, **options):
        since = None
        if options["since"]:
            try:
                since = date.fromisoformat(options["since"])
            except ValueError as exc:
                raise CommandError(f"--since: {exc}; expected YYYY-MM-DD.") from exc
        project_ids = None
        if options["project"]:
            found = dict(
                Project.objects.filter(slug__in=options["project"]).values_list("slug", "pk")
            )
            missing = sorted(set(options["project"]) - set(found))
            if missing:
                raise CommandError(f"--project: no project with slug {', '.join(missing)}.")
            project_ids = list(found.values())
        result = rollups_rebuild(project_ids=project_ids, since=since)
        self.stdout.write(f"Rebuilt the monitoring rollups: {result.rows} rows.")
