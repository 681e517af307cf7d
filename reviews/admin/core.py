"""The core's admin pages: projects (policy, checks, members, webhook), API keys, items.

The item pages carry the workspace's URLs and the judge's verdict inline: this
module wires the sub-domains into the item admin, the registration lives in
``reviews.admin``.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from datasets import formats as export_formats
from reviews.access import Capability, may, may_anywhere, projects_where
from reviews.access.admin import (
    ManagedMembershipsMixin,
    ProjectScopedAdminMixin,
    ReadOnlyHistoryAdmin,
)
from reviews.admin.item_filters import (
    ConfidenceRangeFilter,
    CreatedRangeFilter,
    JudgeLabelFilter,
    ModelFilter,
    ReasonFilter,
    ReviewerFilter,
    SeverityFilter,
)
from reviews.bulk_actions import services as bulk
from reviews.errors import DomainError
from reviews.jsontext import text_error
from reviews.judge.admin import JudgeVerdictInline
from reviews.models import (
    ApiKey,
    CheckResult,
    CheckRule,
    Project,
    ProjectMembership,
    ReviewItem,
    RubricCriterion,
)
from reviews.quality.admin import CONTROL_ACTIONS, ControlListFilter, item_fields_for
from reviews.services.accounts import user_roles_sync
from reviews.services.projects import (
    SecretAction,
    api_key_create,
    api_key_revoke,
    webhook_secret_next,
)
from reviews.workspace.admin import workspace_urls
from reviews.workspace.selectors import control_seen_by


class CheckRuleInline(admin.StackedInline):
    model = CheckRule
    extra = 0
    fields = [
        ("name", "kind", "severity", "enabled"),
        "pattern",
        "keywords",
        "limit",
        "json_schema",
    ]


class RubricCriterionInline(admin.StackedInline):
    """The project's rubric: what reviewers score each output on (reviews/services/rubric.py)."""

    model = RubricCriterion
    extra = 0
    fields = [
        ("key", "label", "kind", "required", "order", "level"),
        "description",
        ("scale_min", "scale_max", "anchors"),
        "options",
    ]


class MembershipInline(ManagedMembershipsMixin, admin.TabularInline):
    model = ProjectMembership
    extra = 0
    autocomplete_fields = ["user"]


class ProjectForm(forms.ModelForm):
    """The project form with a write-only webhook secret: set, replace, generate, remove."""

    webhook_secret = forms.CharField(
        required=False,
        strip=True,
        max_length=200,
        label="New webhook secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never shown again. Type one to replace the stored secret, "
        "or leave blank and choose below.",
    )
    webhook_secret_action = forms.ChoiceField(
        label="Stored secret",
        choices=[
            (SecretAction.KEEP, "Keep the stored secret"),
            (SecretAction.GENERATE, "Generate a new random secret (shown once, after saving)"),
            (SecretAction.REMOVE, "Remove the secret"),
        ],
        initial=SecretAction.KEEP,
        widget=forms.RadioSelect,
    )

    class Meta:
        model = Project
        # The admin's fieldsets decide the rest of the fields.
        fields = ["webhook_url", "webhook_secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["webhook_secret_action"].initial = SecretAction.GENERATE
        self.generated_secret = ""

    def clean(self):
        data = super().clean()
        stored = ""
        if self.instance.pk is not None:
            stored = Project.objects.values_list("webhook_secret", flat=True).get(
                pk=self.instance.pk
            )
        secret, generated = webhook_secret_next(
            current=stored,
            action=data.get("webhook_secret_action") or SecretAction.KEEP,
            new_secret=data.get("webhook_secret") or "",
        )
        data["webhook_secret"] = secret
        # Django leaves a field with a default alone when the request omits it.
        self.instance.webhook_secret = secret
        self.generated_secret = secret if generated else ""
        return data


class ProjectAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    form = ProjectForm
    project_field = None
    list_display = ["name", "slug", "mode", "reviews_required", "confidence_threshold"]
    list_filter = ["mode", "reviews_required"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [CheckRuleInline, RubricCriterionInline, MembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description"]}),
        (
            "Review policy",
            {
                "fields": [
                    "mode",
                    "reviews_required",
                    "allow_corrections",
                    "confidence_threshold",
                    "risk_keywords",
                    "audit_sample_rate",
                    "audit_salt",
                    "reason_codes",
                    "lease_minutes",
                    "undo_seconds",
                ]
            },
        ),
        (
            "Webhook",
            {
                "fields": [
                    "webhook_url",
                    "webhook_secret_status",
                    "webhook_secret_action",
                    "webhook_secret",
                ],
                "description": "Each final result is POSTed to the URL, signed with the secret "
                "(X-HITL-Signature: sha256=HMAC of the body). Deliveries: Webhook deliveries.",
            },
        ),
        (
            "Monitoring and mode advice",
            {
                "fields": [
                    "accuracy_target",
                    "max_intervention_rate",
                    "advice_min_reviews",
                    "monitoring_window_days",
                    "drift_margin",
                    "drift_min_samples",
                    "drift_auto_gate",
                ]
            },
        ),
        (
            "Review budget (monitor mode)",
            {"fields": ["budget_share", "budget_window", "budget_daily_capacity"]},
        ),
        (
            "Reviewer quality: controls, quarantine, second review",
            {
                "fields": [
                    "control_rate",
                    "control_accuracy_floor",
                    "control_min_reviews",
                    "quarantine_by_rule",
                    "quarantine_lookback_days",
                    "second_review_rate",
                ],
                "description": "Controls: Control items. Each reviewer's control accuracy, "
                "rushed-review signals and quarantines: Quarantines, Reviewer pages.",
            },
        ),
    ]

    readonly_fields = ["webhook_secret_status"]
    SECRET_FIELDS = ("webhook_secret", "webhook_secret_action")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # Read-only pages render fields' stored values: the secret is write-only.
        return [
            (
                name,
                {
                    **options,
                    "fields": [f for f in options["fields"] if f not in self.SECRET_FIELDS],
                },
            )
            for name, options in fieldsets
        ]

    @admin.display(description="Webhook secret")
    def webhook_secret_status(self, project: Project) -> str:
        if project.pk and project.webhook_secret:
            return "A secret is stored; it is never shown."
        return "No secret stored."

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.generated_secret:
            self.message_user(
                request,
                format_html(
                    "New webhook secret for {}. Copy it to the receiver now, it is not "
                    "shown again: <code>{}</code>",
                    obj.name,
                    form.generated_secret,
                ),
                messages.WARNING,
            )

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is ProjectMembership:
            changed = [*formset.new_objects, *(obj for obj, _fields in formset.changed_objects)]
            for user in {membership.user for membership in [*changed, *formset.deleted_objects]}:
                user_roles_sync(user=user)


class ApiKeyAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    view_capability = Capability.ADMINISTER
    list_display = ["name", "project", "prefix", "created_at", "created_by", "active"]
    list_filter = ["project"]
    list_select_related = ["project", "created_by"]
    fields = ["project", "name"]
    actions = ["revoke"]

    @admin.display(boolean=True)
    def active(self, key: ApiKey) -> bool:
        return key.is_active

    def get_readonly_fields(self, request, obj=None):
        return ["project", "name", "prefix", "created_at", "revoked_at"] if obj else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, raw = api_key_create(project=obj.project, name=obj.name, user=request.user)
        obj.pk = key.pk
        self.message_user(
            request,
            format_html(
                "API key created. Copy it now, it is not shown again: <code>{}</code>", raw
            ),
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key, user=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


class CheckResultInline(admin.TabularInline):
    model = CheckResult
    extra = 0
    can_delete = False
    fields = ["name", "kind", "severity", "passed", "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ItemActionForm(ActionForm):
    """The item list's action bar: what some actions need besides the selection."""

    reviewer = forms.CharField(
        required=False, max_length=150, label="Reviewer", help_text="For “assign”: a username."
    )
    reason = forms.CharField(required=False, max_length=500, label="Reason")
    export_format = forms.ChoiceField(
        required=False,
        label="Export format",
        choices=export_formats.choices,
    )


class CappedCountPaginator(Paginator):
    """Counts matching items up to ``CAP`` only: a count of a million rows is a full scan."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()


class ItemChangeList(ChangeList):
    """The item list reads only the columns it shows: prompts, outputs and JSON stay behind."""

    DEFERRED = (
        "prompt",
        "messages",
        "output",
        "context",
        "metadata",
        "review_reasons",
        "final_output",
        "review_notes",
    )

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters).defer(*self.DEFERRED)
        if request.user.is_superuser:
            return queryset
        # Controls are listed to their project's admins only: to a reviewer a list of
        # items that wait for review but are never in the queue would name them.
        administered = projects_where(request.user, Capability.ADMINISTER).values("pk")
        return queryset.filter(Q(is_control=False) | Q(project__in=administered))


class ReviewItemAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    # Items change through the services only (the workspace, adjudication, bulk actions).
    change_capability = None
    list_display = [
        "id",
        "external_id",
        "project",
        "status",
        "model_name",
        "model_version",
        "confidence",
        "is_audit",
        "created_at",
    ]
    list_filter = [
        "status",
        "project",
        "is_audit",
        "in_queue",
        ReasonFilter,
        SeverityFilter,
        JudgeLabelFilter,
        ReviewerFilter,
        ConfidenceRangeFilter,
        ModelFilter,
        CreatedRangeFilter,
        ControlListFilter,
    ]
    # Shown as the search box's scope; ``get_search_results`` does the searching.
    search_fields = ["prompt", "output", "review_notes"]
    search_help_text = (
        "Words in the prompt, output or reviewers' notes (all must appear; English stemming), "
        "or one external id / model version exactly."
    )
    list_select_related = ["project"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    inlines = [CheckResultInline, JudgeVerdictInline]
    # review_notes copies the reviews' notes for the search; the timeline shows them, blind.
    readonly_fields = [
        field.name for field in ReviewItem._meta.fields if field.name not in ("id", "review_notes")
    ]
    action_form = ItemActionForm
    actions = [
        "send_back_to_queue",
        "reopen_items",
        "assign_to_reviewer",
        "export_selection",
        "delete_items",
        *CONTROL_ACTIONS,
    ]

    def get_fields(self, request, obj=None):
        return item_fields_for(request, obj, list(super().get_fields(request, obj)))

    def get_object(self, request, object_id, from_field=None):
        item = super().get_object(request, object_id, from_field)
        # Read-only page: a control is shown as its viewer may see it, never saved.
        return None if item is None else control_seen_by(item=item, viewer=request.user)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if self.has_administer_permission(request):
            return filters
        return [f for f in filters if f is not ControlListFilter]

    def get_changelist(self, request, **kwargs):
        return ItemChangeList

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if text_error(term) is not None:  # NUL or a lone surrogate: no stored text matches
            return queryset.none(), False
        if len(term.split()) > 1:
            return queryset.search(term), False
        # One exact id or version: external ids are indexed per project, so name the projects.
        projects = list(projects_where(request.user, Capability.VIEW).values_list("pk", flat=True))
        exact = Q(project_id__in=projects, external_id=term) | Q(model_version=term)
        return queryset.search(term, or_exact=exact), False

    # --- bulk actions: each item is checked again by the service, per project ---------

    def has_adjudicate_permission(self, request) -> bool:
        return may_anywhere(request.user, Capability.ADJUDICATE)

    def has_administer_permission(self, request) -> bool:
        return may_anywhere(request.user, Capability.ADMINISTER)

    def has_build_exports_permission(self, request) -> bool:
        return may_anywhere(request.user, Capability.BUILD_EXPORTS)

    @staticmethod
    def _ids(queryset) -> list[int]:
        return list(queryset.values_list("pk", flat=True)[: bulk.MAX_ITEMS])

    def _report(self, request, outcome: bulk.BulkOutcome, verb: str) -> None:
        level = messages.SUCCESS if outcome.done else messages.WARNING
        self.message_user(request, outcome.summary(verb), level)

    @admin.action(description="Send back to the queue (release claims)", permissions=["adjudicate"])
    def send_back_to_queue(self, request, queryset):
        outcome = bulk.items_requeue(user=request.user, item_ids=self._ids(queryset))
        self._report(request, outcome, "Sent back")

    @admin.action(description="Reopen for adjudication (give a reason)", permissions=["adjudicate"])
    def reopen_items(self, request, queryset):
        reason = request.POST.get("reason", "")
        try:
            outcome = bulk.items_reopen(
                user=request.user, item_ids=self._ids(queryset), reason=reason
            )
        except DomainError as exc:
            self.message_user(request, f"{exc.message} Type it in the Reason box.", messages.ERROR)
            return
        self._report(request, outcome, "Reopened")

    @admin.action(description="Assign to the reviewer named", permissions=["adjudicate"])
    def assign_to_reviewer(self, request, queryset):
        name = request.POST.get("reviewer", "").strip()
        reviewer = get_user_model().objects.filter(username=name, is_active=True).first()
        if reviewer is None:
            self.message_user(
                request, f"No reviewer named {name!r} in these items' projects.", messages.ERROR
            )
            return
        outcome = bulk.items_assign(
            user=request.user, item_ids=self._ids(queryset), reviewer=reviewer
        )
        self._report(request, outcome, f"Assigned to {name}")

    @admin.action(
        description="Build a dataset export of the selection", permissions=["build_exports"]
    )
    def export_selection(self, request, queryset):
        fmt = request.POST.get("export_format", "")
        try:
            export, outcome = bulk.items_export(
                user=request.user, item_ids=self._ids(queryset), format=fmt
            )
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        if export is None:
            self._report(request, outcome, "Exported")
            return
        url = reverse("admin:datasets_datasetexport_change", args=[export.pk])
        self.message_user(
            request,
            format_html(
                'Export <a href="{}">{}</a> queued with {} item(s) (the format keeps only '
                "the decisions it can use).",
                url,
                export,
                len(outcome.done),
            ),
            messages.SUCCESS,
        )

    @admin.action(
        description="Delete the selected items (project admins)", permissions=["administer"]
    )
    def delete_items(self, request, queryset):
        outcome = bulk.items_delete(user=request.user, item_ids=self._ids(queryset))
        self._report(request, outcome, "Deleted")

    def get_urls(self):
        # The reviewer workspace (my queue, review page, timeline) lives under this admin.
        return workspace_urls(self.admin_site) + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # A senior of the item's project may reopen it once final (adjudication app).
        context["can_reopen"] = (
            obj is not None
            and obj.is_final
            and may(request.user, Capability.ADJUDICATE, obj.project_id)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
