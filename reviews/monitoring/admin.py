"""Monitoring in the admin: the dashboard, drift alerts and the webhook delivery log.

Thin views: they parse the query string or the form, call one selector or
service, and render templates under templates/admin/reviews/ that extend the
admin's own. Imported from reviews/admin.py so the registrations take effect.
"""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from reviews.access import Capability, may_anywhere, projects_where
from reviews.access.admin import ProjectScopedAdminMixin
from reviews.errors import DomainError
from reviews.models import (
    DriftAlert,
    MonitoringDashboard,
    ProjectMode,
)
from reviews.monitoring.charts import LinePoint, LineSeries, bar_chart, line_chart
from reviews.monitoring.selectors import PERIOD_DAYS, Dashboard, bucket_range, dashboard
from reviews.monitoring.services import SOURCE_AUDIT, drift_alert_resolve, mode_advice_apply

MAX_ACCURACY_SERIES = 8


class DashboardFilter(forms.Form):
    project = forms.IntegerField(required=False, min_value=1)
    bucket = forms.ChoiceField(choices=[("day", "Day"), ("week", "Week")], required=False)
    days = forms.TypedChoiceField(
        choices=[(d, f"{d} days") for d in PERIOD_DAYS], coerce=int, required=False
    )


class ApplyAdviceForm(forms.Form):
    project = forms.IntegerField(min_value=1)
    to_mode = forms.ChoiceField(choices=ProjectMode.choices)


def _bucket_label(value, bucket: str) -> str:
    return value.strftime("%d %b") if bucket == "day" else value.strftime("wk %d %b")


def _charts(data: Dashboard) -> dict:
    """The dashboard's SVG charts, built from the same rows its tables show."""
    # Every bucket of the period, so the x axis is true time even where data is missing.
    buckets = bucket_range(start=data.since, end=data.now, bucket=data.bucket)
    index = {b: i for i, b in enumerate(buckets)}
    grouped: dict[tuple[str, str], list] = {}
    for point in data.accuracy:
        grouped.setdefault((point.source, point.model_version), []).append(point)
    ranked = sorted(grouped.items(), key=lambda kv: -sum(p.accuracy.total for p in kv[1]))
    series = [
        LineSeries(
            name=f"{version} ({source})",
            dashed=source == SOURCE_AUDIT,
            points=[
                LinePoint(
                    x=index[p.bucket],
                    y=p.accuracy.rate,
                    low=p.accuracy.low,
                    high=p.accuracy.high,
                    note=f"n={p.accuracy.total}",
                )
                for p in points
                if p.bucket in index
            ],
        )
        for (source, version), points in ranked[:MAX_ACCURACY_SERIES]
    ]
    labels = [_bucket_label(b, data.bucket) for b in buckets]

    def rate_chart(chart_id: str, title: str, rows) -> str:
        return line_chart(
            chart_id=chart_id,
            title=title,
            x_labels=labels,
            series=[
                LineSeries(
                    name=title,
                    points=[
                        LinePoint(
                            x=index[r.bucket],
                            y=r.rate.rate,
                            low=r.rate.low,
                            high=r.rate.high,
                            note=f"{r.rate.successes}/{r.rate.total}",
                        )
                        for r in rows
                        if r.bucket in index
                    ],
                )
            ]
            if rows
            else [],
            height=220,
        )

    return {
        "accuracy": line_chart(
            chart_id="chart-accuracy",
            title="Accuracy per model version (95% Wilson band; dashed: audit samples)",
            x_labels=labels,
            series=series,
        ),
        "interventions": rate_chart("chart-interventions", "Intervention rate", data.interventions),
        "judge": rate_chart("chart-judge", "Judge flag rate", data.judge_flags),
        "queue": bar_chart(
            chart_id="chart-queue",
            title="Queue depth per project",
            bars=[(row.project.name, row.depth) for row in data.queue],
        ),
        "reviewers": bar_chart(
            chart_id="chart-reviewers",
            title="Reviews per reviewer",
            bars=[(row.username, row.total) for row in data.reviewers],
        ),
        "reasons": bar_chart(chart_id="chart-reasons", title="Top reason codes", bars=data.reasons),
        "severities": bar_chart(
            chart_id="chart-severities", title="Severities", bars=data.severities
        ),
    }


def dashboard_view(request: HttpRequest, *, admin_site) -> HttpResponse:
    form = DashboardFilter(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    data = dashboard(
        user=request.user,
        project_id=params.get("project"),
        bucket=params.get("bucket") or "day",
        days=params.get("days") or 30,
    )
    administered = set(
        projects_where(request.user, Capability.ADMINISTER)
        .filter(pk__in=[h.project.pk for h in data.health])
        .values_list("pk", flat=True)
    )
    return TemplateResponse(
        request,
        "admin/reviews/dashboard.html",
        {
            **admin_site.each_context(request),
            "title": "Monitoring dashboard",
            "opts": MonitoringDashboard._meta,
            "data": data,
            "charts": _charts(data),
            "period_choices": PERIOD_DAYS,
            "administered": administered,
        },
    )


@require_POST
def apply_advice_view(request: HttpRequest, *, admin_site) -> HttpResponse:
    form = ApplyAdviceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Invalid request.")
        return redirect("admin:reviews_dashboard")
    project = get_object_or_404(
        projects_where(request.user, Capability.ADMINISTER), pk=form.cleaned_data["project"]
    )
    try:
        mode_advice_apply(project=project, to_mode=form.cleaned_data["to_mode"], user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            format_html(
                "{} is now in {} mode.",
                project.name,
                ProjectMode(form.cleaned_data["to_mode"]).label,
            ),
        )
    return HttpResponseRedirect(f"{reverse('admin:reviews_dashboard')}?project={project.pk}")


@require_POST
def resolve_alert_view(request: HttpRequest, pk: int, *, admin_site) -> HttpResponse:
    alert = get_object_or_404(
        DriftAlert.objects.filter(project__in=projects_where(request.user, Capability.ADMINISTER)),
        pk=pk,
    )
    drift_alert_resolve(alert=alert, user=request.user)
    messages.success(request, "Drift alert resolved.")
    return HttpResponseRedirect(f"{reverse('admin:reviews_dashboard')}?project={alert.project_id}")


class MonitoringDashboardAdmin(admin.ModelAdmin):
    """No list of its own: the admin index entry opens the dashboard."""

    def get_urls(self):
        site = self.admin_site

        def wrap(view):
            return site.admin_view(
                lambda request, *a, **kw: view(request, *a, admin_site=site, **kw)
            )

        return [
            path("", wrap(dashboard_view), name="reviews_dashboard"),
            path("", wrap(dashboard_view), name="reviews_monitoringdashboard_changelist"),
            path("apply-advice/", wrap(apply_advice_view), name="reviews_dashboard_apply_advice"),
            path(
                "alerts/<int:pk>/resolve/",
                wrap(resolve_alert_view),
                name="reviews_dashboard_resolve_alert",
            ),
        ]

    def has_module_permission(self, request) -> bool:
        return may_anywhere(request.user, Capability.VIEW)

    def has_view_permission(self, request, obj=None) -> bool:
        return may_anywhere(request.user, Capability.VIEW)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DriftAlertAdmin(ProjectScopedAdminMixin, admin.ModelAdmin):
    """Drift alerts of the projects the user administers; resolved by the action only."""

    view_capability = Capability.ADMINISTER
    change_capability = None
    list_display = [
        "project",
        "model_version",
        "window_accuracy_display",
        "baseline_accuracy_display",
        "switched_to_gate",
        "created_at",
        "resolved_at",
    ]
    list_filter = [
        "project",
        "switched_to_gate",
        ("resolved_at", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["project", "resolved_by"]
    actions = ["resolve"]

    @admin.display(description="window accuracy")
    def window_accuracy_display(self, alert: DriftAlert) -> str:
        return f"{alert.window_accuracy:.1%} ({alert.window_correct}/{alert.window_total})"

    @admin.display(description="baseline accuracy")
    def baseline_accuracy_display(self, alert: DriftAlert) -> str:
        return f"{alert.baseline_accuracy:.1%} ({alert.baseline_correct}/{alert.baseline_total})"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in DriftAlert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Resolve selected alerts")
    def resolve(self, request, queryset):
        for alert in queryset.filter(resolved_at__isnull=True):
            drift_alert_resolve(alert=alert, user=request.user)
        self.message_user(request, "Alerts resolved.")
