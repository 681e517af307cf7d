"""Dataset exports: create, queue, retry, fail and delete them.

An export is created with normalised filters and built by an RQ job on the
``exports`` queue (``datasets.services.build``). A built export never changes.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from datasets import formats
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus
from datasets.storage import export_path
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
    items. Raises ``ValidationError`` with messages per field.
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
    """Queue the build of ``export`` once the current transaction commits."""
    export.job_id = f"export-{export.pk}"
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


def export_fail(*, export_id: int, error: str) -> None:
    """Mark an unbuilt export failed with ``error``. A built export never changes."""
    with transaction.atomic():
        export = DatasetExport.objects.select_for_update().get(pk=export_id)
        if export.status == ExportStatus.SUCCEEDED:
            return
        export.status = ExportStatus.FAILED
        export.error = error[:MAX_ERROR_CHARS]
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "error", "finished_at"])
        # Items a concurrent build had already recorded on its own connection.
        DatasetExportItem.objects.filter(export_id=export_id).delete()
    logger.warning("Export %s failed: %s", export_id, error)


@transaction.atomic
def export_delete(*, export: DatasetExport) -> None:
    """Delete an export that is not running: its row, its item list and its files.

    The files go only after the rows are gone for good (on commit), so a failed
    delete leaves a complete export behind.
    """
    locked = DatasetExport.objects.select_for_update().get(pk=export.pk)
    if locked.status == ExportStatus.RUNNING:
        raise ValidationError({"status": ["A running export cannot be deleted."]})
    paths = [export_path(locked.file_name(split)) for split in locked.files]
    paths.append(export_path(locked.manifest_name))
    locked.delete()
    transaction.on_commit(lambda: [path.unlink(missing_ok=True) for path in paths])


@dataclass
class ExportSweep:
    requeued: int = 0
    """Queued exports whose job was missing, enqueued again."""
    failed: int = 0
    """Exports whose job died, marked failed (ready for a retry)."""


def exports_sweep(*, older_than: timedelta | None = None) -> ExportSweep:
    """Recover exports whose build job is gone, so none stays queued or running forever.

    Looks at exports queued (by creation) or running (by start) for longer than
    ``older_than`` (default ``HITL_EXPORT_STUCK_MINUTES``):

    - queued, and Redis has no job for it (Redis was down when it was created,
      or lost its data): enqueued again (after commit; the sweep runs outside a
      transaction, so at once);
    - queued or running, and its job failed, was stopped or canceled (RQ fails
      the job of a work horse that died): marked failed with the job's error;
      running with no job left: marked failed with ``LOST_JOB_ERROR``; either
      way someone can retry it.

    A build that is merely slow keeps its job and is left alone. A Redis error
    propagates, so the cron job or command fails visibly.
    """
    if older_than is None:
        older_than = timedelta(minutes=settings.HITL_EXPORT_STUCK_MINUTES)
    cutoff = timezone.now() - older_than
    queue = queues.get_queue(EXPORT_QUEUE)
    result = ExportSweep()
    stale = DatasetExport.objects.filter(
        Q(status=ExportStatus.QUEUED, created_at__lt=cutoff)
        | Q(status=ExportStatus.RUNNING, started_at__lt=cutoff)
    ).order_by("pk")
    for export in stale:
        try:
            job = Job.fetch(export.job_id, connection=queue.connection) if export.job_id else None
        except NoSuchJobError:
            job = None
        status = job.get_status() if job is not None else None
        if job is None and export.status == ExportStatus.QUEUED:
            export_enqueue(export=export)
            result.requeued += 1
        elif job is None:
            export_fail(export_id=export.pk, error=LOST_JOB_ERROR)
            result.failed += 1
        elif status in DEAD_JOB_STATUSES:
            latest = job.latest_result()
            reason = ((latest and latest.exc_string) or "").strip().splitlines()
            detail = reason[-1] if reason else f"the job was {status.value}"
            export_fail(export_id=export.pk, error=f"The build job died: {detail}")
            result.failed += 1
    if result.requeued or result.failed:
        logger.warning("Export sweep: %s requeued, %s failed", result.requeued, result.failed)
    return result
