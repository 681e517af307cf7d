from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from reviews.models.items import ReviewItem


class AssignmentState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    RELEASED = "released", "Released"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """A reviewer's claim on an item, valid until its lease expires."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    state = models.CharField(
        max_length=10, choices=AssignmentState.choices, default=AssignmentState.ACTIVE
    )
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    candidate_order = models.JSONField(
        default=list,
        blank=True,
        help_text="Comparisons: candidate ids in the order this reviewer is shown them, "
        "drawn at the claim (a reload shows the same order).",
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "reviewer"],
                condition=Q(state="active"),
                name="one_active_assignment_per_item_reviewer",
            )
        ]
        indexes = [
            models.Index(fields=["reviewer", "state"], name="assignment_reviewer_state_idx"),
            models.Index(fields=["state", "lease_expires_at"], name="assignment_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} on {self.item_id} ({self.state})"


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    CORRECT = "correct", "Correct"


class Severity(models.TextChoices):
    NONE = "none", "None"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.NONE: 0, Severity.MINOR: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


class ReviewQuerySet(models.QuerySet):
    def trusted(self) -> "ReviewQuerySet":
        """Reviews that count: not quarantined (reviews/quality/quarantine.py)."""
        return self.filter(quarantine__isnull=True)


class Review(models.Model):
    """One reviewer's decision on one item."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="review"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    corrected_output = models.TextField(null=True, blank=True)
    reason_code = models.CharField(max_length=50, blank=True)
    note = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.NONE)
    seconds_spent = models.FloatField(default=0)
    preference = models.CharField(
        max_length=10,
        blank=True,
        help_text="Comparisons: winner / tie / all_bad (verdict then approve, correct when the "
        "winner was corrected, approve for a tie, reject for all bad).",
    )
    winner = models.ForeignKey(
        "reviews.Candidate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Comparisons: the candidate preferred (with preference = winner).",
    )
    candidate_order = models.JSONField(
        default=list, blank=True, help_text="Comparisons: candidate ids in the order shown."
    )
    rubric_scores = models.JSONField(
        default=dict,
        blank=True,
        help_text="Scores per rubric criterion key (reviews.rubric): an integer for a scale, "
        "the option for a categorical criterion, true/false for a boolean one.",
    )
    is_audit = models.BooleanField(
        default=False, help_text="An audit review of an auto-approved item."
    )
    control_correct = models.BooleanField(
        null=True,
        blank=True,
        editable=False,
        help_text="On a control item: whether the review matched the known answer.",
    )
    quarantine = models.ForeignKey(
        "reviews.Quarantine",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews",
        help_text="Set when the reviewer's decisions of this period were quarantined: the "
        "review no longer counts and its item went back to the queue.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    history = HistoricalRecords()
    objects = ReviewQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="one_review_per_reviewer")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer}: {self.verdict} on {self.item_id}"


class CorrectionTriplet(models.Model):
    """One changed attribute of a corrected output (entity, attribute, old, new)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="triplets")
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="triplets")
    attribute = models.CharField(
        max_length=500, help_text="JSON pointer for JSON outputs, else a text span 'chars a-b'."
    )
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.item_id} {self.attribute}"


class StepVerdictQuerySet(models.QuerySet):
    def counted(self) -> "StepVerdictQuerySet":
        """Marks that belong to the decision: of submitted reviews that count (not
        quarantined), not audit reviews (an audit has its own outcome)."""
        return self.filter(
            review__isnull=False, review__quarantine__isnull=True, review__is_audit=False
        )


class StepVerdict(models.Model):
    """A reviewer's mark on one step of a conversation: this turn (or tool call) went wrong.

    ``step`` is the turn's number in the item's whole conversation, from 1
    (``reviews.transcripts.transcript_of``); ``part`` the id of one of that
    turn's tool calls, or "" for the whole turn. Marked while the reviewer
    holds the claim (``assignment``), linked to their ``review`` when it is
    submitted; only submitted, trusted reviews' marks reach clients and exports.
    """

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="step_verdicts")
    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="step_verdicts"
    )
    review = models.ForeignKey(
        Review,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="step_verdicts",
        help_text="The review the mark belongs to; empty until the reviewer submits.",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="step_verdicts"
    )
    step = models.PositiveIntegerField(
        help_text="The turn's number in the whole conversation, from 1."
    )
    part = models.CharField(
        max_length=255,
        blank=True,
        help_text="The id of the tool call that went wrong; empty for the whole turn.",
    )
    reason = models.CharField(max_length=50, help_text="One of the project's reason codes.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()
    objects = StepVerdictQuerySet.as_manager()

    class Meta:
        ordering = ["step", "part", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "step", "part"], name="one_step_verdict_per_claim_part"
            )
        ]
        indexes = [models.Index(fields=["item", "review"], name="step_verdict_item_review_idx")]

    def __str__(self) -> str:
        where = f"step {self.step}" + (f" ({self.part})" if self.part else "")
        return f"{self.item_id} {where}: {self.reason}"
