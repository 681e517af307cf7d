"""OTLP trace intake: the LLM calls of an export request become items of a project."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from reviews.api.validation import validate_item
from reviews.errors import Conflict
from reviews.models import OtlpGrouping, OtlpTraceSpan, Project, ReviewItem
from reviews.otlp.conventions import (
    ContentUnreadable,
    Step,
    attributes_of,
    is_local_root,
    read_span,
)
from reviews.otlp.decoding import ids_valid
from reviews.otlp.items import CONFIDENCE, EXTERNAL_ID, span_item, trace_item
from reviews.services.ingest import item_ingest, payload_hash

# Refusal reasons quoted in the response's error_message, the first few of them.
QUOTED_REASONS = 5


@dataclass
class OtlpOutcome:
    """What an export request came to, span by span."""

    spans: int = 0
    ignored: int = 0
    """Spans that are not LLM calls (nor, per trace, tool runs): counted, not stored."""
    held: int = 0
    """Per trace: spans kept until their trace's root span arrives."""
    stored: int = 0
    """LLM calls (and per trace, tool runs) now part of a stored item, new or not."""
    created: int = 0
    existing: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        self.reasons.append(reason)

    @property
    def error_message(self) -> str:
        shown = "; ".join(self.reasons[:QUOTED_REASONS])
        more = len(self.reasons) - QUOTED_REASONS
        return f"{shown}; and {more} more" if more > 0 else shown


@dataclass
class _Read:
    trace_id: str
    service: str
    step: Step


def otlp_traces_ingest(
    *, project: Project, export: ExportTraceServiceRequest, user=None, via: str = ""
) -> OtlpOutcome:
    """Store the LLM calls of a decoded export request as items of ``project``.

    Spans are read by ``reviews.otlp.conventions``; spans that are not LLM calls
    are counted and ignored. ``project.otlp_grouping`` decides the items: one
    per LLM span (external id ``<trace id>-<span id>``), or one per trace
    (external id the trace id), built when the trace's root span arrives from
    the spans held so far. A project's ``otlp_external_id_attribute`` and
    ``otlp_confidence_attribute`` name span attributes mapped onto the item.
    Every item is validated as a submitted one and stored through
    ``item_ingest``, so a resubmitted request stores nothing new. A span that
    cannot become an item (unreadable content, a field the validator refuses,
    an external id stored with other content) is rejected and counted with its
    reason; the rest of the request is stored.
    """
    outcome = OtlpOutcome()
    mapped = {
        key: name
        for key, name in (
            (EXTERNAL_ID, project.otlp_external_id_attribute),
            (CONFIDENCE, project.otlp_confidence_attribute),
        )
        if name
    }
    per_trace = project.otlp_grouping == OtlpGrouping.TRACE
    reads: list[_Read] = []
    roots: set[str] = set()
    for resource_spans in export.resource_spans:
        service = _service_name(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                outcome.spans += 1
                if not ids_valid(span.trace_id, span.span_id):
                    outcome.reject(1, f"span {span.span_id.hex() or '?'}: invalid trace or span id")
                    continue
                trace_id = span.trace_id.hex()
                if per_trace and is_local_root(span):
                    roots.add(trace_id)
                try:
                    step = read_span(span, mapped)
                except ContentUnreadable as exc:
                    outcome.reject(1, f"span {span.span_id.hex()}: {exc}")
                    continue
                if step is None or (step["kind"] == "tool" and not per_trace):
                    outcome.ignored += 1
                    continue
                reads.append(_Read(trace_id=trace_id, service=service, step=step))
    if per_trace:
        candidates = _trace_items(project=project, reads=reads, roots=roots, outcome=outcome)
    else:
        candidates = [
            (span_item(trace_id=r.trace_id, step=r.step, service=r.service), 1, r.step["span_id"])
            for r in reads
        ]
    _store(project=project, candidates=candidates, outcome=outcome, user=user, via=via)
    if per_trace and roots:
        OtlpTraceSpan.objects.filter(project=project, trace_id__in=roots).delete()
    return outcome


def _service_name(attributes) -> str:
    value = attributes_of(attributes).get("service.name", "")
    return value if isinstance(value, str) else str(value)


def _trace_items(
    *, project: Project, reads: list[_Read], roots: set[str], outcome: OtlpOutcome
) -> list[tuple[dict[str, Any], int, str]]:
    """Per trace: hold the spans of unfinished traces, build the items of finished ones."""
    now = timezone.now()
    hold_for = timedelta(hours=settings.HITL_OTLP_TRACE_HOLD_HOURS)
    OtlpTraceSpan.objects.filter(project=project, created_at__lt=now - hold_for).delete()
    # A trace whose item exists was finished by an earlier request: this one is a
    # resubmit, or brings spans that ended after the root (they change nothing).
    built = set(
        ReviewItem.objects.filter(
            project=project, external_id__in={r.trace_id for r in reads} | roots
        ).values_list("external_id", flat=True)
    )
    by_trace: dict[str, list[_Read]] = defaultdict(list)
    for read in reads:
        if read.trace_id in built:
            outcome.ignored += 1
        else:
            by_trace[read.trace_id].append(read)
    roots = roots - built
    outcome.existing += len(built)
    waiting = [r for trace_id, rs in by_trace.items() if trace_id not in roots for r in rs]
    OtlpTraceSpan.objects.bulk_create(
        [
            OtlpTraceSpan(
                project=project,
                trace_id=r.trace_id,
                span_id=r.step["span_id"],
                step={**r.step, "service": r.service},
                created_at=now,
            )
            for r in waiting
        ],
        ignore_conflicts=True,
    )
    outcome.held += len(waiting)
    finished = [trace_id for trace_id in roots if trace_id in by_trace] + sorted(
        roots - set(by_trace)
    )
    held: dict[str, dict[str, Step]] = defaultdict(dict)
    for row in OtlpTraceSpan.objects.filter(project=project, trace_id__in=finished):
        held[row.trace_id][row.span_id] = row.step
    candidates = []
    for trace_id in finished:
        steps = held[trace_id]
        service = next(iter(steps.values()), {}).get("service", "")
        for read in by_trace.get(trace_id, ()):
            steps[read.step["span_id"]] = read.step
            service = read.service
        raw = trace_item(trace_id=trace_id, steps=list(steps.values()), service=service)
        if raw is not None:
            # Counted as this request's spans: its reads of the trace, or its root.
            candidates.append((raw, max(1, len(by_trace.get(trace_id, ()))), f"trace {trace_id}"))
    return candidates


def _store(
    *,
    project: Project,
    candidates: list[tuple[dict[str, Any], int, str]],
    outcome: OtlpOutcome,
    user,
    via: str,
) -> None:
    """Validate and ingest ``(raw item, spans it stands for, name)`` candidates.

    Refused ones are counted as rejected spans; an external id stored (or
    repeated in this request) with other content rejects its spans, not the
    request.
    """
    payloads: dict[str, tuple[dict[str, Any], int, str]] = {}
    hashes: dict[str, str] = {}
    for raw, spans, name in candidates:
        clean, errors = validate_item(raw)
        if errors:
            outcome.reject(spans, f"{name}: {_first_error(errors)}")
            continue
        external_id = clean["external_id"]
        digest = payload_hash(clean)
        if external_id in hashes:
            if hashes[external_id] != digest:
                outcome.reject(
                    spans, f"{name}: external id {external_id!r} repeats with other content"
                )
            else:
                outcome.existing += 1
            continue
        hashes[external_id] = digest
        payloads[external_id] = (clean, spans, name)
    pending = list(payloads)
    while pending:
        chunk, pending = pending[: settings.HITL_MAX_BATCH], pending[settings.HITL_MAX_BATCH :]
        try:
            stored = item_ingest(
                project=project,
                payloads=[payloads[external_id][0] for external_id in chunk],
                user=user,
                via=via,
                digests=[hashes[external_id] for external_id in chunk],
            )
        except Conflict as exc:
            refused = set(exc.detail["conflicting_external_ids"])
            for external_id in refused:
                _clean, spans, name = payloads[external_id]
                outcome.reject(
                    spans, f"{name}: external id {external_id!r} is stored with other content"
                )
            pending = [e for e in chunk if e not in refused] + pending
            continue
        outcome.created += stored.created_count
        outcome.existing += len(stored.items) - stored.created_count
        outcome.stored += sum(payloads[external_id][1] for external_id in chunk)


def _first_error(errors: Any) -> str:
    """The first field message of the validator's answer, with its path."""
    path = []
    while isinstance(errors, dict) and errors:
        key, errors = next(iter(errors.items()))
        path.append(str(key))
    message = errors[0] if isinstance(errors, list) and errors else str(errors)
    return f"{'.'.join(path)}: {message}" if path else str(message)
