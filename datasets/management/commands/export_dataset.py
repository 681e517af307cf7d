"""Build a training dataset export from a shell: the same service as the API and admin."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from datasets import formats
from datasets.models import ExportStatus, WrongSteps
from datasets.services import export_build, export_create
from datasets.storage import export_location
from reviews.models import Project, Severity


def _datetime(value: str):
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"Not an ISO 8601 date and time: {value!r}")
    return parsed


class Command(BaseCommand):
    help = (
        "Export final human decisions as a training dataset (SFT chat JSONL, DPO pairs, "
        "correction triplets, review log). Builds in this process unless --enqueue."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--format", required=True, choices=[spec.key for spec in formats.specs()]
        )
        parser.add_argument(
            "--project", action="append", required=True, help="project slug (repeatable)"
        )
        parser.add_argument("--name", default="")
        parser.add_argument("--decided-after", type=_datetime, help="ISO 8601, inclusive")
        parser.add_argument("--decided-before", type=_datetime, help="ISO 8601, exclusive")
        parser.add_argument("--model-name", action="append", default=[])
        parser.add_argument("--model-version", action="append", default=[])
        parser.add_argument("--status", action="append", default=[], help="final status")
        parser.add_argument("--min-severity", choices=Severity.values, default="")
        parser.add_argument("--reason-code", action="append", default=[])
        parser.add_argument("--adjudicated-only", action="store_true")
        parser.add_argument("--exclude-audit", action="store_true")
        parser.add_argument(
            "--wrong-steps",
            choices=WrongSteps.values,
            default=WrongSteps.WEIGHT,
            help="items with steps marked wrong: weight the marked turns 0 (default) or exclude",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--validation-ratio", type=float, default=0.0)
        parser.add_argument("--no-dedupe", action="store_true", help="keep repeated pairs")
        parser.add_argument("--user", help="username recorded as the creator")
        parser.add_argument(
            "--enqueue", action="store_true", help="queue the build for an RQ worker and return"
        )

    def handle(self, *args, **options):
        projects = list(Project.objects.filter(slug__in=options["project"]))
        unknown = sorted(set(options["project"]) - {p.slug for p in projects})
        if unknown:
            raise CommandError(f"Unknown project(s): {', '.join(unknown)}")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"Unknown user {options['user']!r}")
        try:
            export = export_create(
                format=options["format"],
                projects=projects,
                filters={
                    "decided_after": options["decided_after"],
                    "decided_before": options["decided_before"],
                    "model_names": options["model_name"],
                    "model_versions": options["model_version"],
                    "statuses": options["status"],
                    "min_severity": options["min_severity"],
                    "reason_codes": options["reason_code"],
                    "adjudicated_only": options["adjudicated_only"],
                    "exclude_audit": options["exclude_audit"],
                    "wrong_steps": options["wrong_steps"],
                },
                seed=options["seed"],
                validation_ratio=options["validation_ratio"],
                deduplicate=not options["no_dedupe"],
                name=options["name"],
                user=user,
                via="manage.py export_dataset",
                enqueue=options["enqueue"],
            )
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("Invalid export:\n  " + "\n  ".join(lines)) from exc
        if options["enqueue"]:
            self.stdout.write(f"Export {export.pk} queued on 'exports' (job {export.job_id}).")
            return

        def report(done: int, total: int) -> None:
            self.stderr.write(f"\r{done:,} / {total:,} rows", ending="")

        try:
            export = export_build(export_id=export.pk, on_progress=report)
        except Exception as exc:
            raise CommandError(f"Export {export.pk} failed: {exc}") from exc
        self.stderr.write("")
        if export.status != ExportStatus.SUCCEEDED:
            raise CommandError(f"Export {export.pk} is {export.status}.")
        self.stdout.write(
            f"Export {export.pk}: {export.row_count:,} rows from {export.item_count:,} items"
        )
        for split, meta in export.files.items():
            self.stdout.write(
                f"  {split}: {export_location(meta['name'])} "
                f"({meta['rows']:,} rows, sha256 {meta['sha256']})"
            )
        self.stdout.write(f"  manifest: {export_location(export.manifest_name)}")
