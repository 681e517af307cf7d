"""Comparison items: one prompt with 2-4 candidate outputs, and the preferences given."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from simple_history.models import HistoricalRecords

from reviews.models.items import ReviewItem

MIN_CANDIDATES = 2
MAX_CANDIDATES = 4


class Preference(models.TextChoices):
    WINNER = "winner", "One candidate is best"
    TIE = "tie", "Tie"
    ALL_BAD = "all_bad", "All bad"


def _history_user(instance=None, request=None, **_kwargs):
    """The request's user when it is an account; an API key is no user the table points at."""
    user = getattr(request, "user", None)
    return user if isinstance(user, AbstractBaseUser) and user.is_authenticated else None


class Candidate(models.Model):
    """One candidate output of a comparison item, as submitted, with its tier-1 results.

    Written once at ingest. ``position`` is the submitted order; reviewers see
    the candidates in an order drawn per claim (``Assignment.candidate_order``).
    """

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="candidates")
    position = models.PositiveSmallIntegerField(help_text="Index in the submitted list (0-3).")
    output = models.TextField(help_text="The candidate output (untrusted text).")
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=200)
    confidence = models.FloatField(
        null=True, blank=True, help_text="The model's confidence in [0, 1], if known."
    )
    checks = models.JSONField(
        default=list,
        blank=True,
        help_text="Tier-1 results on this candidate: [{name, kind, severity, passed, message}].",
    )
    check_failed = models.BooleanField(
        default=False,
        help_text="A blocking check failed: shown as failed and never chosen as the gold answer.",
    )
    history = HistoricalRecords(get_user=_history_user)

    class Meta:
        ordering = ["item", "position"]
        constraints = [
            models.UniqueConstraint(fields=["item", "position"], name="unique_candidate_position")
        ]

    def __str__(self) -> str:
        return f"{self.item_id} candidate {self.position}"
