"""``manage.py exports_quarantined``: earlier exports holding decisions quarantined since."""

from django.core.management.base import BaseCommand

from datasets.selectors import exports_with_quarantined_decisions


class Command(BaseCommand):
    help = (
        "List the built dataset exports whose manifests contain decisions that were "
        "quarantined after the build (the item ids, and the quarantines involved). "
        "Exit status 1 when there is at least one, so a pipeline can stop on it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--items", action="store_true", help="Also print the affected item ids per export."
        )

    def handle(self, *args, items: bool, **options):
        found = exports_with_quarantined_decisions()
        if not found:
            self.stdout.write("No built export contains a quarantined decision.")
            return
        for entry in found:
            export = entry["export"]
            built = export.finished_at.isoformat() if export.finished_at else "?"
            quarantines = ", ".join(str(pk) for pk in entry["quarantines"])
            self.stdout.write(
                f"export {export.pk} {export.format} {export.name!r} built {built}: "
                f"{len(entry['items'])} item(s) with quarantined decisions "
                f"(quarantine {quarantines})"
            )
            if items:
                self.stdout.write("  items: " + " ".join(str(pk) for pk in entry["items"]))
        self.stderr.write(f"{len(found)} export(s) contain quarantined decisions.")
        raise SystemExit(1)
