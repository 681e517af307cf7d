"""Read paths: who sees which exports, and the rows an export reads."""

from typing import Any

from django.db.models import Max, QuerySet, TextField
from django.db.models.functions import Cast

from datasets import formats
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus
from reviews.access import Capability, projects_where
from reviews.models import CorrectionTriplet, Review, ReviewItem
from reviews.models.work import SEVERITY_RANK


def exports_visible_to(principal) -> QuerySet[DatasetExport]:
    """Exports in whose every project the principal may download exports.

    Seniors, project admins, the project's API key and superusers; an export
    spanning several projects needs the capability in each of them.
    """
    return DatasetExport.objects.for_projects(
        projects_where(principal, Capability.DOWNLOAD_EXPORTS)
    )


def exports_where(principal, capability: Capability) -> QuerySet[DatasetExport]:
    """Exports in whose every project ``principal`` holds ``capability`` (the API's rule).

    An export whose projects were all deleted belongs to no project, so to nobody here.
    """
    return DatasetExport.objects.for_projects(projects_where(principal, capability)).exclude(
        projects=None
    )


def export_entries_visible_to(principal) -> QuerySet[DatasetExportItem]:
    """Items of built exports only: a build records its items before it is marked built."""
    return DatasetExportItem.objects.filter(
        export__in=exports_visible_to(principal).filter(status=ExportStatus.SUCCEEDED)
    )


def selected_items(export: DatasetExport) -> QuerySet[ReviewItem]:
    """The final items an export's filters select (see datasets.services.export_filters)."""
    filters: dict[str, Any] = export.filters
    items = ReviewItem.objects.filter(
        project__in=export.projects.all(), status__in=filters["statuses"]
    )
    if filters.get("decided_after"):
        items = items.filter(decided_at__gte=filters["decided_after"])
    if filters.get("decided_before"):
        items = items.filter(decided_at__lt=filters["decided_before"])
    if filters.get("model_names"):
        items = items.filter(model_name__in=filters["model_names"])
    if filters.get("model_versions"):
        items = items.filter(model_version__in=filters["model_versions"])
    if filters.get("min_severity"):
        rank = SEVERITY_RANK[filters["min_severity"]]
        items = items.filter(
            final_severity__in=[str(s) for s, r in SEVERITY_RANK.items() if r >= rank]
        )
    if filters.get("reason_codes"):
        items = items.filter(final_reason_code__in=filters["reason_codes"])
    if filters.get("adjudicated_only"):
        items = items.filter(adjudicated=True)
    if filters.get("exclude_audit"):
        items = items.filter(is_audit=False)
    if filters.get("item_ids"):
        items = items.filter(pk__in=filters["item_ids"])
    return items


def export_source_rows(export: DatasetExport) -> QuerySet:
    """The rows an export streams: its format's row source (``datasets.formats``)."""
    return formats.get(export.format).rows(export)


def item_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """The selected items as ``fields`` tuples, by item id.

    ``messages_json`` is the stored chat history as JSON text, decoded by the
    format with orjson (faster than the driver's JSON decoding).
    """
    return (
        selected_items(export)
        .annotate(messages_json=Cast("messages", output_field=TextField()))
        .order_by("id")
        .values_list(*fields)
    )


def triplet_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """The correction triplets of the selected items as ``fields`` tuples, by item, then id."""
    return (
        CorrectionTriplet.objects.filter(item__in=selected_items(export))
        .order_by("item_id", "id")
        .values_list(*fields)
    )


def latest_history_ids(export: DatasetExport) -> QuerySet:
    """``(item id, id of its latest history row)`` for the selected items, by item id.

    Streamed beside ``export_source_rows`` and merged on the item id: one
    aggregate over the history table costs far less than a lookup per row.
    """
    history = ReviewItem.history.model
    return (
        history.objects.filter(id__in=selected_items(export).values("id"))
        .values("id")
        .annotate(latest=Max("history_id"))
        .order_by("id")
        .values_list("id", "latest")
    )


def reviews_by_item(
    item_ids: list[int], *, columns: dict[str, str]
) -> dict[int, list[dict[str, Any]]]:
    """Every review of these items, oldest first, keyed by item id (one query).

    Each review is a dict of ``columns`` (key -> field of the review), in that order.
    """
    grouped: dict[int, list[dict[str, Any]]] = {item_id: [] for item_id in item_ids}
    keys = tuple(columns)
    rows = (
        Review.objects.filter(item_id__in=item_ids)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", *columns.values())
    )
    for row in rows:
        grouped[row[0]].append(dict(zip(keys, row[1:], strict=True)))
    return grouped
