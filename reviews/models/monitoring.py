import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviews.models.items import ReviewItem
from reviews.models.projects import Project


class WebhookEvent(models.TextChoices):
    ITEM_FINAL = "item.final", "Item became final"
    ITEM_AUDITED = "item.audited", "Audit review of an auto-approved item recorded"
    ITEM_WITHDRAWN = "item.withdrawn", "Released decision withdrawn (reviewer quarantined)"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDeliveryQuerySet(models.QuerySet):
    def due(self, *, now) -> "WebhookDeliveryQuerySet":
        """Pending deliveries whose next attempt time has come."""
        return self.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)


class WebhookDelivery(models.Model):
    """One event to POST to a project's webhook: the outbox row, written in the
    transaction that made the item final, so it survives Redis or the receiver being down."""

    id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        editable=False,
        help_text="Sent as X-HITL-Delivery; the same on every retry and re-send.",
    )
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    item = models.ForeignKey(
        ReviewItem, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=30, choices=WebhookEvent.choices)
    payload = models.JSONField(help_text="The event body, fixed when the event happened.")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        help_text="When the next attempt is due (pending deliveries only)."
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due_idx",
            ),
            models.Index(fields=["project", "-created_at"], name="webhook_delivery_project_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} for item {self.item_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: the delivery log shown in the admin."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    url = models.URLField(max_length=500)
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who asked for a re-send, if one did.",
    )

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url}: {self.status_code or self.error}"


class DriftAlert(models.Model):
    """A model version whose audited accuracy dropped below its baseline with confidence."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="drift_alerts")
    model_version = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    baseline_correct = models.PositiveIntegerField()
    baseline_total = models.PositiveIntegerField()
    window_correct = models.PositiveIntegerField()
    window_total = models.PositiveIntegerField()
    margin = models.FloatField(help_text="The project's drift margin when the alert was raised.")
    switched_to_gate = models.BooleanField(
        default=False, help_text="The project was switched back to gate mode by this alert."
    )
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "model_version"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_drift_alert_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"Drift in {self.project} {self.model_version}"

    @property
    def baseline_accuracy(self) -> float:
        return self.baseline_correct / self.baseline_total if self.baseline_total else 0.0

    @property
    def window_accuracy(self) -> float:
        return self.window_correct / self.window_total if self.window_total else 0.0


class MonitoringDashboard(Project):
    """The admin's entry for the monitoring dashboard (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "monitoring dashboard"
        verbose_name_plural = "monitoring dashboard"


# --- Rollups: the dashboard, drift and mode advice read these, not the raw rows ----------
#
# Daily sums per project (and model or reviewer), folded from items, reviews and judge
# verdicts by reviews.monitoring.rollups. A row is a pure function of the raw rows of its
# (project, day): the fold recomputes whole days, so re-running it changes nothing.


class DailyDecisionRollup(models.Model):
    """One project's decisions, audits, reviews and judge verdicts for one model and day.

    Counts by the day of the event: ``reviewed_*`` and ``auto_*`` by the item's
    ``decided_at``; ``audit_*`` and ``reviews_*`` by the review's ``created_at``;
    ``judge_*`` by the verdict's ``created_at`` (days in ``settings.TIME_ZONE``).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=200)
    day = models.DateField()
    reviewed_total = models.PositiveIntegerField(
        default=0, help_text="Items a human made final (approved, corrected or rejected)."
    )
    reviewed_correct = models.PositiveIntegerField(
        default=0, help_text="Of those, approved as they were: the reviewed accuracy numerator."
    )
    reviewed_corrected = models.PositiveIntegerField(default=0)
    reviewed_rejected = models.PositiveIntegerField(default=0)
    auto_approved = models.PositiveIntegerField(default=0)
    auto_rejected = models.PositiveIntegerField(default=0)
    audit_total = models.PositiveIntegerField(
        default=0, help_text="Audit reviews of auto-approved items."
    )
    audit_correct = models.PositiveIntegerField(
        default=0, help_text="Of those, approvals: the audit accuracy numerator."
    )
    reviews_total = models.PositiveIntegerField(
        default=0, help_text="Non-audit human reviews (the intervention rate's denominator)."
    )
    reviews_changed = models.PositiveIntegerField(
        default=0, help_text="Of those, corrections and rejections."
    )
    judge_total = models.PositiveIntegerField(default=0)
    judge_flagged = models.PositiveIntegerField(
        default=0, help_text="Judge verdicts other than pass (flag, fail, error)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "model_name", "model_version"],
                name="one_decision_rollup_per_model_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.model_name} {self.model_version} {self.day}"


class DailyReviewerRollup(models.Model):
    """One reviewer's reviews in one project on one day (the throughput table)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField()
    reviews = models.PositiveIntegerField(default=0)
    approved = models.PositiveIntegerField(default=0)
    corrected = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    audits = models.PositiveIntegerField(default=0)
    seconds_spent = models.FloatField(default=0, help_text="Sum over the reviews.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "reviewer"], name="one_reviewer_rollup_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.reviewer_id} {self.day}"


class RollupCodeKind(models.TextChoices):
    REASON = "reason", "Reason code"
    SEVERITY = "severity", "Severity"


class DailyCodeRollup(models.Model):
    """Corrections and rejections of one project and day per reason code or severity."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=10, choices=RollupCodeKind.choices)
    code = models.CharField(max_length=50, blank=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "kind", "code"], name="one_code_rollup_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.day} {self.kind}={self.code}: {self.count}"


class RollupState(models.Model):
    """The fold's watermark (one row): what the rollups include, and when they were built."""

    name = models.CharField(max_length=30, primary_key=True)
    folded_at = models.DateTimeField(
        null=True, blank=True, help_text="Changes made before this moment are in the rollups."
    )
    rebuilt_at = models.DateTimeField(
        null=True, blank=True, help_text="The last full rebuild (backfill)."
    )

    def __str__(self) -> str:
        return f"{self.name}: folded at {self.folded_at}"
