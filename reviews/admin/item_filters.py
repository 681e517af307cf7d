"""The item list's filters: reviews' reason and severity, judge label, reviewer, ranges.

Choices come from what the user may see: reason codes of their projects, the
reviewers of their projects; model name and version are typed (an exact
match), so the list never offers another project's models, and no filter
scans the items table to build its choices. Each filter adds one condition
to the list's query (an ``EXISTS`` over reviews or verdicts, or a range), so
the page's query count stays the same whatever is chosen.
"""

from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils import timezone

from reviews.access import Capability, projects_where, roles_with
from reviews.jsontext import text_error
from reviews.models import (
    ItemStatus,
    JudgeLabel,
    JudgeVerdict,
    ProjectMembership,
    Review,
    Severity,
)
from reviews.models.items import FINAL_STATUSES
from reviews.services.review_rules import reason_label

# Blind review: what a review said shows only once no review of the item is awaited.
REVIEWS_VISIBLE = [*FINAL_STATUSES, ItemStatus.IN_ADJUDICATION]


class _ReviewExistsFilter(admin.SimpleListFilter):
    """Items with at least one review matching ``review_field`` = the chosen value.

    ``blind`` filters (what a review said: reason, severity) match only items
    whose reviews are visible, so a filter never tells a reviewer what a
    colleague decided on an item they have still to review.
    """

    review_field = ""
    blind = True

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        allowed = {str(key) for key, _label in self.lookup_choices}
        if value not in allowed:
            raise IncorrectLookupParameters(f"Unknown {self.title}.")
        reviews = Review.objects.filter(item=OuterRef("pk"), **{self.review_field: value})
        if self.blind:
            queryset = queryset.filter(status__in=REVIEWS_VISIBLE)
        return queryset.filter(Exists(reviews))


class ReasonFilter(_ReviewExistsFilter):
    title = "review reason"
    parameter_name = "reason"
    review_field = "reason_code"

    def lookups(self, request, model_admin):
        codes: set[str] = set()
        projects = projects_where(request.user, Capability.VIEW)
        for reason_codes in projects.values_list("reason_codes", flat=True):
            codes.update(code for code in reason_codes or [] if isinstance(code, str))
        return [(code, reason_label(code)) for code in sorted(codes)]


class SeverityFilter(_ReviewExistsFilter):
    title = "review severity"
    parameter_name = "severity"
    review_field = "severity"

    def lookups(self, request, model_admin):
        return Severity.choices


class ReviewerFilter(_ReviewExistsFilter):
    """Items a given reviewer reviewed; the choices are reviewers of the user's projects."""

    title = "reviewer"
    parameter_name = "reviewer"
    review_field = "reviewer_id"
    blind = False  # that someone reviewed an item is on its timeline already

    def lookups(self, request, model_admin):
        projects = projects_where(request.user, Capability.VIEW).values("pk")
        members = ProjectMembership.objects.filter(
            project__in=projects, role__in=roles_with(Capability.REVIEW)
        ).values("user_id")
        users = get_user_model().objects.filter(pk__in=members).order_by("username")
        return [(str(pk), name) for pk, name in users.values_list("pk", "username")]


class JudgeLabelFilter(admin.SimpleListFilter):
    title = "judge label"
    parameter_name = "judge"

    def lookups(self, request, model_admin):
        return JudgeLabel.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in JudgeLabel.values:
            raise IncorrectLookupParameters("Unknown judge label.")
        return queryset.filter(
            Exists(JudgeVerdict.objects.filter(item=OuterRef("pk"), label=value))
        )


class InputFilter(admin.ListFilter):
    """A filter of typed values: a small GET form in the sidebar.

    ``fields`` holds (parameter, label, input type). The form carries the
    list's other parameters along as hidden inputs.
    """

    template = "admin/reviews/reviewitem/input_filter.html"
    fields: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        names = {name for name, _label, _kind in self.fields}
        for name in names:
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = (
                    value[-1] if isinstance(value, list) else value
                ).strip()
        self.values = {name: self.used_parameters.get(name, "") for name in names}
        self.inputs = [(name, label, kind, self.values[name]) for name, label, kind in self.fields]
        self.carried = [
            (key, value)
            for key, values in request.GET.lists()
            if key not in names and key != "p"
            for value in values
        ]

    def has_output(self) -> bool:
        return True

    def expected_parameters(self):
        return [name for name, _label, _kind in self.fields]

    def choices(self, changelist):
        yield {
            "selected": any(self.values.values()),
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "All",
        }

    def queryset(self, request, queryset):
        conditions = {}
        for name, _label, kind in self.fields:
            raw = self.values[name]
            if raw:
                conditions[name] = self.parse(name, kind, raw)
        return self.apply(queryset, conditions) if conditions else queryset

    def parse(self, name: str, kind: str, raw: str):
        if kind == "text":
            if (problem := text_error(raw)) is not None:
                raise IncorrectLookupParameters(f"{name}: {problem}")
            return raw
        try:
            if kind == "number":
                return float(raw)
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise IncorrectLookupParameters(f"{name}: {raw!r} is not a valid {kind}.") from exc

    def apply(self, queryset, conditions: dict):
        raise NotImplementedError


class ModelFilter(InputFilter):
    title = "model (exact)"
    fields = (("model_name", "name", "text"), ("model_version", "version", "text"))

    def apply(self, queryset, conditions):
        return queryset.filter(**conditions)


class ConfidenceRangeFilter(InputFilter):
    title = "confidence"
    fields = (("confidence_min", "from", "number"), ("confidence_max", "to", "number"))

    def apply(self, queryset, conditions):
        if "confidence_min" in conditions:
            queryset = queryset.filter(confidence__gte=conditions["confidence_min"])
        if "confidence_max" in conditions:
            queryset = queryset.filter(confidence__lte=conditions["confidence_max"])
        return queryset


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class CreatedRangeFilter(InputFilter):
    """Submitted between two days, both included (the server's time zone)."""

    title = "submitted"
    fields = (("created_from", "from", "date"), ("created_to", "to", "date"))

    def apply(self, queryset, conditions):
        if "created_from" in conditions:
            queryset = queryset.filter(created_at__gte=_day_start(conditions["created_from"]))
        if "created_to" in conditions:
            end = _day_start(conditions["created_to"] + timedelta(days=1))
            queryset = queryset.filter(created_at__lt=end)
        return queryset
