"""Records of reviewer quality and the review budget.

Controls: a ``ReviewItem`` with ``is_control`` and its known answer
(``ControlAnswer``). Quarantine: a period of one reviewer's decisions in one
project marked untrusted. Standing: the latest evaluation of a reviewer's
signals. Budget state: the rolling confidences and pacing per model version,
and the per-day counters the dashboard reads.
"""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from reviews.models.items import ReviewItem
from reviews.models.projects import Project
from reviews.models.work import Verdict


class ControlAnswer(models.Model):
    """The known answer of a control item."""

    item = models.OneToOneField(ReviewItem, on_delete=models.CASCADE, related_name="control_answer")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="controls")
    expected_verdict = models.CharField(max_length=10, choices=Verdict.choices)
    expected_output = models.TextField(
        null=True,
        blank=True,
        help_text="Correct: a correction must agree with this output (whitespace, and JSON "
        "formatting, aside). Empty: any correction of the right paths counts.",
    )
    must_change = models.JSONField(
        default=list,
        blank=True,
        help_text='Correct, JSON outputs: JSON pointers a correction must change, e.g. ["/dose"].',
    )
    source_item = models.ForeignKey(
        ReviewItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The final item this control was made from, if any.",
    )
    active = models.BooleanField(default=True, help_text="Served to reviewers.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "control item"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Control {self.item_id} ({self.expected_verdict})"


class Quarantine(models.Model):
    """One reviewer's decisions in one project over [start, end) marked untrusted."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quarantines")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quarantines"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.TextField()
    by_rule = models.BooleanField(default=False, help_text="Made by the control-accuracy rule.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    reviews_count = models.PositiveIntegerField(default=0)
    items_withdrawn = models.PositiveIntegerField(
        default=0, help_text="Released decisions withdrawn and sent back to the queue."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "reviewer", "end"], name="quarantine_period_idx")
        ]

    def __str__(self) -> str:
        return f"Quarantine of {self.reviewer} in {self.project} from {self.start:%Y-%m-%d}"


class ReviewerStanding(models.Model):
    """The latest evaluation of a reviewer in a project (``reviewer_quality_evaluate``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    flagged = models.BooleanField(
        default=False, help_text="Rushed-review signals found in the look-back period."
    )
    signals = models.JSONField(default=dict, help_text="Signal name -> how many decisions.")
    evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "reviewer"], name="unique_reviewer_standing")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_id} in {self.project_id}: {'flagged' if self.flagged else 'ok'}"


class BudgetState(models.Model):
    """The review budget's memory for one model version of a monitor project.

    ``recent`` holds the last ``budget_window`` confidences in arrival order;
    ``debt`` is the pacing term: the share owed minus the items sent, clamped.
    Written under the row lock by the ingest or judge transaction that routes.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    model_version = models.CharField(max_length=200)
    share = models.FloatField(help_text="The share this state was paced for.")
    recent = models.JSONField(default=list)
    debt = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "model_version"], name="unique_budget_state")
        ]

    def __str__(self) -> str:
        return f"Budget of {self.model_version} in project {self.project_id}"


class BudgetDay(models.Model):
    """What the review budget did on one UTC day of one project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    considered = models.PositiveIntegerField(default=0, help_text="Outputs routed.")
    sent_risk = models.PositiveIntegerField(default=0, help_text="Sent on a risk trigger.")
    sent_budget = models.PositiveIntegerField(
        default=0, help_text="Sent as the least confident (share or threshold)."
    )
    over_capacity = models.PositiveIntegerField(
        default=0, help_text="Chosen for review, released because the day's capacity was used."
    )
    released_below_threshold = models.PositiveIntegerField(
        default=0,
        help_text="Released with a confidence under the fixed threshold (that the threshold "
        "alone would have sent to review).",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="unique_budget_day")]
        ordering = ["project", "day"]

    def __str__(self) -> str:
        return f"Budget of project {self.project_id} on {self.day}"
