"""Input and output shapes of the items API."""

import math

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reviews import transcripts
from reviews.access import may_see_candidate_models
from reviews.api.candidates import ITEM_LEVEL_FIELDS, comparison_errors, comparison_form
from reviews.api.transcript_schema import MESSAGES_SCHEMA, TOOLS_SCHEMA
from reviews.jsontext import json_value_error, text_error
from reviews.models import (
    MAX_CANDIDATES,
    MIN_CANDIDATES,
    ItemKind,
    ItemStatus,
    JudgeLabel,
    Preference,
    ReviewItem,
    Verdict,
)
from reviews.outcomes import (
    AUDIT_DONE,
    AUDIT_PENDING,
    AUTO_APPROVE,
    AUTO_REJECT,
    item_audit,
    item_decision,
)
from reviews.services.ingest import IngestOutcome


class StrictCharField(serializers.CharField):
    """A string and nothing else: numbers and booleans are type errors, not text."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not self.allow_blank and not data.strip():
            self.fail("blank")
        error = text_error(data)
        if error:
            raise serializers.ValidationError(error)
        return data


class ConfidenceField(serializers.Field):
    """A finite number in [0, 1]; NaN, infinities, strings and booleans are refused."""

    default_error_messages = {
        "invalid": "Must be a number between 0 and 1.",
        "not_finite": "Must be a finite number, not NaN or infinity.",
        "range": "Must be between 0 and 1.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("not_finite")
        # Compared before float(): an integer of 400 digits has no float.
        if not 0 <= data <= 1:
            self.fail("range")
        return float(data)

    def to_representation(self, value):
        return value


class JSONObjectField(serializers.DictField):
    """A JSON object that can be stored: see ``reviews.jsontext.json_value_error``."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        error = json_value_error(value, max_depth=settings.HITL_MAX_JSON_DEPTH)
        if error:
            raise serializers.ValidationError(error)
        return value


@extend_schema_field(MESSAGES_SCHEMA)
class MessagesField(serializers.JSONField):
    """OpenAI chat messages; checked with the rest of the item (``reviews.transcripts``)."""


@extend_schema_field(TOOLS_SCHEMA)
class ToolsField(serializers.JSONField):
    """Tool definitions; checked with the rest of the item (``reviews.transcripts``)."""


class ContextDocumentSerializer(serializers.Serializer):
    """A retrieved document. A bare string is taken as ``{"text": ...}``."""

    text = StrictCharField(allow_blank=True, max_length=settings.HITL_MAX_TEXT_CHARS)
    source = StrictCharField(required=False, allow_blank=True, max_length=2000)
    title = StrictCharField(required=False, allow_blank=True, max_length=500)
    id = StrictCharField(required=False, allow_blank=True, max_length=255)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = {"text": data}
        return super().to_internal_value(data)


class CandidateInputSerializer(serializers.Serializer):
    """One candidate output of a comparison."""

    output = StrictCharField(
        max_length=settings.HITL_MAX_TEXT_CHARS,
        help_text="The candidate output; no two candidates of an item may be identical "
        "(whitespace aside).",
    )
    model_name = StrictCharField(max_length=200)
    model_version = StrictCharField(max_length=200)
    confidence = ConfidenceField(required=False, allow_null=True)


class ItemInputSerializer(serializers.Serializer):
    """One model output to review, or a comparison of 2-4 candidate outputs.

    The documented shape of a submitted item. The items endpoint validates with
    reviews.api.validation.validate_item, which enforces this shape faster.
    Either ``prompt`` and ``output`` (``messages``: the history before the
    prompt), or neither and ``messages`` the whole conversation, ending with
    the assistant turn under review.

    A comparison sends ``candidates`` instead of ``output``, ``model_name``,
    ``model_version`` and ``confidence``; its transcript form ends ``messages``
    with the user turn the candidates answer.
    """

    external_id = StrictCharField(max_length=255, help_text="Your id; resubmits are idempotent.")
    project = serializers.SlugField(
        required=False, help_text="Project slug; defaults to the API key's project."
    )
    prompt = StrictCharField(
        required=False,
        max_length=settings.HITL_MAX_TEXT_CHARS,
        help_text="The user prompt. Required unless messages holds the whole conversation.",
    )
    messages = MessagesField(
        required=False,
        help_text="OpenAI chat messages: the history before the prompt or, without prompt and "
        "output, the whole conversation ending with the assistant turn under review. "
        "Anthropic content blocks (text, tool_use, tool_result) are normalised.",
    )
    tools = ToolsField(required=False, help_text="Tool definitions offered to the model.")
    output = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=settings.HITL_MAX_TEXT_CHARS,
        help_text="The output under review. Required unless messages holds the whole conversation.",
    )
    model_name = StrictCharField(
        max_length=200,
        required=False,
        help_text="Required, except on a comparison (each candidate has its own).",
    )
    model_version = StrictCharField(
        max_length=200,
        required=False,
        help_text="Required, except on a comparison (each candidate has its own).",
    )
    confidence = ConfidenceField(required=False, allow_null=True)
    context = ContextDocumentSerializer(many=True, required=False)
    metadata = JSONObjectField(required=False)
    candidates = CandidateInputSerializer(
        many=True,
        required=False,
        min_length=MIN_CANDIDATES,
        max_length=MAX_CANDIDATES,
        help_text="A comparison: 2-4 candidate outputs of one prompt, instead of output, "
        "model_name, model_version and confidence. Reviewed as a preference (best, tie, all bad).",
    )

    def to_internal_value(self, data):
        errors: dict = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors, value = dict(exc.detail), {}
        if not isinstance(data, dict):
            raise serializers.ValidationError(errors)
        limits = transcripts.Limits(
            text_chars=settings.HITL_MAX_TEXT_CHARS, json_depth=settings.HITL_MAX_JSON_DEPTH
        )
        if comparison_form(data):
            # The comparison rules are reviews.api.candidates', shared with the fast validator.
            conversation, problems = comparison_errors(data, limits=limits)
            for name in ("messages", "tools", "candidates", "prompt", *ITEM_LEVEL_FIELDS):
                errors.pop(name, None)
            if "prompt" in data and "prompt" not in problems:
                try:
                    self.fields["prompt"].run_validation(data["prompt"])
                except serializers.ValidationError as exc:
                    problems["prompt"] = exc.detail
            errors.update(problems)
            if errors:
                raise serializers.ValidationError(errors)
            value = {k: v for k, v in value.items() if k not in ITEM_LEVEL_FIELDS}
            return {**value, **conversation}
        conversation, problems = transcripts.conversation_clean(data, limits=limits)
        errors.pop("messages", None)
        errors.pop("tools", None)
        errors.update(problems)
        for name in ("model_name", "model_version"):
            if name not in data:
                errors[name] = [serializers.Field.default_error_messages["required"]]
        if not transcripts.transcript_form(data):
            for name in transcripts.DERIVED_FIELDS:
                if name not in data:
                    errors[name] = [serializers.Field.default_error_messages["required"]]
        if errors:
            raise serializers.ValidationError(errors)
        return {**value, **conversation}


class ItemListField(serializers.ListField):
    """The ``items`` list of a batch. Its elements pass through untouched:
    ``reviews.api.validation.ItemSubmissionSerializer`` validates each one with
    per-item messages, and DRF's per-element JSONField would re-serialise every
    item only to check it."""

    def run_child_validation(self, data):
        return list(data)


class ItemBatchSerializer(serializers.Serializer):
    items = ItemListField(
        child=serializers.JSONField(),
        allow_empty=False,
        max_length=settings.HITL_MAX_BATCH,
        help_text=f"Up to {settings.HITL_MAX_BATCH} items, stored all or nothing.",
    )


class CheckResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    severity = serializers.CharField()
    passed = serializers.BooleanField()
    message = serializers.CharField()


class ItemSummarySerializer(serializers.Serializer):
    """One item of a batch: its id and status, and whether this submission created it."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=ItemStatus.choices)
    created = serializers.BooleanField(help_text="False when this was an identical resubmit.")

    def to_representation(self, instance: tuple[ReviewItem, bool]) -> dict:
        # Up to a batch's 1,000 items per answer: the stored values as they are,
        # without DRF's walk over every field of every item (ten times slower).
        item, created = instance
        return {
            "id": item.pk,
            "external_id": item.external_id,
            "status": item.status,
            "created": created,
        }


class BatchResultSerializer(serializers.Serializer):
    """The answer to a batch: how many items are new, how many were stored before, each item."""

    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    items = ItemSummarySerializer(many=True)

    def to_representation(self, instance: IngestOutcome) -> dict:
        return super().to_representation(
            {
                "created": instance.created_count,
                "existing": len(instance.items) - instance.created_count,
                "items": list(zip(instance.items, instance.created, strict=True)),
            }
        )


DECISION_VERDICTS = (*Verdict.values, AUTO_APPROVE, AUTO_REJECT)


class DecisionStepSerializer(serializers.Serializer):
    """A step of the conversation a reviewer marked wrong."""

    step = serializers.IntegerField(
        help_text="The turn's number in the whole conversation, from 1 (of a transcript: "
        "messages[step - 1]; else the history, then the prompt, then the output)."
    )
    part = serializers.CharField(
        allow_blank=True, help_text="The id of the tool call that went wrong; empty: the turn."
    )
    reason = serializers.CharField(help_text="One of the project's reason codes.")
    severity = serializers.CharField(help_text="minor, major or critical.")
    note = serializers.CharField(allow_blank=True)


class RubricScoresSerializer(serializers.Serializer):
    """One reviewer's rubric scores (``reviews.services.rubric``)."""

    reviewer = serializers.CharField(help_text='Who scored: "user <username>".')
    scores = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Criterion key -> score: an integer on a scale, the option of a categorical "
        "criterion, true/false for a boolean one.",
    )


class DecisionSerializer(serializers.Serializer):
    """The final decision (``reviews.outcomes.item_decision``)."""

    verdict = serializers.ChoiceField(
        choices=DECISION_VERDICTS,
        help_text="approve / reject / correct by people; auto_approve / auto_reject by routing "
        "and checks.",
    )
    automatic = serializers.BooleanField(help_text="True when no human decided.")
    reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why an automatic decision was made: check_failed:<check> per blocking "
        "check that failed; no_trigger (monitor mode released it), audit_sample. Empty for "
        "human decisions.",
    )
    reason_code = serializers.CharField(allow_blank=True)
    severity = serializers.CharField(allow_blank=True)
    adjudicated = serializers.BooleanField()
    decided_at = serializers.DateTimeField()
    steps = DecisionStepSerializer(
        many=True,
        help_text="The turns or tool calls the reviewers marked wrong (step verdicts); empty "
        "for automatic decisions.",
    )
    rubric_scores = RubricScoresSerializer(
        many=True,
        help_text="The rubric scores of the reviews behind a human decision, oldest first "
        "(empty for automatic decisions and projects without a rubric).",
    )


class AuditSerializer(serializers.Serializer):
    """The audit review of an auto-approved audit sample (``reviews.outcomes.item_audit``)."""

    status = serializers.ChoiceField(
        choices=(AUDIT_PENDING, AUDIT_DONE), help_text="pending until the audit review is in."
    )
    audited_by = serializers.CharField(allow_null=True, help_text='Who audited: "user <username>".')
    agreed = serializers.BooleanField(
        allow_null=True, help_text="True when the auditor approved the released output."
    )
    verdict = serializers.ChoiceField(choices=Verdict.choices, allow_null=True)
    reason_code = serializers.CharField(allow_blank=True)
    severity = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)
    corrected_output = serializers.CharField(
        allow_null=True, help_text="The auditor's correction (the released output stays)."
    )
    audited_at = serializers.DateTimeField(allow_null=True)


class JudgeVerdictSerializer(serializers.Serializer):
    """The LLM judge's grading of an item (tier 2)."""

    label = serializers.ChoiceField(
        choices=JudgeLabel.choices, help_text="pass / flag / fail, or error when the call failed."
    )
    score = serializers.FloatField(allow_null=True, help_text="0 (violates the rubric) to 1.")
    flagged = serializers.BooleanField(help_text="True when the verdict sent the item to review.")
    threshold = serializers.FloatField(allow_null=True)
    rationale = serializers.CharField()
    error_categories = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(help_text="Why the judge call failed, if it did.")
    backend = serializers.CharField()
    model = serializers.CharField(help_text="The judge model.")
    rubric_version = serializers.IntegerField()
    latency_ms = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField(allow_null=True)
    completion_tokens = serializers.IntegerField(allow_null=True)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class CandidateOutputSerializer(serializers.Serializer):
    """A comparison's candidate as submitted, with its tier-1 results."""

    id = serializers.IntegerField(help_text="Names the candidate in the preference.")
    position = serializers.IntegerField(help_text="Index in the submitted list.")
    output = serializers.CharField()
    model_name = serializers.CharField(
        allow_null=True,
        help_text="null for the project's reviewers and seniors until the item is final "
        "(preferences are given blind).",
    )
    model_version = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    checks = CheckResultSerializer(many=True)
    check_failed = serializers.BooleanField(
        help_text="A blocking check failed: kept, shown as failed, never the gold answer."
    )


class PreferenceOutputSerializer(serializers.Serializer):
    """The final preference on a comparison."""

    preference = serializers.ChoiceField(choices=Preference.choices)
    winner = serializers.IntegerField(
        allow_null=True, help_text="The winning candidate's id (preference winner)."
    )


_DATETIME = serializers.DateTimeField()


def _decision(decision: dict | None) -> dict | None:
    """``DecisionSerializer``'s answer, by hand (every auto-approved item carries one)."""
    if decision is None:
        return None
    return {**decision, "decided_at": _DATETIME.to_representation(decision["decided_at"])}


class ItemOutputSerializer(serializers.ModelSerializer):
    """An item as its submitter sees it: the released output only once final."""

    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    checks = CheckResultSerializer(source="check_results", many=True, read_only=True)
    judge = serializers.SerializerMethodField(help_text="The latest judge verdict, if any.")
    is_final = serializers.BooleanField(read_only=True)
    final_output = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()
    audit = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()

    class Meta:
        model = ReviewItem
        fields = [
            "id",
            "external_id",
            "project",
            "kind",
            "status",
            "is_final",
            "model_name",
            "model_version",
            "confidence",
            "is_audit",
            "review_reasons",
            "created_at",
            "checks",
            "judge",
            "final_output",
            "decision",
            "audit",
            "message",
        ]

    @extend_schema_field(JudgeVerdictSerializer(allow_null=True))
    def get_judge(self, item: ReviewItem) -> dict | None:
        # judge_verdicts is prefetched newest first (reviews.selectors.items_visible_to).
        verdicts = item.judge_verdicts.all()
        return JudgeVerdictSerializer(verdicts[0]).data if verdicts else None

    def get_final_output(self, item: ReviewItem) -> str | None:
        return item.final_output if item.is_final else None

    def get_decision(self, item: ReviewItem) -> dict | None:
        # Lists attach decision_steps per page (reviews.selectors.items_with_audits).
        decision = item_decision(item, steps=getattr(item, "decision_steps", None))
        return None if decision is None else DecisionSerializer(decision).data

    def get_audit(self, item: ReviewItem) -> dict | None:
        if not item.is_audit:
            return None
        # Lists attach audit_reviews per page (reviews.selectors.items_with_audits).
        reviews = getattr(item, "audit_reviews", None)
        if reviews is None:
            reviews = list(item.reviews.filter(is_audit=True).select_related("reviewer"))
        audit = item_audit(item, reviews[0] if reviews else None)
        return AuditSerializer(audit).data

    def to_representation(self, instance: ReviewItem) -> dict:
        # Every single-item POST answers with this, and lists with up to 1,000:
        # the fields by hand, without DRF's per-field walk (three times slower).
        # The declared fields above stay the schema; a parity test holds the two equal.
        item = instance
        final = item.is_final
        return {
            "id": item.pk,
            "external_id": item.external_id,
            "project": item.project.slug,
            "kind": item.kind,
            "status": item.status,
            "is_final": final,
            "model_name": item.model_name,
            "model_version": item.model_version,
            "confidence": None if item.confidence is None else float(item.confidence),
            "is_audit": item.is_audit,
            "review_reasons": item.review_reasons,
            "created_at": _DATETIME.to_representation(item.created_at),
            "checks": [
                {
                    "name": result.name,
                    "kind": result.kind,
                    "severity": result.severity,
                    "passed": result.passed,
                    "message": result.message,
                }
                for result in item.check_results.all()
            ],
            "judge": self.get_judge(item),
            "final_output": item.final_output if final else None,
            "decision": _decision(item_decision(item, steps=getattr(item, "decision_steps", None))),
            "audit": self.get_audit(item),
            "message": self.get_message(item),
        }

    def get_message(self, item: ReviewItem) -> str:
        if item.status == ItemStatus.AUTO_REJECTED:
            return "Rejected by automated checks."
        if item.is_final:
            return "Final."
        if item.status in (ItemStatus.PENDING_CHECKS, ItemStatus.PENDING_JUDGE):
            return "Pending automated checks; not released yet."
        return "Pending expert review; not released yet."


class ItemDetailSerializer(ItemOutputSerializer):
    """One item with what was submitted: prompt, conversation, tools, output, context."""

    is_transcript = serializers.BooleanField(
        read_only=True,
        help_text="True when messages is the whole conversation, ending with the turn under "
        "review (prompt and output copied from it); else messages is the history before prompt.",
    )
    messages = MessagesField(read_only=True)
    tools = ToolsField(read_only=True)
    candidates = serializers.SerializerMethodField(
        help_text="A comparison's candidates in the submitted order (empty for single items)."
    )
    preference = serializers.SerializerMethodField(
        help_text="A comparison's final preference once final (null before, and for single "
        "items); final_output is then the winner's output or its correction, null for a tie "
        "or all bad."
    )

    class Meta(ItemOutputSerializer.Meta):
        fields = [
            *ItemOutputSerializer.Meta.fields,
            "prompt",
            "is_transcript",
            "messages",
            "tools",
            "output",
            "candidates",
            "preference",
            "context",
            "metadata",
        ]

    # Computed, not attributes of the item (every other detail field is one).
    COMPUTED_FIELDS = ("candidates", "preference")

    def to_representation(self, instance: ReviewItem) -> dict:
        data = super().to_representation(instance)
        for name in self.Meta.fields[len(ItemOutputSerializer.Meta.fields) :]:
            if name in self.COMPUTED_FIELDS:
                data[name] = getattr(self, f"get_{name}")(instance)
            else:
                data[name] = getattr(instance, name)
        return data

    @extend_schema_field(CandidateOutputSerializer(many=True))
    def get_candidates(self, item: ReviewItem) -> list[dict]:
        if item.kind != ItemKind.COMPARISON:
            return []
        rows = CandidateOutputSerializer(item.candidates.order_by("position"), many=True).data
        request = self.context.get("request")
        principal = getattr(request, "user", None)
        if not may_see_candidate_models(
            principal, project_id=item.project_id, is_final=item.is_final
        ):
            for row in rows:
                row["model_name"] = row["model_version"] = None
        return rows

    @extend_schema_field(PreferenceOutputSerializer(allow_null=True))
    def get_preference(self, item: ReviewItem) -> dict | None:
        if item.kind != ItemKind.COMPARISON or not item.is_final or not item.final_preference:
            return None
        return {"preference": item.final_preference, "winner": item.final_candidate_id}


MAX_EXTERNAL_IDS = 1000


# Declared as one comma-separated string (repeating it also works, as the help
# says): any query text is a valid string, where an array-typed query parameter
# lets a fuzzer "negate" it with a scalar that reaches the server as a valid id.
@extend_schema_field({"type": "string"})
class ExternalIdsField(serializers.Field):
    """``external_id=a,b`` and/or repeated: exact ids, at most ``MAX_EXTERNAL_IDS``.

    Empty parts are skipped. An id that itself holds a comma matches as the
    whole value too, so no id is unfindable (a caller that needs exactness
    compares the answers' ids). An id no item has, however it looks (blank,
    longer than any id), matches nothing: the answer is an empty page, never
    the unfiltered one. An empty value is no filter, as for every optional
    query parameter.
    """

    default_error_messages = {
        "invalid": "Comma-separated external ids.",
        "too_many": f"At most {MAX_EXTERNAL_IDS} ids.",
    }

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            values = dictionary.getlist(self.field_name)
        else:
            values = dictionary.get(self.field_name, serializers.empty)
            if values is not serializers.empty and not isinstance(values, list):
                values = [values]
        if values is serializers.empty or all(value == "" for value in values):
            return serializers.empty
        return values

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(value, str) for value in data):
            self.fail("invalid")
        for value in data:
            error = text_error(value)
            if error:
                raise serializers.ValidationError(error)
        parts = [part for value in data for part in value.split(",") if part]
        if len(set(parts)) > MAX_EXTERNAL_IDS:
            self.fail("too_many")
        whole = [value for value in data if "," in value]
        return list(dict.fromkeys([*parts, *whole]))

    def to_representation(self, value):
        return value


class ItemListFilterSerializer(serializers.Serializer):
    external_id = ExternalIdsField(
        required=False,
        help_text=f"Exact external ids, comma-separated or repeated (at most "
        f"{MAX_EXTERNAL_IDS}); an unknown id matches nothing (an empty page).",
    )
    status = serializers.ChoiceField(choices=ItemStatus.choices, required=False)
    model_version = serializers.CharField(required=False, max_length=200)
    since = serializers.DateTimeField(
        required=False, help_text="Only items created at or after this ISO 8601 time."
    )

    SINGLE_VALUED = ("status", "model_version", "since")

    def validate(self, attrs):
        # A repeated parameter would be read as its last value, the others ignored.
        data = self.initial_data
        if hasattr(data, "getlist"):
            repeated = {
                name: ["Give this parameter once."]
                for name in self.SINGLE_VALUED
                if len(data.getlist(name)) > 1
            }
            if repeated:
                raise serializers.ValidationError(repeated)
        return attrs
