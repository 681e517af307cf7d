"""Review log JSONL: teacher outputs with the final human verdict and every review.

For distillation and error analysis: one line per final item, whatever its
verdict, with its reviews oldest first, each with the steps of the
conversation it marked wrong (``steps``: turn number from 1, tool call id or
"", reason, severity, note).
"""

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from orjson import dumps, loads

from datasets.formats import ExportFormatSpec, Row, register
from datasets.models import DatasetExport
from datasets.selectors import item_rows, reviews_by_item, step_verdicts_by_review
from reviews.models import ItemStatus

FIELDS = (
    "id",
    "external_id",
    "project__slug",
    "model_name",
    "model_version",
    "confidence",
    "prompt",
    "messages_json",
    "output",
    "status",
    "final_verdict",
    "final_output",
    "final_reason_code",
    "final_severity",
    "adjudicated",
    "is_audit",
    "decided_at",
)
# Each review in a line: key -> field of the review.
REVIEW_COLUMNS = {
    "reviewer": "reviewer__username",
    "verdict": "verdict",
    "corrected_output": "corrected_output",
    "reason_code": "reason_code",
    "severity": "severity",
    "note": "note",
    "seconds_spent": "seconds_spent",
    "rubric_scores": "rubric_scores",
    "is_audit": "is_audit",
    "created_at": "created_at",
}
# Read beside the columns to find each review's steps; not written itself.
REVIEW_ID = "review_id"


def review_log_line(item: dict[str, Any], reviews: list[dict[str, Any]]) -> bytes:
    """One teacher output with its human verdict(s), for distillation and error analysis."""
    return dumps({**item, "reviews": reviews}) + b"\n"


def rows(export: DatasetExport) -> QuerySet:
    return item_rows(export, FIELDS)


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    """Reads the chunk's reviews and their steps in two queries; each line then takes
    its item's."""
    item_ids = [row[0] for row in chunk]
    reviews = reviews_by_item(item_ids, columns={**REVIEW_COLUMNS, REVIEW_ID: "id"})
    steps = step_verdicts_by_review(item_ids)
    for item_reviews in reviews.values():
        for review in item_reviews:
            review["steps"] = steps.get(review.pop(REVIEW_ID), [])

    def line(row: Row) -> bytes:
        (item_id, external_id, project, model_name, model_version, confidence) = row[:6]
        (prompt, messages, output, status, verdict, final_output) = row[6:12]
        (reason_code, severity, adjudicated, is_audit, decided_at, _history_id) = row[12:]
        record = {
            "item_id": item_id,
            "external_id": external_id,
            "project": project,
            "model_name": model_name,
            "model_version": model_version,
            "confidence": confidence,
            "messages": loads(messages),
            "prompt": prompt,
            "teacher_output": output,
            "status": status,
            "verdict": verdict,
            "final_output": final_output,
            "reason_code": reason_code,
            "severity": severity,
            "adjudicated": adjudicated,
            "is_audit": is_audit,
            "decided_at": decided_at,
        }
        return review_log_line(record, reviews[item_id])

    return line


SPEC = register(
    ExportFormatSpec(
        key="review_log",
        label="Review log JSONL (teacher outputs with human verdicts)",
        statuses=frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED}),
        default_statuses=(ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED),
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
    )
)
