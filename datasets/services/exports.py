"""Dataset exports: create, queue, retry, fail and delete them.

An export is created with normalised filters and built by an RQ job on the
``exports`` queue (``datasets.services.build``). A built export never changes.
"""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from datasets import formats
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus, WrongSteps
from datasets.storage import export_files_delete, temp_entries
from hitlplatform import queues
from hitlplatform.queues import enqueue_on_commit
from reviews.models import Project, Severity
from reviews.principals import principal_label

logger = logging.getLogger(__name__)

EXPORT_QUEUE = "exports"
BUILD_JOB = "datasets.jobs.export_build_job"
MAX_VALIDATION_RATIO = 0.5
MAX_ERROR_CHARS = 4000
# An export of chosen items (the item list's bulk action) names at most this many.
MAX_ITEM_IDS = 100_000
DEAD_JOB_STATUSES = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
LOST_JOB_ERROR = (
    "The build job was lost before it finished (its worker died or Redis lost the job). "
    "Retry the export."
)
SILENT_BUILD_ERROR = (
    "The build stopped sending heartbeats for over {seconds} s (its worker was killed "
    "or lost). Retry the export."
)


def _clean_strings(values: Iterable[Any] | None, field: str, errors: dict) -> list[str]:
    values = list(values or [])
    if not all(isinstance(value, str) and value.strip() for value in values):
        errors[field] = ["Enter non-empty strings."]
        return []
    return sorted({value.strip() for value in values})


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value.astimezone(UTC).isoformat()


def export_filters_normalise(*, format: str, filters: dict[str, Any]) -> dict[str, Any]:
    """Validate export filters and return their canonical form.

    ``format`` must be registered (``datasets.formats``). Lists come back sorted
    and de-duplicated, datetimes as UTC ISO 8601, and ``statuses`` must be among
    the format's and defaults to its ``default_statuses``, the human decisions
    it can use (SFT: approved and corrected; DPO: corrected only; triplets:
    corrected; review log: approved, corrected, rejected). The date range is on
    ``decided_at``, after inclusive, before exclusive. ``item_ids`` (present
    only when given: the item list's "export the selection") keeps just those
    items. ``wrong_steps`` "exclude" (present only then) leaves out items whose
    conversation has a step marked wrong; the default, "weight", keeps them and
    the SFT format weights the marked turns 0. Raises ``ValidationError`` with
    messages per field.
    """
    errors: dict[str, list[str]] = {}
    try:
        spec = formats.get(format)
    except formats.UnknownFormat:
        raise ValidationError({"format": [f"Unknown format '{format}'."]}) from None
    allowed, default = spec.statuses, spec.default_statuses
    statuses = _clean_strings(filters.get("statuses"), "statuses", errors) or sorted(default)
    unknown = sorted(set(statuses) - allowed)
    if unknown:
        errors["statuses"] = [
            f"Not available for {format}: {', '.join(unknown)}. "
            f"Choose from {', '.join(sorted(allowed))}."
        ]
    min_severity = filters.get("min_severity") or ""
    if min_severity and min_severity not in Severity.values:
        errors["min_severity"] = [f"Choose one of {', '.join(Severity.values)}."]
    after, before = filters.get("decided_after"), filters.get("decided_before")
    for field, value in (("decided_after", after), ("decided_before", before)):
        if value is not None and not isinstance(value, datetime):
            errors[field] = ["Enter a date and time."]
    if isinstance(after, datetime) and isinstance(before, datetime) and after >= before:
        errors["decided_before"] = ["Must be later than decided_after."]
    normalised = {
        "statuses": statuses,
        "decided_after": _iso(after) if isinstance(after, datetime) else None,
        "decided_before": _iso(before) if isinstance(before, datetime) else None,
        "model_names": _clean_strings(filters.get("model_names"), "model_names", errors),
        "model_versions": _clean_strings(filters.get("model_versions"), "model_versions", errors),
        "min_severity": min_severity,
        "reason_codes": _clean_strings(filters.get("reason_codes"), "reason_codes", errors),
        "adjudicated_only": bool(filters.get("adjudicated_only", False)),
        "exclude_audit": bool(filters.get("exclude_audit", False)),
    }
    if filters.get("item_ids") is not None:
        # Only present when chosen, so the filters of other exports read as before.
        item_ids = list(filters["item_ids"])
        if not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in item_ids):
            errors["item_ids"] = ["Enter item ids (integers)."]
        elif not item_ids or len(item_ids) > MAX_ITEM_IDS:
            errors["item_ids"] = [f"Choose between 1 and {MAX_ITEM_IDS} items."]
        else:
            normalised["item_ids"] = sorted(set(item_ids))
    wrong_steps = filters.get("wrong_steps") or WrongSteps.WEIGHT
    if wrong_steps not in WrongSteps.values:
        errors["wrong_steps"] = [f"Choose one of {', '.join(WrongSteps.values)}."]
    elif wrong_steps == WrongSteps.EXCLUDE:
        # Only present when chosen, so the filters of other exports read as before.
        normalised["wrong_steps"] = str(wrong_steps)
    if errors:
        raise ValidationError(errors)
    return normalised


@transaction.atomic
def export_create(
    *,
    format: str,
    projects: list[Project],
    filters: dict[str, Any],
    seed: int = 0,
    validation_ratio: float = 0.0,
    deduplicate: bool = True,
    name: str = "",
    user=None,
    via: str = "",
    enqueue: bool = True,
) -> DatasetExport:
    """Record a new export and (by default) queue its build on the ``exports`` queue.

    The caller checks that it may export every project in ``projects``. The job
    is enqueued after commit; with ``enqueue=False`` the caller builds it itself
    (``export_build``), as the ``export_dataset`` command does.
    """
    normalised = export_filters_normalise(format=format, filters=filters)
    errors: dict[str, list[str]] = {}
    if not projects:
        errors["projects"] = ["Choose at least one project."]
    if not 0.0 <= validation_ratio <= MAX_VALIDATION_RATIO:
        errors["validation_ratio"] = [f"Must be between 0 and {MAX_VALIDATION_RATIO}."]
    if errors:
        raise ValidationError(errors)
    normalised = {"projects": sorted(p.slug for p in projects), **normalised}
    export = DatasetExport.objects.create(
        name=name,
        format=format,
        filters=normalised,
        seed=seed,
        validation_ratio=validation_ratio,
        deduplicate=deduplicate,
        created_by=user,
        created_via=via or principal_label(user),
    )
    export.projects.set(projects)
    if enqueue:
        export_enqueue(export=export)
    return export


def export_enqueue(*, export: DatasetExport) -> None:
    """Queue the build of ``export`` once the current transaction commits.

    Each attempt gets its own job id, so what RQ later says about a dead
    attempt's job never touches the next one.
    """
    export.job_id = f"export-{export.pk}-{uuid.uuid4().hex[:8]}"
    DatasetExport.objects.filter(pk=export.pk).update(job_id=export.job_id)
    enqueue_on_commit(
        EXPORT_QUEUE,
        BUILD_JOB,
        export.pk,
        job_id=export.job_id,
        job_timeout=settings.HITL_EXPORT_JOB_TIMEOUT,
        result_ttl=86400,
        failure_ttl=7 * 86400,
    )


@transaction.atomic
def export_retry(*, export: DatasetExport) -> DatasetExport:
    """Queue a failed export again. Built or running exports are left alone."""
    locked = DatasetExport.objects.select_for_update().get(pk=export.pk)
    if locked.status != ExportStatus.FAILED:
        raise ValidationError({"status": ["Only a failed export can be retried."]})
    locked.status = ExportStatus.QUEUED
    locked.error = ""
    locked.progress = 0.0
    locked.rows_done = 0
    locked.save(update_fields=["status", "error", "progress", "rows_done"])
    export_enqueue(export=locked)
    return locked


def export_fail(*, export_id: int, error: str, build_id: str | None = None) -> bool:
    """Mark an unbuilt export failed with ``error``; True when it did. A built export
    never changes.

    With ``build_id``, only that build attempt, while it runs, is failed: a
    stale build or sweep never fails a newer attempt, nor rewrites the error
    of an export already failed.
    """
    with transaction.atomic():
        export = DatasetExport.objects.select_for_update().get(pk=export_id)
        if export.status == ExportStatus.SUCCEEDED:
            return False
        if build_id is not None and (
            export.build_id != build_id or export.status != ExportStatus.RUNNING
        ):
            return False
        export.status = ExportStatus.FAILED
        export.error = error[:MAX_ERROR_CHARS]
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "error", "finished_at"])
        # Items a concurrent build had already recorded on its own connection.
        DatasetExportItem.objects.filter(export_id=export_id).delete()
    logger.warning("Export %s failed: %s", export_id, error)
    return True


@transaction.atomic
def export_delete(*, export: DatasetExport) -> None:
    """Delete an export that is not running: its row, its item list and its files.

    The files go from the export storage only after the rows are gone for good
    (on commit), so a failed delete leaves a complete export behind.
    """
    locked = DatasetExport.objects.select_for_update().get(pk=export.pk)
    if locked.status == ExportStatus.RUNNING:
        raise ValidationError({"status": ["A running export cannot be deleted."]})
    names = [locked.file_name(split) for split in locked.files]
    names.append(locked.manifest_name)
    locked.delete()
    transaction.on_commit(lambda: export_files_delete(names))


@dataclass
class ExportSweep:
    requeued: int = 0
    """Queued exports whose job was missing, enqueued again."""
    failed: int = 0
    """Exports whose job died or whose build went silent, marked failed (ready for a retry)."""
    temp_removed: int = 0
    """Temporary files and incomplete uploads of builds no longer running, removed."""
    expired: int = 0
    """Exports past ``HITL_EXPORT_RETENTION_DAYS``, deleted with their files."""


def exports_sweep(*, older_than: timedelta | None = None) -> ExportSweep:
    """Recover exports whose build died, clear their leftovers, apply retention.

    - Queued for longer than ``older_than`` (default ``HITL_EXPORT_STUCK_MINUTES``)
      and Redis has no job for it (Redis was down when it was created, or lost
      its data): enqueued again (at once; the sweep runs outside a transaction).
      Queued and its job failed, was stopped or canceled: marked failed.
    - Running and its heartbeat older than ``HITL_EXPORT_HEARTBEAT_TIMEOUT``
      seconds (by the database's clock): its build is dead (worker killed,
      machine lost) and is marked failed, with the job's error when RQ recorded
      one. It is not re-enqueued: a build that kills its worker (out of memory)
      would do it again; a person retries it. Should the build still be alive,
      it finds its export taken at its next chunk and stops without publishing.
      A slow build keeps beating and is left alone.
    - Temporary files (in this machine's ``HITL_EXPORT_DIR``) and incomplete
      S3 uploads of builds that are not running any more are removed.
    - With ``HITL_EXPORT_RETENTION_DAYS`` set, exports built or failed longer
      ago than that are deleted with their files (``export_delete``).

    A Redis or storage error propagates, so the cron job or command fails visibly.
    """
    if older_than is None:
        older_than = timedelta(minutes=settings.HITL_EXPORT_STUCK_MINUTES)
    timeout = settings.HITL_EXPORT_HEARTBEAT_TIMEOUT
    queue = queues.get_queue(EXPORT_QUEUE)
    result = ExportSweep()
    silent_since = ExpressionWrapper(
        Now() - timedelta(seconds=timeout), output_field=DateTimeField()
    )
    stale = (
        DatasetExport.objects.annotate(beat=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(
            Q(status=ExportStatus.QUEUED, created_at__lt=timezone.now() - older_than)
            | Q(status=ExportStatus.RUNNING, beat__lt=silent_since)
        )
        .order_by("pk")
    )
    for export in stale:
        try:
            job = Job.fetch(export.job_id, connection=queue.connection) if export.job_id else None
        except NoSuchJobError:
            job = None
        status = job.get_status() if job is not None else None
        if export.status == ExportStatus.QUEUED:
            if job is None:
                export_enqueue(export=export)
                result.requeued += 1
            elif status in DEAD_JOB_STATUSES:
                result.failed += export_fail(export_id=export.pk, error=_death(job, status))
            continue
        if status in DEAD_JOB_STATUSES:
            error = _death(job, status)
        elif job is None and export.job_id:
            error = LOST_JOB_ERROR
        else:
            error = SILENT_BUILD_ERROR.format(seconds=timeout)
        result.failed += export_fail(export_id=export.pk, error=error, build_id=export.build_id)
    result.temp_removed = _temp_remove()
    result.expired = _retention_apply()
    if result.requeued or result.failed or result.temp_removed or result.expired:
        logger.warning(
            "Export sweep: %s requeued, %s failed, %s temporary files removed, %s expired",
            result.requeued,
            result.failed,
            result.temp_removed,
            result.expired,
        )
    return result


def _death(job: Job, status: JobStatus) -> str:
    latest = job.latest_result()
    reason = ((latest and latest.exc_string) or "").strip().splitlines()
    detail = reason[-1] if reason else f"the job was {status.value}"
    return f"The build job died: {detail}"


def _temp_remove() -> int:
    """Remove the temporary files and uploads of every build that is not live.

    Listed before the live builds are read: a file that exists then and belongs
    to a live build is seen as live (a build is marked running before it
    creates a file), so no live build loses one.
    """
    entries = temp_entries()
    if not entries:
        return 0
    live = dict(
        DatasetExport.objects.filter(status=ExportStatus.RUNNING).values_list("pk", "build_id")
    )
    removed = 0
    for entry in entries:
        if entry.export_id in live and entry.build_id in (None, live[entry.export_id]):
            continue
        entry.remove()
        removed += 1
    return removed


def _retention_apply() -> int:
    days = settings.HITL_EXPORT_RETENTION_DAYS
    if days <= 0:
        return 0
    expired = DatasetExport.objects.filter(
        status__in=[ExportStatus.SUCCEEDED, ExportStatus.FAILED],
        finished_at__lt=timezone.now() - timedelta(days=days),
    ).order_by("pk")
    for export in expired:
        export_delete(export=export)
    return len(expired)
