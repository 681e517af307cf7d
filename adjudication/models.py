"""Adjudication: a senior reviewer's final call on an item whose reviews disagree."""

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from simple_history.models import HistoricalRecords

from reviews.models import Project, Review, ReviewItem, Severity


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    DECIDED = "decided", "Decided"


class CaseKind(models.TextChoices):
    DISAGREEMENT = "disagreement", "Two reviews disagree"
    REOPEN = "reopen", "A senior reopened a final item"


class Upheld(models.TextChoices):
    A = "a", "Review A"
    B = "b", "Review B"
    NEITHER = "neither", "Neither: the senior's own final output"


class AdjudicationCaseQuerySet(models.QuerySet):
    def open(self) -> "AdjudicationCaseQuerySet":
        return self.filter(status=CaseStatus.OPEN)

    def in_queue_order(self) -> "AdjudicationCaseQuerySet":
        return self.order_by(*AdjudicationCase.QUEUE_ORDER)

    def not_reviewed_by(self, user) -> "AdjudicationCaseQuerySet":
        """Cases none of whose reviews is ``user``'s: nobody adjudicates their own review."""
        # Two primary-key probes per case; a join would scan every review in the table.
        own = Review.objects.filter(
            Q(pk=OuterRef("review_a_id")) | Q(pk=OuterRef("review_b_id")), reviewer=user
        )
        return self.exclude(Exists(own))


class AdjudicationCase(models.Model):
    """An item waiting for (or decided by) a senior reviewer.

    Opened when two blind reviews disagree, or when a senior reopens a final
    item. The decision is final and becomes the item's gold label.
    """

    QUEUE_ORDER = (F("severity_rank").desc(), F("opened_at").asc(), F("id").asc())

    item = models.ForeignKey(
        ReviewItem, on_delete=models.CASCADE, related_name="adjudication_cases"
    )
    project = models.ForeignKey(
        Project,
        on_delete=models.CASCADE,
        related_name="adjudication_cases",
        help_text="The item's project, kept here so the senior queue is one index scan.",
    )
    kind = models.CharField(max_length=20, choices=CaseKind.choices)
    status = models.CharField(max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    review_a = models.ForeignKey(
        Review,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The earlier of the two reviews.",
    )
    review_b = models.ForeignKey(
        Review,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The later of the two reviews.",
    )
    severity_rank = models.PositiveSmallIntegerField(
        default=0, help_text="Rank of the higher severity of the reviews (0 none … 3 critical)."
    )
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The senior who reopened the item (reopen cases only).",
    )
    open_reason = models.TextField(blank=True, help_text="Why the case was opened.")
    reopened_status = models.CharField(
        max_length=20, blank=True, help_text="Reopen cases: the item's final status before."
    )
    reopened_output = models.TextField(
        null=True, blank=True, help_text="Reopen cases: the item's released output before."
    )

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjudication_decisions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    upheld = models.CharField(max_length=10, choices=Upheld.choices, blank=True)
    final_verdict = models.CharField(max_length=10, blank=True)
    final_output = models.TextField(null=True, blank=True)
    final_reason_code = models.CharField(max_length=50, blank=True)
    final_severity = models.CharField(max_length=10, blank=True)
    rationale = models.TextField(blank=True, help_text="The senior's reasons (required).")

    history = HistoricalRecords()
    objects = AdjudicationCaseQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item"],
                condition=Q(status="open"),
                name="one_open_case_per_item",
            ),
            models.CheckConstraint(
                condition=Q(status="open")
                | (Q(decided_by__isnull=False) & Q(decided_at__isnull=False) & ~Q(rationale="")),
                name="decided_case_has_senior_and_rationale",
            ),
            models.CheckConstraint(
                condition=Q(review_a__isnull=True) | ~Q(review_a=F("review_b")),
                name="case_reviews_differ",
            ),
        ]
        indexes = [
            models.Index(
                "project",
                F("severity_rank").desc(),
                "opened_at",
                "id",
                condition=Q(status="open"),
                name="case_queue_idx",
            ),
            # Queue order across all projects: a senior's next case is the first
            # row of this scan that passes the filters, with no sort of the backlog.
            models.Index(
                F("severity_rank").desc(),
                "opened_at",
                "id",
                condition=Q(status="open"),
                name="case_open_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk} on item {self.item_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == CaseStatus.OPEN

    @property
    def severity_label(self) -> str:
        labels = Severity.labels
        return labels[min(self.severity_rank, len(labels) - 1)]


class ClaimState(models.TextChoices):
    ACTIVE = "active", "Active"
    DECIDED = "decided", "Decided"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class CaseClaim(models.Model):
    """A senior's claim on a case, valid until its lease expires."""

    case = models.ForeignKey(AdjudicationCase, on_delete=models.CASCADE, related_name="claims")
    senior = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_claims"
    )
    state = models.CharField(max_length=10, choices=ClaimState.choices, default=ClaimState.ACTIVE)
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            # At most one live claim per case: two seniors never work one case at once.
            models.UniqueConstraint(
                fields=["case"], condition=Q(state="active"), name="one_active_claim_per_case"
            ),
            # A case is decided once: the last line of defence against a double submit.
            models.UniqueConstraint(
                fields=["case"], condition=Q(state="decided"), name="one_decided_claim_per_case"
            ),
        ]
        indexes = [models.Index(fields=["senior", "state"], name="claim_senior_state_idx")]

    def __str__(self) -> str:
        return f"{self.senior} on case {self.case_id} ({self.state})"
