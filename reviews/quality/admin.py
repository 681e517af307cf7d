"""Reviewer quality in the admin: controls, the reviewer pages, quarantines.

Project admins only, asked of ``reviews.access`` per project: which items are
controls, who rushed and who was quarantined are not for reviewers to see.
Thin views: parse the form, call one selector or service in
``reviews.quality``, render templates under templates/admin/reviews/quality/.
"""

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from reviews.access import Capability, may, projects_where
from reviews.access.admin import ProjectScopedAdminMixin, ReadOnlyHistoryAdmin
from reviews.api.validation import validate_item
from reviews.errors import DomainError, NotAllowed
from reviews.models import ControlAnswer, Project, Quarantine, ReviewItem
from reviews.quality.controls import (
    KnownAnswer,
    answer_validate,
    control_answer_update,
    control_check,
    control_create,
    controls_create_from_items,
    controls_set_active,
)
from reviews.quality.quarantine import quarantine_create
from reviews.quality.selectors import (
    ITEMS_SHOWN,
    SIGNAL_LABELS,
    control_accuracy,
    quarantines_of,
    reviewer_of_project,
    reviewer_signals,
    reviewers_overview,
)

# --- Controls ---------------------------------------------------------------------


def _must_change(value) -> tuple[str, ...]:
    return tuple(str(pointer) for pointer in value or ())


class MustChangeField(forms.CharField):
    """JSON pointers, one a line (``/dose``), as the list a ``ControlAnswer`` keeps."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        pointers = [line.strip() for line in text.splitlines() if line.strip()]
        for pointer in pointers:
            if not pointer.startswith("/"):
                raise forms.ValidationError(f"{pointer!r} is not a JSON pointer (starts with /).")
        return pointers


class KnownAnswerFields(forms.ModelForm):
    expected_output = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=ControlAnswer._meta.get_field("expected_output").help_text,
    )
    must_change = MustChangeField(
        required=False,
        help_text="Correct, JSON outputs: JSON pointers a correction must change, one a line.",
    )

    def answer(self) -> KnownAnswer:
        data = self.cleaned_data
        return KnownAnswer(
            verdict=data.get("expected_verdict") or "",
            expected_output=data.get("expected_output") or None,
            must_change=_must_change(data.get("must_change")),
        )


class ControlUploadForm(KnownAnswerFields):
    """A new control: the item as a client would submit it, and its known answer."""

    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False)
    output = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), strip=False)
    model_name = forms.CharField(max_length=200)
    model_version = forms.CharField(max_length=200)
    confidence = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    context = forms.JSONField(
        required=False, help_text='Retrieved documents, e.g. [{"title": "…", "text": "…"}].'
    )
    metadata = forms.JSONField(required=False, help_text="A JSON object.")

    class Meta:
        model = ControlAnswer
        fields = ["project", "expected_verdict", "expected_output", "must_change"]

    content: dict | None = None

    def clean(self):
        data = super().clean()
        raw = {
            "external_id": "control",
            "prompt": data.get("prompt") or "",
            "output": data.get("output") or "",
            "model_name": data.get("model_name") or "",
            "model_version": data.get("model_version") or "",
            "context": data.get("context") or [],
            "metadata": data.get("metadata") or {},
        }
        if data.get("confidence") is not None:
            raw["confidence"] = data["confidence"]
        fields, errors = validate_item(raw)
        for name, problems in errors.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                self.add_error(name if name in self.fields else None, str(problem))
        project = data.get("project")
        if fields is None or project is None or self.errors:
            return data
        fields.pop("external_id", None)
        fields.setdefault("tools", [])
        fields.setdefault("is_transcript", False)
        for name, problems in control_check(
            project=project, content=fields, answer=self.answer()
        ).items():
            for problem in problems:
                self.add_error(name if name in self.fields else None, problem)
        self.content = fields
        return data


class ControlChangeForm(KnownAnswerFields):
    class Meta:
        model = ControlAnswer
        fields = ["expected_verdict", "expected_output", "must_change", "active"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        problems = answer_validate(
            output=self.instance.item.output,
            answer=self.answer(),
            allow_corrections=self.instance.project.allow_corrections,
        )
        for name, messages_ in problems.items():
            for problem in messages_:
                self.add_error(name if name in self.fields else None, problem)
        return data


class ControlAnswerAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    """Controls of the projects the user administers: upload one, change its answer.

    Controls are never deleted (their reviews measure reviewers); a control
    stops being served when made inactive.
    """

    view_capability = Capability.ADMINISTER
    change_capability = Capability.ADMINISTER
    list_display = [
        "item_link",
        "project",
        "expected_verdict",
        "active",
        "source_link",
        "created_by",
        "created_at",
    ]
    list_filter = ["project", "active", "expected_verdict"]
    list_select_related = ["item", "project", "source_item", "created_by"]
    show_full_result_count = False
    readonly_fields = [
        "item_link",
        "project",
        "prompt",
        "output",
        "source_link",
        "accuracy",
        "created_by",
        "created_at",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ControlChangeForm if obj is not None else ControlUploadForm
        kwargs["fields"] = None
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["project"]}),
                (
                    "The item, as a client would submit it",
                    {
                        "fields": [
                            "prompt",
                            "output",
                            ("model_name", "model_version"),
                            "confidence",
                            "context",
                            "metadata",
                        ]
                    },
                ),
                (
                    "The known answer",
                    {"fields": ["expected_verdict", "expected_output", "must_change"]},
                ),
            ]
        answer = ["expected_verdict", "expected_output", "must_change", "active"]
        return [
            (None, {"fields": ["item_link", "project", "source_link", "accuracy"]}),
            ("The item", {"fields": ["prompt", "output"]}),
            ("The known answer", {"fields": answer}),
            (None, {"fields": ["created_by", "created_at"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    @admin.display(description="Control item", ordering="item_id")
    def item_link(self, control: ControlAnswer):
        url = reverse("admin:reviews_reviewitem_change", args=[control.item_id])
        return format_html('<a href="{}">{}</a>', url, control.item.external_id)

    @admin.display(description="Made from")
    def source_link(self, control: ControlAnswer):
        if control.source_item_id is None:
            return "Uploaded"
        url = reverse("admin:reviews_reviewitem_change", args=[control.source_item_id])
        return format_html('<a href="{}">{}</a>', url, control.source_item.external_id)

    @admin.display(description="Prompt")
    def prompt(self, control: ControlAnswer) -> str:
        return control.item.prompt

    @admin.display(description="Output")
    def output(self, control: ControlAnswer) -> str:
        return control.item.output

    @admin.display(description="Reviews of it")
    def accuracy(self, control: ControlAnswer) -> str:
        reviews = control.item.reviews.all()
        right = sum(1 for review in reviews if review.control_correct)
        return f"{right} of {len(reviews)} gave the known answer"

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            control_answer_update(
                control=obj,
                answer=form.answer(),
                active=form.cleaned_data["active"],
                by=request.user,
            )
            return
        control = control_create(
            project=form.cleaned_data["project"],
            content=form.content,
            answer=form.answer(),
            by=request.user,
        )
        obj.pk = control.pk
        obj.item = control.item


# --- Item list actions (ReviewItemAdmin) ------------------------------------------


def _administered_items(request, queryset) -> list[ReviewItem]:
    projects = projects_where(request.user, Capability.ADMINISTER)
    return list(queryset.filter(project__in=projects).select_related("project")[:1000])


@admin.action(description="Make controls of the selected final items (project admins)")
def make_controls(model_admin, request, queryset):
    try:
        made = controls_create_from_items(
            items=_administered_items(request, queryset), by=request.user
        )
    except NotAllowed as exc:
        model_admin.message_user(
            request, f"{exc.message} Only human-decided items can be.", messages.ERROR
        )
        return
    model_admin.message_user(
        request,
        format_html(
            '{} control(s) made; their known answer is the final decision. See <a href="{}">'
            "controls</a>.",
            len(made),
            reverse("admin:reviews_controlanswer_changelist"),
        ),
        messages.SUCCESS,
    )


@admin.action(description="Stop serving the selected controls (project admins)")
def stop_controls(model_admin, request, queryset):
    changed = controls_set_active(
        items=_administered_items(request, queryset), active=False, by=request.user
    )
    model_admin.message_user(request, f"{changed} control(s) no longer served.")


@admin.action(description="Serve the selected controls again (project admins)")
def serve_controls(model_admin, request, queryset):
    changed = controls_set_active(
        items=_administered_items(request, queryset), active=True, by=request.user
    )
    model_admin.message_user(request, f"{changed} control(s) served again.")


CONTROL_ACTIONS = [make_controls, stop_controls, serve_controls]
for _action in CONTROL_ACTIONS:
    _action.allowed_permissions = ("administer",)


class ControlListFilter(admin.SimpleListFilter):
    """Controls or real items, among the projects the user administers only."""

    title = "control items"
    parameter_name = "control"

    def lookups(self, request, model_admin):
        return [("yes", "Controls"), ("no", "Real items")]

    def queryset(self, request, queryset):
        administered = projects_where(request.user, Capability.ADMINISTER)
        if self.value() == "yes":
            return queryset.filter(is_control=True, project__in=administered)
        if self.value() == "no":
            return queryset.filter(is_control=False)
        return queryset


def item_fields_for(request, item: ReviewItem | None, fields: list[str]) -> list[str]:
    """The item page's fields: whether an item is a control is for its project's admins."""
    if item is not None and may(request.user, Capability.ADMINISTER, item.project_id):
        return fields
    return [name for name in fields if name not in ("is_control", "second_review")]


# --- Reviewers and quarantines ------------------------------------------------------


class PeriodForm(forms.Form):
    """A project the user administers and a period of whole days, both ends included."""

    project = forms.ModelChoiceField(queryset=Project.objects.none())
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, projects, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("start", "The start must not be after the end.")
        return data

    def period(self, project: Project) -> tuple[datetime, datetime]:
        return days_period(
            self.cleaned_data.get("start"),
            self.cleaned_data.get("end"),
            default_days=project.quarantine_lookback_days,
        )


def days_period(start_day, end_day, *, default_days: int) -> tuple[datetime, datetime]:
    """[start 00:00, day after end 00:00) in the current time zone; default: the last days."""
    end_day = end_day or timezone.localdate()
    start_day = start_day or end_day - timedelta(days=default_days - 1)
    zone = timezone.get_current_timezone()
    try:
        return (
            datetime.combine(start_day, time.min, tzinfo=zone),
            datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=zone),
        )
    except OverflowError as exc:
        raise forms.ValidationError("Choose a date between years 1 and 9999.") from exc


class QuarantineForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end"):
            if data["start"] > data["end"]:
                self.add_error("end", "The end must not be before the start.")
            else:
                try:
                    self.period = days_period(data["start"], data["end"], default_days=1)
                except forms.ValidationError as exc:
                    self.add_error("end", exc)
        return data


class QuarantineAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    """Quarantines of the projects the user administers, and the reviewer pages.

    Quarantines are made on a reviewer's page (or by the rule), never edited
    or deleted here: their reviews stay marked.
    """

    view_capability = Capability.ADMINISTER
    change_capability = None
    list_display = [
        "reviewer",
        "project",
        "start",
        "end",
        "by_rule",
        "reviews_count",
        "items_withdrawn",
        "created_at",
    ]
    list_filter = ["project", "by_rule"]
    list_select_related = ["reviewer", "project", "created_by"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Quarantine._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reviewers/", view(self.reviewers_view), name="reviews_quality_reviewers"),
            path(
                "reviewers/<int:project_id>/<int:user_id>/",
                view(self.reviewer_view),
                name="reviews_quality_reviewer",
            ),
            path(
                "reviewers/<int:project_id>/<int:user_id>/quarantine/",
                view(self.quarantine_view),
                name="reviews_quality_quarantine",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"reviewers_url": reverse("admin:reviews_quality_reviewers")}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def _context(self, request, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": Quarantine._meta,
            **extra,
        }

    def reviewers_view(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(status=405)
        projects = projects_where(request.user, Capability.ADMINISTER).order_by("name")
        if not projects.exists():
            raise PermissionDenied
        data = request.GET.copy()
        if "project" not in data:
            data["project"] = projects.values_list("pk", flat=True).first()
        form = PeriodForm(data, projects=projects)
        rows, period = None, None
        if form.is_valid():
            project = form.cleaned_data["project"]
            try:
                period = form.period(project)
            except forms.ValidationError as exc:
                form.add_error("end", exc)
            else:
                rows = reviewers_overview(project=project, start=period[0], end=period[1])
        return TemplateResponse(
            request,
            "admin/reviews/quality/reviewers.html",
            self._context(
                request,
                "Reviewers: control accuracy, rushed reviews, quarantines",
                form=form,
                rows=rows,
                period=period,
                signal_labels=SIGNAL_LABELS,
                query=request.GET.urlencode(),
            ),
            status=200 if rows is not None else 400,
        )

    def _project_and_reviewer(self, request, project_id: int, user_id: int):
        project = get_object_or_404(
            projects_where(request.user, Capability.ADMINISTER), pk=project_id
        )
        reviewer = reviewer_of_project(project=project, reviewer_id=user_id)
        if reviewer is None:
            raise Http404("No such reviewer in this project.")
        return project, reviewer

    def reviewer_view(self, request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(status=405)
        project, reviewer = self._project_and_reviewer(request, project_id, user_id)
        form = PeriodForm(
            {**request.GET.dict(), "project": project.pk},
            projects=Project.objects.filter(pk=project.pk),
        )
        if not form.is_valid():
            start_day = end_day = None
        else:
            start_day, end_day = form.cleaned_data.get("start"), form.cleaned_data.get("end")
        try:
            start, end = days_period(
                start_day, end_day, default_days=project.quarantine_lookback_days
            )
        except forms.ValidationError as exc:
            form.add_error("end", exc)
            start, end = days_period(None, None, default_days=project.quarantine_lookback_days)
        return self._render_reviewer(
            request,
            project,
            reviewer,
            form=form,
            period=(start, end),
            quarantine_form=QuarantineForm(
                initial={"start": start.date(), "end": (end - timedelta(days=1)).date()}
            ),
            status=200 if form.is_valid() else 400,
        )

    def _render_reviewer(
        self, request, project, reviewer, *, form, period, quarantine_form, status
    ):
        start, end = period
        signals = reviewer_signals(project=project, reviewer=reviewer, start=start, end=end)
        accuracy = control_accuracy(
            project=project, start=start, end=end, reviewer_ids=[reviewer.pk]
        ).get(reviewer.pk)
        found = [
            {
                "name": name,
                "label": SIGNAL_LABELS[name],
                "count": len(entries),
                "items": entries[:ITEMS_SHOWN],
            }
            for name, entries in signals.found.items()
        ]
        return TemplateResponse(
            request,
            "admin/reviews/quality/reviewer.html",
            self._context(
                request,
                f"{reviewer.get_username()} in {project.name}",
                project=project,
                reviewer=reviewer,
                form=form,
                period=period,
                signals=signals,
                found=found,
                items_shown=ITEMS_SHOWN,
                accuracy=accuracy,
                quarantines=quarantines_of(project=project, reviewer=reviewer),
                quarantine_form=quarantine_form,
            ),
            status=status,
        )

    @staticmethod
    def _reviewer_url(project, reviewer) -> str:
        return reverse("admin:reviews_quality_reviewer", args=[project.pk, reviewer.pk])

    def quarantine_view(self, request: HttpRequest, project_id: int, user_id: int):
        if request.method != "POST":
            return HttpResponse(status=405)
        project, reviewer = self._project_and_reviewer(request, project_id, user_id)
        form = QuarantineForm(request.POST)
        if form.is_valid():
            start, end = form.period
            try:
                outcome = quarantine_create(
                    project=project,
                    reviewer=reviewer,
                    start=start,
                    end=end,
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                )
            except NotAllowed as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                for name, problems in (exc.detail or {}).items():
                    for problem in problems:
                        form.add_error(name if name in form.fields else None, problem)
                if not exc.detail:
                    form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    f"Quarantined {outcome.reviews} decision(s) of {reviewer.get_username()}; "
                    f"{len(outcome.withdrawn)} released item(s) went back to the queue.",
                )
                return HttpResponseRedirect(self._reviewer_url(project, reviewer))
        start, end = days_period(None, None, default_days=project.quarantine_lookback_days)
        return self._render_reviewer(
            request,
            project,
            reviewer,
            form=PeriodForm(
                {"project": project.pk}, projects=Project.objects.filter(pk=project.pk)
            ),
            period=(start, end),
            quarantine_form=form,
            status=400,
        )
