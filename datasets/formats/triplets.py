"""What the two correction triplet formats (JSONL, CSV) share: columns and row source.

One line per triplet (a corrected span: old and new value), with the review's
reason, severity and reviewer. Triplets of rejected or approved items are
exported when those statuses are selected; corrected items are the default.
"""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet

from datasets.models import DatasetExport
from datasets.selectors import triplet_rows
from reviews.models import ItemStatus

TRIPLET_COLUMNS = (
    "item_id",
    "external_id",
    "project",
    "attribute",
    "old_value",
    "new_value",
    "reason",
    "severity",
    "reviewer",
    "timestamp",
)
# In TRIPLET_COLUMNS order; the build appends the item's history id.
FIELDS = (
    "item_id",
    "item__external_id",
    "item__project__slug",
    "attribute",
    "old_value",
    "new_value",
    "review__reason_code",
    "review__severity",
    "review__reviewer__username",
    "created_at",
)
STATUSES = frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED})
DEFAULT_STATUSES = (ItemStatus.CORRECTED,)


def rows(export: DatasetExport) -> QuerySet:
    return triplet_rows(export, FIELDS)


def triplet_record(row: Sequence[Any]) -> dict[str, Any]:
    """A triplet row (in TRIPLET_COLUMNS order, without the history id) as a dict."""
    return dict(zip(TRIPLET_COLUMNS, row, strict=True))
