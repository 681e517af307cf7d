import hashlib
import re
import secrets

import jsonschema
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from reviews.netpolicy import WebhookRefused, webhook_target_resolve

DEFAULT_REASON_CODES = [
    "factual_error",
    "hallucination",
    "wrong_entity",
    "unsafe",
    "format",
    "incomplete",
    "tone",
    "other",
]


def default_reason_codes() -> list[str]:
    return list(DEFAULT_REASON_CODES)


def new_audit_salt() -> str:
    return secrets.token_hex(8)


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class ProjectMode(models.TextChoices):
    GATE = "gate", "Gate (HITL): every output is reviewed"
    MONITOR = "monitor", "Monitor (HOTL): only triggered or sampled outputs are reviewed"


class OtlpGrouping(models.TextChoices):
    SPAN = "span", "One item per LLM span"
    TRACE = "trace", "One item per trace: its last LLM answer, earlier calls and tools as steps"


class Project(models.Model):
    """A review policy: how outputs of one LLM application are checked and routed."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, help_text="Used in URLs and the API.")
    description = models.TextField(blank=True)
    mode = models.CharField(
        max_length=10,
        choices=ProjectMode.choices,
        default=ProjectMode.GATE,
        help_text="Gate reviews every output; monitor reviews only triggered or sampled ones.",
    )
    allow_corrections = models.BooleanField(
        default=True, help_text="Reviewers may correct outputs, not only approve or reject."
    )
    reviews_required = models.PositiveSmallIntegerField(
        default=1,
        choices=[(1, "One review"), (2, "Two blind reviews")],
        help_text="Two blind reviews send disagreements to a senior reviewer.",
    )
    confidence_threshold = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Monitor mode: outputs with a lower model confidence go to review.",
    )
    risk_keywords = models.JSONField(
        default=list,
        blank=True,
        help_text='Words that send an output to review first, e.g. ["dosage", "lawsuit"].',
    )
    audit_sample_rate = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Monitor mode: share of auto-approved outputs also queued for an audit review.",
    )
    audit_salt = models.CharField(
        max_length=32,
        default=new_audit_salt,
        help_text="Seed of the audit sample: the same salt and external id always sample alike.",
    )
    reason_codes = models.JSONField(
        default=default_reason_codes,
        help_text="Reason taxonomy offered to reviewers for reject and correct.",
    )
    lease_minutes = models.PositiveIntegerField(
        default=30, help_text="How long a reviewer's claim on an item lasts."
    )
    undo_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MaxValueValidator(3600)],
        help_text="How long a reviewer may undo their last decision (seconds), as long as "
        "nobody else acted on the item and no webhook told the client. 0: no undo.",
    )
    # --- Webhooks and monitoring (reviews/webhooks/, reviews/monitoring/) ---
    webhook_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="POST each final result here (JSON, signed with the secret). Empty: no webhook.",
    )
    webhook_secret = models.CharField(
        max_length=200,
        blank=True,
        default=new_webhook_secret,
        help_text="HMAC-SHA256 key for the X-HITL-Signature header. Share it with the receiver.",
    )
    accuracy_target = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Accuracy the model must reach (lower 95% bound) before monitor mode is advised.",
    )
    max_intervention_rate = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Monitor mode is advised only while reviewers change fewer outputs than this.",
    )
    advice_min_reviews = models.PositiveIntegerField(
        default=200,
        validators=[MinValueValidator(1)],
        help_text="Human decisions needed in the window before any mode advice is given.",
    )
    monitoring_window_days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text="The recent window for mode advice and drift detection (days).",
    )
    drift_margin = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Alert when a model version's audited accuracy in the window is below its "
        "baseline by more than this, with 95% confidence.",
    )
    drift_min_samples = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Audit reviews needed in both the window and the baseline to judge drift.",
    )
    drift_auto_gate = models.BooleanField(
        default=False,
        help_text="On a drift alert, switch a monitor-mode project back to gate mode.",
    )
    # --- OpenTelemetry intake (reviews/otlp/) ---
    otlp_grouping = models.CharField(
        max_length=10,
        choices=OtlpGrouping.choices,
        default=OtlpGrouping.SPAN,
        help_text="OTLP traces: one item per LLM span, or one per trace (its last answer).",
    )
    otlp_external_id_attribute = models.CharField(
        max_length=200,
        blank=True,
        help_text="Span attribute holding the item's external id (e.g. app.case_id). "
        "Empty: the trace and span ids.",
    )
    otlp_confidence_attribute = models.CharField(
        max_length=200,
        blank=True,
        help_text="Span attribute holding the model confidence, a number in [0, 1] "
        "(e.g. app.confidence). Empty: no confidence.",
    )
    # --- Reviewer quality: controls, rushed reviews, quarantine (reviews/quality/) ---
    control_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of claims that serve a control item (a known answer) instead of the "
        "next item, while the reviewer has controls left and real work waits. 0: no controls.",
    )
    control_accuracy_floor = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A reviewer whose control accuracy is below this, with 95% confidence (the "
        "upper Wilson bound under it), is quarantined when the rule is on.",
    )
    control_min_reviews = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1)],
        help_text="Control reviews needed in the look-back before the rule judges a reviewer.",
    )
    quarantine_by_rule = models.BooleanField(
        default=False,
        help_text="Quarantine a reviewer's decisions of the look-back period automatically "
        "when their control accuracy falls below the floor.",
    )
    quarantine_lookback_days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text="The period the rule measures control accuracy over and quarantines.",
    )
    second_review_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a flagged reviewer's decisions (rushed-review signals) sent to a "
        "second blind review by someone else before they are final.",
    )
    # --- Review budget in monitor mode (reviews/services/routing.py) ---
    budget_share = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Monitor mode: review this share of outputs, the least confident per model "
        "version (risk triggers first), instead of the fixed confidence threshold. "
        "Empty: the threshold decides.",
    )
    budget_window = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(20), MaxValueValidator(5000)],
        help_text="How many recent confidences per model version the share is ranked against.",
    )
    budget_daily_capacity = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Monitor mode: at most this many outputs a day go to review (UTC days); risk "
        "triggers always go and count first. Empty: no daily cap.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["webhook_secret"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if not isinstance(self.risk_keywords, list) or not all(
            isinstance(word, str) and word.strip() for word in self.risk_keywords
        ):
            errors["risk_keywords"] = "Enter a JSON list of non-empty strings."
        if (
            not isinstance(self.reason_codes, list)
            or not self.reason_codes
            or not all(isinstance(code, str) and code.strip() for code in self.reason_codes)
        ):
            errors["reason_codes"] = "Enter a non-empty JSON list of strings."
        if self.webhook_url:
            # The rule the delivery applies, so a URL it would refuse is never saved.
            # It resolves the host: DNS answers can change, and the delivery checks again.
            try:
                webhook_target_resolve(self.webhook_url)
            except WebhookRefused as exc:
                errors["webhook_url"] = str(exc)
            if not self.webhook_secret:
                errors["webhook_secret"] = "A webhook needs a secret to sign its requests."  # noqa: S105
        if errors:
            raise ValidationError(errors)


class MemberRole(models.TextChoices):
    REVIEWER = "reviewer", "Reviewer"
    SENIOR = "senior", "Senior reviewer"
    ADMIN = "admin", "Project admin"


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=MemberRole.choices, default=MemberRole.REVIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.get_role_display()})"


class CheckKind(models.TextChoices):
    JSON_VALID = "json_valid", "Output is valid JSON"
    JSON_SCHEMA = "json_schema", "Output matches a JSON Schema"
    MUST_MATCH = "must_match", "Regex must match"
    MUST_NOT_MATCH = "must_not_match", "Regex must not match"
    MIN_LENGTH = "min_length", "Minimum length (characters)"
    MAX_LENGTH = "max_length", "Maximum length (characters)"
    REQUIRED_KEYWORDS = "required_keywords", "Required keywords (all must appear)"
    BANNED_KEYWORDS = "banned_keywords", "Banned keywords (none may appear)"


class CheckSeverity(models.TextChoices):
    BLOCKING = "blocking", "Blocking: auto-reject the output"
    WARNING = "warning", "Warning: force human review"


class CheckRule(models.Model):
    """One tier-1 automated check on a project's outputs."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="check_rules")
    name = models.CharField(max_length=100, help_text="Shown to reviewers and API clients.")
    kind = models.CharField(max_length=20, choices=CheckKind.choices)
    severity = models.CharField(
        max_length=10, choices=CheckSeverity.choices, default=CheckSeverity.BLOCKING
    )
    pattern = models.TextField(blank=True, help_text="Regex for must/must-not match checks.")
    keywords = models.JSONField(
        default=list, blank=True, help_text='Keyword checks: a JSON list, e.g. ["disclaimer"].'
    )
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Length checks.")
    json_schema = models.JSONField(null=True, blank=True, help_text="JSON Schema checks.")
    enabled = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_check_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        kind = self.kind
        if kind in (CheckKind.MUST_MATCH, CheckKind.MUST_NOT_MATCH):
            if not self.pattern:
                raise ValidationError({"pattern": "A regex is required for this check."})
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValidationError({"pattern": f"Invalid regex: {exc}"}) from exc
        elif kind in (CheckKind.MIN_LENGTH, CheckKind.MAX_LENGTH):
            if self.limit is None:
                raise ValidationError({"limit": "A length is required for this check."})
        elif kind in (CheckKind.REQUIRED_KEYWORDS, CheckKind.BANNED_KEYWORDS):
            if (
                not isinstance(self.keywords, list)
                or not self.keywords
                or not all(isinstance(word, str) and word.strip() for word in self.keywords)
            ):
                raise ValidationError({"keywords": "Enter a non-empty JSON list of strings."})
        elif kind == CheckKind.JSON_SCHEMA:
            if not isinstance(self.json_schema, dict):
                raise ValidationError({"json_schema": "Enter a JSON Schema object."})
            try:
                jsonschema.validators.validator_for(self.json_schema).check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValidationError({"json_schema": f"Invalid schema: {exc.message}"}) from exc


API_KEY_PREFIX = "hitl"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is safe and keeps auth cheap.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A project's API key. Only its hash is stored; the key is shown once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What uses this key, e.g. 'triage-bot prod'.")
    prefix = models.CharField(max_length=12, editable=False, db_index=True)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=["hashed_key"])

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (raw key, display prefix, hash) for a new key."""
        prefix = secrets.token_hex(4)
        raw = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        return raw, prefix, hash_api_key(raw)
