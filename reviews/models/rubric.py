from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from reviews.models.projects import Project

# Scores are typed with one digit on the review page (reviews/rubric.py).
SCALE_LOWEST = 0
SCALE_HIGHEST = 9


class CriterionKind(models.TextChoices):
    SCALE = "scale", "Numeric scale with labelled anchors (e.g. 1-5)"
    CATEGORICAL = "categorical", "Categorical: one of a list of options"
    BOOLEAN = "boolean", "Boolean: yes or no"


class MeasurementLevel(models.TextChoices):
    """Krippendorff's levels of measurement: which differences between values count."""

    NOMINAL = "nominal", "Nominal"
    ORDINAL = "ordinal", "Ordinal"
    INTERVAL = "interval", "Interval"
    RATIO = "ratio", "Ratio"


DEFAULT_LEVEL = {
    CriterionKind.SCALE: MeasurementLevel.ORDINAL,
    CriterionKind.CATEGORICAL: MeasurementLevel.NOMINAL,
    CriterionKind.BOOLEAN: MeasurementLevel.NOMINAL,
}


class RubricCriterion(models.Model):
    """One criterion a project's reviewers score each output on (factuality, tone...)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rubric_criteria")
    key = models.SlugField(
        max_length=50,
        help_text="Stable name in the API, webhooks and exports, e.g. 'factuality'.",
    )
    label = models.CharField(max_length=100, help_text="Shown to reviewers.")
    description = models.TextField(
        blank=True, help_text="What the criterion means; shown on hover and in the help."
    )
    kind = models.CharField(
        max_length=12, choices=CriterionKind.choices, default=CriterionKind.SCALE
    )
    scale_min = models.PositiveSmallIntegerField(
        default=1, help_text=f"Scale: the lowest score ({SCALE_LOWEST}-{SCALE_HIGHEST})."
    )
    scale_max = models.PositiveSmallIntegerField(
        default=5, help_text=f"Scale: the highest score ({SCALE_LOWEST}-{SCALE_HIGHEST})."
    )
    anchors = models.JSONField(
        default=dict,
        blank=True,
        help_text='Scale: labels of some scores, e.g. {"1": "Wrong", "3": "Partly", "5": "Right"}.',
    )
    options = models.JSONField(
        default=list,
        blank=True,
        help_text='Categorical: the options in order, e.g. ["formal", "neutral", "casual"] '
        "(at most 9).",
    )
    required = models.BooleanField(
        default=True, help_text="A review cannot be submitted without this score."
    )
    order = models.PositiveSmallIntegerField(default=0, help_text="Position on the review page.")
    level = models.CharField(
        max_length=10,
        choices=MeasurementLevel.choices,
        blank=True,
        help_text="Level of measurement for Krippendorff's alpha. Empty: ordinal for a "
        "scale, nominal for categorical and boolean criteria.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["project", "order", "id"]
        verbose_name = "rubric criterion"
        verbose_name_plural = "rubric criteria"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="unique_rubric_criterion_key")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def measurement_level(self) -> str:
        return self.level or DEFAULT_LEVEL[self.kind]

    def clean(self) -> None:
        errors = {}
        if self.kind == CriterionKind.SCALE:
            if not SCALE_LOWEST <= self.scale_min < self.scale_max <= SCALE_HIGHEST:
                errors["scale_max"] = (
                    f"A scale runs from a lower to a higher score, both {SCALE_LOWEST}-"
                    f"{SCALE_HIGHEST} (one key per score)."
                )
            if not isinstance(self.anchors, dict) or not all(
                isinstance(label, str) for label in self.anchors.values()
            ):
                errors["anchors"] = 'Enter a JSON object of score -> label, e.g. {"1": "Wrong"}.'
            else:
                for score in self.anchors:
                    if not (
                        str(score).isdigit() and self.scale_min <= int(score) <= self.scale_max
                    ):
                        errors["anchors"] = f"Anchor '{score}' is not a score of the scale."
                        break
        if self.kind == CriterionKind.CATEGORICAL:
            options = self.options
            if (
                not isinstance(options, list)
                or not 2 <= len(options) <= 9
                or not all(isinstance(option, str) and option.strip() for option in options)
                or len(set(options)) != len(options)
            ):
                errors["options"] = "Enter a JSON list of 2 to 9 distinct, non-empty options."
        if self.kind == CriterionKind.BOOLEAN and self.level in (
            MeasurementLevel.INTERVAL,
            MeasurementLevel.RATIO,
        ):
            errors["level"] = "A yes/no criterion is nominal (or ordinal)."
        if errors:
            raise ValidationError(errors)
