"""File imports: upload, map columns, and ingest a file's rows through the API's rules.

Every row is checked by the API's validator (``reviews.api.validation``) and
stored by the API's ingest service (``item_ingest``), a chunk of rows per
call: each stored item is complete (checks run, routed, one history row), and
a refused row stores nothing. Ingest is idempotent on ``external_id``, so a
re-run of the job or a second upload of the same file adds nothing; a row
whose id is stored with different content is refused and reported.
"""

import uuid
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from hitlplatform.queues import enqueue_on_commit
from reviews.access import Capability, may
from reviews.api.validation import validate_item
from reviews.errors import Conflict, DomainError, NotAllowed
from reviews.imports import parsing
from reviews.imports.parsing import FileUnreadable, Row
from reviews.models import ImportFormat, ImportStatus, ItemImport, ItemImportError, ReviewItem
from reviews.services.ingest import item_ingest, payload_hash

IMPORT_QUEUE = "default"
RUN_JOB = "reviews.imports.jobs.import_run_job"
STORAGE_ALIAS = "imports"


def import_storage():
    return storages[STORAGE_ALIAS]


def _refuse_unless_admin(user, project_id: int) -> None:
    if not may(user, Capability.ADMINISTER, project_id):
        raise NotAllowed("Only an admin of this project may import items into it.")


def import_upload(*, project, user, upload: UploadedFile) -> ItemImport:
    """Store an uploaded file for ``project`` as a draft import, with a suggested mapping.

    Refused (``NotAllowed``) unless ``user`` administers the project; refused
    (``DomainError`` naming ``file``) for an unknown extension, a file over
    ``HITL_IMPORT_MAX_BYTES``, or one whose first rows cannot be read. Nothing
    is ingested until ``import_confirm``.
    """
    _refuse_unless_admin(user, project.pk)
    name = PurePath(upload.name or "upload").name[:255]
    fmt = parsing.format_for(name)
    if fmt is None:
        raise DomainError(
            "Upload a .jsonl or .csv file.",
            detail={"file": ["Upload a .jsonl (JSON Lines) or .csv file."]},
        )
    limit = settings.HITL_IMPORT_MAX_BYTES
    if upload.size > limit:
        raise DomainError(
            "The file is too large.",
            detail={"file": [f"The file has {upload.size} bytes; at most {limit} are accepted."]},
        )
    upload.seek(0)
    try:
        found = parsing.preview(upload, fmt)
    except FileUnreadable as exc:
        raise DomainError(str(exc), detail={"file": [str(exc)]}) from exc
    if not found.rows:
        raise DomainError("The file holds no rows.", detail={"file": ["The file holds no rows."]})
    upload.seek(0)
    suffix = ".csv" if fmt == ImportFormat.CSV else ".jsonl"
    stored = import_storage().save(f"{project.pk}/{uuid.uuid4().hex}{suffix}", upload)
    return ItemImport.objects.create(
        project=project,
        created_by=user,
        original_name=name,
        file_name=stored,
        file_size=upload.size,
        format=fmt,
        mapping=parsing.suggest_mapping(found.columns),
    )


@dataclass
class PreviewRow:
    number: int
    cells: list[str]
    item: dict[str, str]
    errors: list[tuple[str, str]]


@dataclass
class ImportPreview:
    columns: list[str]
    rows: list[PreviewRow]


def import_preview(
    *, item_import: ItemImport, mapping: dict | None = None, defaults: dict | None = None
) -> ImportPreview:
    """The first rows of the file: their cells, the item each maps to, and its problems."""
    mapping = item_import.mapping if mapping is None else mapping
    defaults = item_import.defaults if defaults is None else defaults
    with import_storage().open(item_import.file_name, "rb") as handle:
        found = parsing.preview(handle, item_import.format)
    rows = []
    for row in found.rows:
        values = row.values or {}
        cells = [parsing.csv_preview_text(values.get(column, "")) for column in found.columns]
        item, problems = _row_item(row, item_import.format, mapping, defaults)
        shown = (
            {
                target: parsing.csv_preview_text(item.get(target, ""))
                for target in parsing.TARGET_FIELDS
            }
            if item
            else {}
        )
        rows.append(PreviewRow(number=row.number, cells=cells, item=shown, errors=problems))
    return ImportPreview(columns=found.columns, rows=rows)


def import_mapping_errors(
    *, item_import: ItemImport, mapping: dict[str, str], defaults: dict[str, str]
) -> dict[str, list[str]]:
    """Messages per field for a mapping the import cannot run with; empty when it can."""
    with import_storage().open(item_import.file_name, "rb") as handle:
        columns = parsing.preview(handle, item_import.format).columns
    errors: dict[str, list[str]] = {}
    for target, column in mapping.items():
        if target not in parsing.TARGET_FIELDS:
            errors[target] = ["Not an item field."]
        elif item_import.format == ImportFormat.CSV and column not in columns:
            errors[target] = [f"The file has no column {column!r}."]
    for target in parsing.REQUIRED_TARGETS:
        if target not in mapping and not (target in parsing.DEFAULTABLE and defaults.get(target)):
            errors.setdefault(target, []).append("Map a column to this field.")
    return errors


@transaction.atomic
def import_confirm(
    *, item_import: ItemImport, mapping: dict[str, str], defaults: dict[str, str], user
) -> ItemImport:
    """Fix the mapping of a draft import and queue its ingest job (after commit).

    Refused unless ``user`` administers the import's project and the import is
    still a draft; a mapping that leaves a required field unmapped is refused
    with messages per field.
    """
    locked = ItemImport.objects.select_for_update().get(pk=item_import.pk)
    _refuse_unless_admin(user, locked.project_id)
    if locked.status != ImportStatus.DRAFT:
        raise Conflict("This import was already started.")
    mapping = {target: column for target, column in mapping.items() if column}
    defaults = {target: value.strip() for target, value in defaults.items() if value.strip()}
    errors = import_mapping_errors(item_import=locked, mapping=mapping, defaults=defaults)
    if errors:
        raise DomainError("The mapping is incomplete.", detail=errors)
    locked.mapping, locked.defaults, locked.status = mapping, defaults, ImportStatus.QUEUED
    locked.save(update_fields=["mapping", "defaults", "status"])
    enqueue_on_commit(
        IMPORT_QUEUE,
        RUN_JOB,
        locked.pk,
        job_id=f"item-import-{locked.pk}",
        job_timeout=settings.HITL_IMPORT_JOB_TIMEOUT,
    )
    return locked


def _row_item(
    row: Row, fmt: str, mapping: dict, defaults: dict
) -> tuple[dict | None, list[tuple[str, str]]]:
    """The clean payload of ``row`` and [] , or None and its (field, message) problems."""
    if row.values is None:
        return None, [("", row.error)]
    raw, read_errors = parsing.map_row(row.values, fmt=fmt, mapping=mapping, defaults=defaults)
    clean, problems = validate_item(raw)
    problems = {**problems, **read_errors}
    if problems:
        return None, parsing.flatten_errors(problems)
    clean.pop("project", None)
    return clean, []


def _ingest_chunk(
    *, item_import: ItemImport, rows: list[tuple[int, dict]], errors: list
) -> tuple[int, int]:
    """Ingest one chunk of valid rows; refused rows go to ``errors``. (created, existing)."""
    first_row: dict[str, tuple[int, str]] = {}
    accepted: list[tuple[int, dict, str]] = []
    for number, payload in rows:
        digest = payload_hash(payload)
        seen = first_row.get(payload["external_id"])
        if seen is None:
            first_row[payload["external_id"]] = (number, digest)
            accepted.append((number, payload, digest))
        elif seen[1] != digest:
            message = f"Repeated with different content (first at row {seen[0]})."
            errors.append((number, "external_id", message))
    project = item_import.project
    for _attempt in range(2):
        stored = dict(
            ReviewItem.objects.filter(
                project=project, external_id__in=[p["external_id"] for _n, p, _d in accepted]
            ).values_list("external_id", "payload_hash")
        )
        kept = []
        for number, payload, digest in accepted:
            known = stored.get(payload["external_id"])
            if known is not None and known != digest:
                errors.append(
                    (
                        number,
                        "external_id",
                        "An item with this external_id is stored with different content.",
                    )
                )
            else:
                kept.append((number, payload, digest))
        accepted = kept
        if not accepted:
            return 0, 0
        try:
            outcome = item_ingest(
                project=project,
                payloads=[payload for _n, payload, _d in accepted],
                user=item_import.created_by,
                via=f"file import #{item_import.pk} ({item_import.original_name})",
            )
        except Conflict:
            # A concurrent submit stored one of these ids meanwhile: look again.
            continue
        return outcome.created_count, len(outcome.items) - outcome.created_count
    raise Conflict("Concurrent submits kept changing these items; run the import again.")


def _count_rows(item_import: ItemImport) -> int:
    with import_storage().open(item_import.file_name, "rb") as handle:
        return sum(1 for _row in parsing.read_rows(handle, item_import.format))


def _save_progress(item_import: ItemImport, errors: list) -> None:
    room = settings.HITL_IMPORT_MAX_ERRORS - item_import.errors_stored
    if errors and room > 0:
        ItemImportError.objects.bulk_create(
            ItemImportError(item_import=item_import, row=row, field=field[:200], message=message)
            for row, field, message in errors[:room]
        )
        item_import.errors_stored += min(room, len(errors))
    item_import.error_count += len(errors)
    errors.clear()
    ItemImport.objects.filter(pk=item_import.pk).update(
        processed_rows=item_import.processed_rows,
        created_count=item_import.created_count,
        existing_count=item_import.existing_count,
        error_count=item_import.error_count,
    )


def _fail(item_import: ItemImport, message: str) -> ItemImport:
    item_import.status = ImportStatus.FAILED
    item_import.error = message[:4000]
    item_import.finished_at = timezone.now()
    item_import.save(update_fields=["status", "error", "finished_at"])
    return item_import


def import_run(*, import_id: int) -> ItemImport:
    """Ingest the rows of a queued import, a chunk at a time, recording progress.

    The file is counted first: a file that cannot be read, or that holds more
    than ``HITL_IMPORT_MAX_ROWS`` rows, fails before anything is stored. Then
    each chunk of ``HITL_IMPORT_CHUNK_ROWS`` valid rows is one ``item_ingest``
    call (one transaction); invalid rows are recorded with their row number,
    field and message. A re-run (a retried job) starts again from the first
    row, finding the rows already stored as identical resubmits. Items'
    history names the user who uploaded the file.
    """
    with transaction.atomic():
        item_import = (
            ItemImport.objects.select_for_update().select_related("project").get(pk=import_id)
        )
        if item_import.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return item_import
        item_import.errors.all().delete()
        item_import.status = ImportStatus.RUNNING
        item_import.started_at = timezone.now()
        item_import.processed_rows = item_import.created_count = 0
        item_import.existing_count = item_import.error_count = 0
        item_import.total_rows = None
        item_import.error = ""
        item_import.save()
    item_import.errors_stored = 0
    try:
        total = _count_rows(item_import)
    except FileUnreadable as exc:
        return _fail(item_import, str(exc))
    limit = settings.HITL_IMPORT_MAX_ROWS
    if total > limit:
        return _fail(item_import, f"The file holds {total} rows; at most {limit} are accepted.")
    item_import.total_rows = total
    ItemImport.objects.filter(pk=item_import.pk).update(total_rows=total)

    chunk_rows = settings.HITL_IMPORT_CHUNK_ROWS
    errors: list[tuple[int, str, str]] = []
    pending: list[tuple[int, dict]] = []

    def flush(read: int) -> None:
        created, existing = _ingest_chunk(item_import=item_import, rows=pending, errors=errors)
        item_import.created_count += created
        item_import.existing_count += existing
        item_import.processed_rows += read
        pending.clear()
        _save_progress(item_import, errors)

    read = 0
    try:
        with import_storage().open(item_import.file_name, "rb") as handle:
            for row in parsing.read_rows(handle, item_import.format):
                read += 1
                payload, problems = _row_item(
                    row, item_import.format, item_import.mapping, item_import.defaults
                )
                if payload is None:
                    errors.extend((row.number, field, message) for field, message in problems)
                else:
                    pending.append((row.number, payload))
                if read % chunk_rows == 0:
                    flush(read - item_import.processed_rows)
            flush(read - item_import.processed_rows)
    except FileUnreadable as exc:
        # Counted once already, so only a file changed under us gets here.
        return _fail(item_import, str(exc))
    item_import.status = ImportStatus.DONE
    item_import.finished_at = timezone.now()
    item_import.save(update_fields=["status", "finished_at"])
    return item_import


def import_fail(*, import_id: int, error: str) -> None:
    """Mark an import failed (its job raised); what it stored so far stays stored."""
    item_import = ItemImport.objects.get(pk=import_id)
    if not item_import.is_finished:
        _fail(item_import, error)


def import_progress(item_import: ItemImport) -> dict[str, Any]:
    """What the import page polls: status and counts."""
    return {
        "status": item_import.status,
        "status_label": item_import.get_status_display(),
        "total_rows": item_import.total_rows,
        "processed_rows": item_import.processed_rows,
        "created": item_import.created_count,
        "existing": item_import.existing_count,
        "errors": item_import.error_count,
        "error": item_import.error,
        "finished": item_import.is_finished,
    }
