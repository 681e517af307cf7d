"""Typed shapes of what goes in (``Item``) and what comes back (``ItemResult``, ``Export``…).

Plain dataclasses: what the server sends beyond the fields named here stays
in ``raw``, so a newer server never breaks an older client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINAL_STATUSES = frozenset({"approved", "corrected", "rejected", "auto_approved", "auto_rejected"})


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


# --- what you submit -------------------------------------------------------------


@dataclass
class Message:
    """One turn of the chat history before the prompt (OpenAI chat roles).

    The API takes ``role`` and ``content`` today; ``extra`` is sent as it is
    (``tool_calls``, ``tool_call_id``…) for servers that accept more.
    """

    role: str
    content: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, **self.extra}


@dataclass
class ContextDocument:
    """A retrieved document the model was given."""

    text: str
    source: str | None = None
    title: str | None = None
    id: str | None = None

    def to_api(self) -> dict[str, Any]:
        doc = {"text": self.text}
        for name in ("source", "title", "id"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc


@dataclass
class Item:
    """One model output to review. ``external_id`` is yours: resubmits are idempotent on it.

    ``project`` defaults to the API key's project. ``extra`` is merged into the
    request as it is, for item kinds the server adds (conversations with tools,
    comparisons of candidates).
    """

    external_id: str
    prompt: str
    output: str
    model_name: str
    model_version: str
    confidence: float | None = None
    messages: list[Message | dict[str, Any]] = field(default_factory=list)
    context: list[ContextDocument | dict[str, Any] | str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    project: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "external_id": self.external_id,
            "prompt": self.prompt,
            "output": self.output,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "messages": [m.to_api() if isinstance(m, Message) else m for m in self.messages],
            "context": [c.to_api() if isinstance(c, ContextDocument) else c for c in self.context],
            "metadata": self.metadata,
        }
        if self.confidence is not None:
            body["confidence"] = self.confidence
        if self.project is not None:
            body["project"] = self.project
        body.update(self.extra)
        return body


@dataclass
class Candidate:
    """One candidate output of a ``Comparison``, with the model that wrote it."""

    output: str
    model_name: str
    model_version: str
    confidence: float | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "output": self.output,
            "model_name": self.model_name,
            "model_version": self.model_version,
        }
        if self.confidence is not None:
            body["confidence"] = self.confidence
        return body


@dataclass
class Comparison:
    """One prompt with 2-4 candidate outputs, reviewed as a preference (best, tie, all bad).

    The server refuses fewer than 2 or more than 4 candidates and two identical
    outputs, naming the field (``candidates.1.output``).
    """

    external_id: str
    prompt: str
    candidates: list[Candidate | dict[str, Any]]
    messages: list[Message | dict[str, Any]] = field(default_factory=list)
    context: list[ContextDocument | dict[str, Any] | str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    project: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "external_id": self.external_id,
            "prompt": self.prompt,
            "candidates": [c.to_api() if isinstance(c, Candidate) else c for c in self.candidates],
            "messages": [m.to_api() if isinstance(m, Message) else m for m in self.messages],
            "context": [c.to_api() if isinstance(c, ContextDocument) else c for c in self.context],
            "metadata": self.metadata,
        }
        if self.project is not None:
            body["project"] = self.project
        body.update(self.extra)
        return body


def item_body(item: Item | Comparison | dict[str, Any]) -> dict[str, Any]:
    """The JSON object sent for ``item`` (an ``Item``, a ``Comparison`` or a dict already
    in the API's shape)."""
    if isinstance(item, Item | Comparison):
        return item.to_api()
    if isinstance(item, dict):
        return item
    raise TypeError(
        f"An item is an hitl.Item, an hitl.Comparison or a dict, not {type(item).__name__}."
    )


# --- what comes back ---------------------------------------------------------------


@dataclass
class CheckResult:
    name: str
    kind: str
    severity: str
    passed: bool
    message: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=data.get("name", ""),
            kind=data.get("kind", ""),
            severity=data.get("severity", ""),
            passed=bool(data.get("passed")),
            message=data.get("message", ""),
        )


@dataclass
class JudgeVerdict:
    label: str
    score: float | None
    flagged: bool
    rationale: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> JudgeVerdict | None:
        if not data:
            return None
        return cls(
            label=data.get("label", ""),
            score=data.get("score"),
            flagged=bool(data.get("flagged")),
            rationale=data.get("rationale", ""),
            raw=data,
        )


@dataclass
class Decision:
    """The final decision: ``approve`` / ``reject`` / ``correct`` by people,
    ``auto_approve`` / ``auto_reject`` by checks and routing (``reasons`` say why)."""

    verdict: str
    automatic: bool
    reasons: list[str]
    reason_code: str
    severity: str
    adjudicated: bool
    decided_at: datetime | None
    # The rubric scores of the reviews behind a human decision: {"reviewer", "scores"}.
    rubric_scores: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Decision | None:
        if not data:
            return None
        return cls(
            verdict=data.get("verdict", ""),
            automatic=bool(data.get("automatic")),
            reasons=list(data.get("reasons") or []),
            reason_code=data.get("reason_code", ""),
            severity=data.get("severity", ""),
            adjudicated=bool(data.get("adjudicated")),
            decided_at=parse_time(data.get("decided_at")),
            rubric_scores=list(data.get("rubric_scores") or []),
        )


@dataclass
class Audit:
    """The audit review of an auto-approved audit sample (``status``: pending / done)."""

    status: str
    audited_by: str | None
    agreed: bool | None
    verdict: str | None
    reason_code: str
    severity: str
    note: str
    corrected_output: str | None
    audited_at: datetime | None

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Audit | None:
        if not data:
            return None
        return cls(
            status=data.get("status", ""),
            audited_by=data.get("audited_by"),
            agreed=data.get("agreed"),
            verdict=data.get("verdict"),
            reason_code=data.get("reason_code", ""),
            severity=data.get("severity", ""),
            note=data.get("note", ""),
            corrected_output=data.get("corrected_output"),
            audited_at=parse_time(data.get("audited_at")),
        )


@dataclass
class ItemResult:
    """An item as the server holds it. ``final_output`` is what to release once final
    (None before, and when rejected)."""

    id: int
    external_id: str
    project: str
    status: str
    is_final: bool
    final_output: str | None
    decision: Decision | None
    audit: Audit | None
    checks: list[CheckResult]
    judge: JudgeVerdict | None
    review_reasons: list[str]
    message: str
    model_name: str
    model_version: str
    confidence: float | None
    created_at: datetime | None
    created: bool | None = None
    """On a submit: True when this call stored it, False for an identical resubmit."""
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    kind: str = "single"
    """``single`` (one output) or ``comparison`` (candidates: see ``raw["candidates"]``)."""

    @classmethod
    def from_api(cls, data: dict[str, Any], *, created: bool | None = None) -> ItemResult:
        return cls(
            id=data["id"],
            external_id=data.get("external_id", ""),
            project=data.get("project", ""),
            status=data.get("status", ""),
            is_final=bool(data.get("is_final", data.get("status") in FINAL_STATUSES)),
            final_output=data.get("final_output"),
            decision=Decision.from_api(data.get("decision")),
            audit=Audit.from_api(data.get("audit")),
            checks=[CheckResult.from_api(c) for c in data.get("checks") or []],
            judge=JudgeVerdict.from_api(data.get("judge")),
            review_reasons=list(data.get("review_reasons") or []),
            message=data.get("message", ""),
            model_name=data.get("model_name", ""),
            model_version=data.get("model_version", ""),
            confidence=data.get("confidence"),
            created_at=parse_time(data.get("created_at")),
            created=created,
            raw=data,
            kind=data.get("kind", "single"),
        )


@dataclass
class SubmittedItem:
    """One item of a batch answer."""

    id: int
    external_id: str
    status: str
    created: bool


@dataclass
class BatchResult:
    """What ``submit_many`` stored: counts over every chunk, and each item in order."""

    created: int = 0
    existing: int = 0
    items: list[SubmittedItem] = field(default_factory=list)
    requests: int = 0

    def add(self, data: dict[str, Any]) -> None:
        self.created += int(data.get("created", 0))
        self.existing += int(data.get("existing", 0))
        self.items += [
            SubmittedItem(
                id=row["id"],
                external_id=row["external_id"],
                status=row["status"],
                created=bool(row["created"]),
            )
            for row in data.get("items", [])
        ]
        self.requests += 1


@dataclass
class ExportFile:
    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Export:
    """A dataset export: ``status`` queued / running / succeeded / failed, ``progress`` 0 to 1."""

    id: int
    format: str
    status: str
    progress: float
    name: str
    projects: list[str]
    row_count: int | None
    files: dict[str, ExportFile]
    error: str
    downloads: dict[str, str]
    manifest_url: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def is_built(self) -> bool:
        return self.status == "succeeded"

    @property
    def is_failed(self) -> bool:
        return self.status == "failed"

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Export:
        files = {
            split: ExportFile(
                name=meta.get("name", ""),
                rows=int(meta.get("rows", 0)),
                bytes=int(meta.get("bytes", 0)),
                sha256=meta.get("sha256", ""),
            )
            for split, meta in (data.get("files") or {}).items()
        }
        return cls(
            id=data["id"],
            format=data.get("format", ""),
            status=data.get("status", ""),
            progress=float(data.get("progress") or 0.0),
            name=data.get("name", ""),
            projects=list(data.get("projects") or []),
            row_count=data.get("row_count"),
            files=files,
            error=data.get("error", ""),
            downloads=dict(data.get("downloads") or {}),
            manifest_url=data.get("manifest_url"),
            raw=data,
        )


@dataclass
class Agreement:
    """Agreement between reviewers of one project over ``[start, end)``."""

    project: str
    start: datetime | None
    end: datetime | None
    items: int
    percent_agreement: float | None
    kappa: float | None
    verdict_agreement_percent: float | None
    confusion: dict[str, dict[str, int]]
    pairs: list[dict[str, Any]]
    reviewers: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Agreement:
        summary = data.get("summary") or {}
        period = data.get("period") or {}
        return cls(
            project=data.get("project", ""),
            start=parse_time(period.get("start")),
            end=parse_time(period.get("end")),
            items=int(summary.get("items", 0)),
            percent_agreement=summary.get("percent_agreement"),
            kappa=summary.get("kappa"),
            verdict_agreement_percent=summary.get("verdict_agreement_percent"),
            confusion=dict(data.get("confusion") or {}),
            pairs=list(data.get("pairs") or []),
            reviewers=list(data.get("reviewers") or []),
            raw=data,
        )
