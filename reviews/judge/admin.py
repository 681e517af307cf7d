"""Admin for the LLM judge: per-project configuration, verdicts, calibration report.

The API key is write-only: the form has a password field that is never filled
in ("leave blank to keep"), the stored key is encrypted and never rendered.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from reviews.access import Capability, projects_where
from reviews.access.admin import ProjectScopedAdminMixin, ReadOnlyHistoryAdmin
from reviews.judge.calibration import HUMAN_VERDICTS, calibration_report
from reviews.judge.services import ENV_NAME, judge_config_save
from reviews.models import JudgeBackend, JudgeConfig, JudgeVerdict


class JudgeConfigForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=200,
        help_text="e.g. http://127.0.0.1:8001/v1 for vLLM; blank for the vendor's own API.",
    )
    api_key = forms.CharField(
        required=False,
        strip=True,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted and never shown again. Leave blank to keep "
        "the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = JudgeConfig
        fields = [
            "project",
            "enabled",
            "backend",
            "base_url",
            "model",
            "api_key_env",
            "rubric",
            "threshold",
            "timeout_seconds",
            "max_concurrency",
            "max_retries",
            "response_format",
            "max_tokens",
        ]
        widgets = {"rubric": forms.Textarea(attrs={"rows": 12, "cols": 90})}

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data["api_key_env"].strip()
        if name and not ENV_NAME.match(name):
            raise forms.ValidationError("Enter an environment variable name, e.g. JUDGE_API_KEY.")
        return name

    def clean_max_concurrency(self) -> int:
        value = self.cleaned_data["max_concurrency"]
        if not 1 <= value <= 500:
            raise forms.ValidationError("Between 1 and 500 requests in flight.")
        return value

    def clean_rubric(self) -> str:
        rubric = self.cleaned_data["rubric"]
        if not rubric.strip():
            raise forms.ValidationError("The judge needs a rubric to grade against.")
        return rubric

    def clean(self):
        data = super().clean()
        if data.get("api_key") and data.get("clear_api_key"):
            self.add_error("clear_api_key", "Either enter a new key or remove the stored one.")
        if (
            data.get("backend") == JudgeBackend.OPENAI
            and not data.get("base_url")
            and not (data.get("api_key") or data.get("api_key_env"))
            and not (self.instance.pk and self.instance.has_stored_api_key)
        ):
            self.add_error(
                "base_url",
                "Without a base URL the judge is api.openai.com, which needs an API key.",
            )
        return data


class JudgeConfigAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    """Project admins configure their projects' judges; the calibration report is theirs too."""

    form = JudgeConfigForm
    view_capability = Capability.ADMINISTER
    list_display = [
        "project",
        "enabled",
        "backend",
        "model",
        "rubric_version",
        "threshold",
        "api_key_source",
        "calibration_link",
    ]
    list_filter = ["enabled", "backend"]
    list_select_related = ["project"]
    search_fields = ["project__name", "project__slug", "model"]
    readonly_fields = ["rubric_version", "api_key_status"]
    fieldsets = [
        (None, {"fields": ["project", "enabled"]}),
        (
            "Model",
            {
                "fields": [
                    "backend",
                    "base_url",
                    "model",
                    "api_key_status",
                    "api_key",
                    "clear_api_key",
                    "api_key_env",
                ],
                "description": "OpenAI-compatible servers take a base URL ending in /v1 "
                "(vLLM, Ollama, llama.cpp, TGI); Anthropic takes the host only.",
            },
        ),
        ("Rubric", {"fields": ["rubric", "rubric_version", "threshold"]}),
        (
            "Calls",
            {
                "fields": [
                    "timeout_seconds",
                    "max_concurrency",
                    "max_retries",
                    "response_format",
                    "max_tokens",
                ]
            },
        ),
    ]

    @admin.display(description="API key")
    def api_key_source(self, config: JudgeConfig) -> str:
        if config.has_stored_api_key:
            return "stored (encrypted)"
        if config.api_key_env:
            return f"from ${config.api_key_env}"
        return "none"

    @admin.display(description="Stored API key")
    def api_key_status(self, config: JudgeConfig) -> str:
        if config.pk and config.has_stored_api_key:
            return "A key is stored (encrypted); it is never shown."
        return "No key stored."

    @admin.display(description="Calibration")
    def calibration_link(self, config: JudgeConfig) -> str:
        url = reverse("admin:reviews_judge_calibration")
        return format_html('<a href="{}?project={}">report</a>', url, config.project_id)

    def save_model(self, request, obj, form, change):
        judge_config_save(
            config=obj,
            api_key=form.cleaned_data.get("api_key", ""),
            clear_api_key=form.cleaned_data.get("clear_api_key", False),
            user=request.user,
        )

    def get_urls(self):
        return [
            path(
                "calibration/",
                self.admin_site.admin_view(self.calibration_view),
                name="reviews_judge_calibration",
            ),
            *super().get_urls(),
        ]

    def calibration_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        projects = list(projects_where(request.user, Capability.ADMINISTER).order_by("name"))
        selected = None
        wanted = request.GET.get("project", "")
        if wanted.isdigit():
            selected = next((p for p in projects if p.pk == int(wanted)), None)
        if selected is None and projects:
            selected = projects[0]
        report = None
        if selected is not None:
            report = calibration_report(
                project=selected,
                judge_model=request.GET.get("judge_model", ""),
                model_version=request.GET.get("model_version", ""),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Judge calibration",
            "opts": self.model._meta,
            "projects": projects,
            "selected": selected,
            "report": report,
            "human_verdicts": HUMAN_VERDICTS,
            "judge_model": request.GET.get("judge_model", ""),
            "model_version": request.GET.get("model_version", ""),
        }
        return TemplateResponse(request, "admin/reviews/judge_calibration.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "calibration_url": reverse("admin:reviews_judge_calibration"),
        }
        return super().changelist_view(request, extra_context)


class JudgeVerdictAdmin(ProjectScopedAdminMixin, admin.ModelAdmin):
    """Read-only: verdicts are written by the judge jobs, once per item."""

    project_field = "item__project"
    change_capability = None
    list_display = [
        "item_link",
        "label",
        "score",
        "flagged",
        "model",
        "rubric_version",
        "latency_ms",
        "created_at",
    ]
    list_filter = ["label", "flagged", "backend", "model", "rubric_version"]
    list_select_related = ["item", "item__project"]
    search_fields = ["item__external_id", "model"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [
        "item",
        "backend",
        "model",
        "rubric_version",
        "label",
        "score",
        "threshold",
        "flagged",
        "rationale",
        "error_categories",
        "error",
        "raw_reply",
        "attempts",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
    ]
    fields = readonly_fields

    @admin.display(description="Item", ordering="item_id")
    def item_link(self, verdict: JudgeVerdict) -> str:
        url = reverse("admin:reviews_reviewitem_change", args=[verdict.item_id])
        return format_html('<a href="{}">{}</a>', url, str(verdict.item))


class JudgeVerdictInline(admin.StackedInline):
    """The judge's verdict on an item's admin page."""

    model = JudgeVerdict
    extra = 0
    can_delete = False
    fields = [
        ("label", "score", "threshold", "flagged"),
        "rationale",
        "error_categories",
        "error",
        ("model", "rubric_version", "attempts", "latency_ms"),
        ("prompt_tokens", "completion_tokens", "created_at"),
    ]
    readonly_fields = [
        "label",
        "score",
        "threshold",
        "flagged",
        "rationale",
        "error_categories",
        "error",
        "model",
        "rubric_version",
        "attempts",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
    ]

    def has_add_permission(self, request, obj=None):
        return False
