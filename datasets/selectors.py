"""Read paths: who sees which exports, and the rows an export reads."""

from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Exists,
    F,
    Lookup,
    Max,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast

from datasets import formats
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus, WrongSteps
from reviews.access import Capability, projects_where
from reviews.models import (
    Candidate,
    CorrectionTriplet,
    ItemKind,
    ItemStatus,
    Preference,
    Review,
    ReviewItem,
    StepVerdict,
    Verdict,
)
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
    """The final items an export's filters select (see datasets.services.export_filters).

    Controls are never exported; an item whose decision was withdrawn by a
    quarantine is not final until someone else re-reviews it. Only the kinds
    of item the format reads (``ExportFormatSpec.item_kinds``): the one-output
    formats leave comparisons out, the preference formats read them.
    """
    filters: dict[str, Any] = export.filters
    kinds = formats.get(export.format).item_kinds
    items = ReviewItem.objects.for_clients().filter(
        project__in=export.projects.all(),
        status__in=filters["statuses"],
        kind__in=sorted(kinds),
    )
    if filters.get("decided_after"):
        items = items.filter(decided_at__gte=filters["decided_after"])
    if filters.get("decided_before"):
        items = items.filter(decided_at__lt=filters["decided_before"])
    items = _by_model_and_id(items, filters, comparisons=ItemKind.COMPARISON in kinds)
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
    if filters.get("wrong_steps") == WrongSteps.EXCLUDE:
        items = items.exclude(Exists(StepVerdict.objects.counted().filter(item=OuterRef("pk"))))
    return items


class _AnyOf(Lookup):
    """``lhs = ANY(<ids>)``, the ids sent as one array literal (no per-id adaptation)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        array = "{" + ",".join(map(str, map(int, self.rhs))) + "}"
        return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, array]


def id_in(field: str, ids: list[int]) -> Q | Lookup:
    """``field`` is one of ``ids``: on PostgreSQL one array parameter (``= ANY(%s)``).

    A build asks this per chunk of thousands of items; as thousands of ``IN``
    placeholders each id would be resolved by the ORM and the query split by
    the driver, which cost more than encoding the chunk's lines.
    """
    if connection.vendor == "postgresql":
        return _AnyOf(F(field), list(ids))
    return Q(**{f"{field}__in": ids})


def wrong_steps_by_item(item_ids: list[int]) -> dict[int, dict[int, set[str]]]:
    """For each of these items with marks: step -> the parts marked wrong ("" is the
    whole turn). One query.

    Read by id range (a build's chunk is one), then kept to ``item_ids``: a
    range costs the planner nothing, where thousands of ids in ``ANY`` cost it
    milliseconds per chunk, and marks are few.
    """
    marked: dict[int, dict[int, set[str]]] = {}
    if not item_ids:
        return marked
    wanted = set(item_ids)
    rows = (
        StepVerdict.objects.counted()
        .filter(item_id__gte=min(wanted), item_id__lte=max(wanted))
        .values_list("item_id", "step", "part")
    )
    for item_id, step, part in rows:
        if item_id in wanted:
            marked.setdefault(item_id, {}).setdefault(step, set()).add(part)
    return marked


def step_verdicts_by_review(item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The marks of each trusted review of these items, by step (one query)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    rows = (
        StepVerdict.objects.filter(
            id_in("item_id", item_ids), review__isnull=False, review__quarantine__isnull=True
        )
        .order_by("review_id", "step", "part", "id")
        .values_list("review_id", "step", "part", "reason", "severity", "note")
    )
    for review_id, step, part, reason, severity, note in rows:
        grouped.setdefault(review_id, []).append(
            {"step": step, "part": part, "reason": reason, "severity": severity, "note": note}
        )
    return grouped


def _by_model_and_id(
    items: QuerySet[ReviewItem], filters: dict[str, Any], *, comparisons: bool = False
) -> QuerySet[ReviewItem]:
    """``items`` narrowed by an export's model name, model version and item id filters.

    With ``comparisons``, a comparison (whose models are its candidates') matches a
    model filter when one of its candidates does.
    """
    for field in ("model_name", "model_version"):
        wanted = filters.get(f"{field}s")
        if not wanted:
            continue
        match = Q(**{f"{field}__in": wanted})
        if comparisons:
            match |= Q(
                Exists(Candidate.objects.filter(item=OuterRef("pk"), **{f"{field}__in": wanted})),
                kind=ItemKind.COMPARISON,
            )
        items = items.filter(match)
    if filters.get("item_ids"):
        items = items.filter(pk__in=filters["item_ids"])
    return items


def export_source_rows(export: DatasetExport) -> QuerySet:
    """The rows an export streams: its format's row source (``datasets.formats``)."""
    return formats.get(export.format).rows(export)


def item_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """The selected items as ``fields`` tuples, by item id.

    ``messages_json`` and ``tools_json`` are the stored chat history and tool
    definitions as JSON text, decoded by the format with orjson (faster than
    the driver's JSON decoding).
    """
    return (
        selected_items(export)
        .annotate(
            messages_json=Cast("messages", output_field=TextField()),
            tools_json=Cast("tools", output_field=TextField()),
        )
        .order_by("id")
        .values_list(*fields)
    )


def candidate_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """One row per candidate of the selected comparisons that lost to the gold answer.

    By item id, then the candidate's position. With a winner: every other
    candidate, and the winner too when it was corrected (its own output lost to
    the correction, which is the gold answer). A tie or all bad implies no
    pair: its first candidate stands for it, so the format can skip and count
    it. ``fields`` are the item's (with ``messages_json`` and ``tools_json`` as
    in ``item_rows``) or the candidate's (``candidates__output``,
    ``candidates__position``: the same join as the filter's).

    Read from the items, each joined to its candidates by the candidate's item
    index: a plan that starts from the candidates and probes the selection
    (which PostgreSQL picks for a cursor when it underestimates the selection)
    costs the product of the two.
    """
    winner = Q(final_preference=Preference.WINNER)
    # Positive comparisons, so the filter and the values share one join of the candidates.
    other = Q(candidates__id__lt=F("final_candidate_id")) | Q(
        candidates__id__gt=F("final_candidate_id")
    )
    lost = other | Q(final_verdict=Verdict.CORRECT)
    return (
        selected_items(export)
        .filter(kind=ItemKind.COMPARISON)
        .filter((winner & lost) | (~winner & Q(candidates__position=0)))
        .annotate(
            messages_json=Cast("messages", output_field=TextField()),
            tools_json=Cast("tools", output_field=TextField()),
        )
        .order_by("id", "candidates__position")
        .values_list(*fields)
    )


def correction_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """The selected single items that were corrected, as ``fields`` tuples like
    ``item_rows`` (``position`` is 0, to line up with ``candidate_rows``)."""
    return (
        selected_items(export)
        .filter(kind=ItemKind.SINGLE, status=ItemStatus.CORRECTED)
        .annotate(
            messages_json=Cast("messages", output_field=TextField()),
            tools_json=Cast("tools", output_field=TextField()),
            position=Value(0),
        )
        .values_list(*fields)
    )


def verdict_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """Each selected single item's model output with its label (approved true, else
    false), and each corrected item's correction (true) after it; by item id.

    ``fields`` name the item's columns; each row ends with ``text``, ``label`` and
    ``part`` (0 the model's output, 1 the correction).
    """
    items = selected_items(export).filter(kind=ItemKind.SINGLE)
    outputs = items.annotate(
        messages_json=Cast("messages", output_field=TextField()),
        text=F("output"),
        label=Case(When(status=ItemStatus.APPROVED, then=Value(True)), default=Value(False)),
        part=Value(0),
    ).values_list(*fields, "text", "label", "part")
    corrections = (
        items.filter(status=ItemStatus.CORRECTED)
        .annotate(
            messages_json=Cast("messages", output_field=TextField()),
            text=F("final_output"),
            label=Value(True),
            part=Value(1),
        )
        .values_list(*fields, "text", "label", "part")
    )
    return outputs.order_by().union(corrections.order_by(), all=True).order_by(fields[0], "part")


def triplet_rows(export: DatasetExport, fields: tuple[str, ...]) -> QuerySet:
    """The correction triplets of the selected items as ``fields`` tuples, by item, then id."""
    return (
        CorrectionTriplet.objects.filter(
            item__in=selected_items(export), review__quarantine__isnull=True
        )
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
    """Every trusted review of these items, oldest first, keyed by item id (one query).

    Quarantined reviews are left out: they are no longer anyone's decision.

    Each review is a dict of ``columns`` (key -> field of the review), in that order.
    """
    grouped: dict[int, list[dict[str, Any]]] = {item_id: [] for item_id in item_ids}
    keys = tuple(columns)
    rows = (
        Review.objects.trusted()
        .filter(id_in("item_id", item_ids))
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", *columns.values())
    )
    for row in rows:
        grouped[row[0]].append(dict(zip(keys, row[1:], strict=True)))
    return grouped


def withheld_by_quarantine(export: DatasetExport) -> int:
    """Items of the export's projects (and model filters) held back by a quarantine.

    Their released decision was withdrawn and nobody has re-reviewed them yet,
    so no export includes them; the manifest counts them so that two builds
    on either side of a quarantine say why they differ.
    """
    filters: dict[str, Any] = export.filters
    items = ReviewItem.objects.for_clients().filter(
        project__in=export.projects.all(),
        decided_at__isnull=True,
        reviews__quarantine__isnull=False,
    )
    comparisons = ItemKind.COMPARISON in formats.get(export.format).item_kinds
    return _by_model_and_id(items, filters, comparisons=comparisons).values("pk").distinct().count()


def exports_with_quarantined_decisions() -> list[dict[str, Any]]:
    """Built exports whose items include a decision quarantined afterwards.

    An exported item is affected when one of its reviews, written before the
    export was built, is now quarantined: the file holds a decision that no
    longer counts. One row per export, newest first, with the items and the
    quarantines involved.
    """
    rows = (
        DatasetExportItem.objects.filter(
            export__status=ExportStatus.SUCCEEDED,
            item__reviews__quarantine__isnull=False,
            item__reviews__created_at__lte=F("export__finished_at"),
        )
        .values_list("export_id", "item_id", "item__reviews__quarantine_id")
        .distinct()
    )
    found: dict[int, dict[str, set]] = {}
    for export_id, item_id, quarantine_id in rows:
        entry = found.setdefault(export_id, {"items": set(), "quarantines": set()})
        entry["items"].add(item_id)
        entry["quarantines"].add(quarantine_id)
    exports = DatasetExport.objects.filter(pk__in=list(found)).order_by("-finished_at", "-id")
    return [
        {
            "export": export,
            "items": sorted(found[export.pk]["items"]),
            "quarantines": sorted(found[export.pk]["quarantines"]),
        }
        for export in exports
    ]
