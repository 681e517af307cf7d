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
from django.utils.html import format_html, format_html_join
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
from reviews.monitoring.selectors import (
    MIN_BAND_N,
    PERIOD_DAYS,
    Dashboard,
    bucket_range,
    dashboard,
)
from reviews.monitoring.services import (
    SOURCE_AUDIT,
    Proportion,
    drift_alert_resolve,
    mode_advice_apply,
)
from reviews.templatetags.monitoring_tags import pct

MAX_ACCURACY_SERIES = 8


class DashboardFilter(forms.Form):
    project = forms.IntegerField(required=False, min_value=1)
    bucket = forms.ChoiceField(
        choices=[("auto", "Automatic"), ("day", "Day"), ("week", "Week")], required=False
    )
    days = forms.TypedChoiceField(
        choices=[(d, f"{d} days") for d in PERIOD_DAYS], coerce=int, required=False
    )


class ApplyAdviceForm(forms.Form):
    project = forms.IntegerField(min_value=1)
    to_mode = forms.ChoiceField(choices=ProjectMode.choices)


def _bucket_label(value, bucket: str) -> str:
    return value.strftime("%d %b") if bucket == "day" else value.strftime("wk %d %b")


def _point(x: int, rate: Proportion) -> LinePoint:
    """A chart point; its band only where the bucket holds ``MIN_BAND_N`` or more."""
    enough = rate.total >= MIN_BAND_N
    return LinePoint(
        x=x,
        y=rate.rate,
        low=rate.low if enough else None,
        high=rate.high if enough else None,
        thin=not enough,
        note=f"{rate.successes}/{rate.total}",
    )


def _charts(data: Dashboard) -> dict:
    """The dashboard's SVG charts, built from the same rows its tables show."""
    # Every bucket of the period, so the x axis is true time even where data is missing.
    buckets = bucket_range(first_day=data.first_day, last_day=data.last_day, bucket=data.bucket)
    index = {b: i for i, b in enumerate(buckets)}
    labels = [_bucket_label(b, data.bucket) for b in buckets]
    names = {p.pk: p.name for p in data.projects}

    # One accuracy chart per project: its own target line, and lines keyed by
    # (model name, version, source) within it, so two projects' models that
    # share a version string never merge into one line.
    grouped: dict[tuple, list] = {}
    for point in data.accuracy:
        grouped.setdefault(point.series, []).append(point)
    accuracy = []
    for project in data.scope:
        ranked = sorted(
            ((key, points) for key, points in grouped.items() if key[0] == project.pk),
            key=lambda kv: (-sum(p.accuracy.total for p in kv[1]), kv[0]),
        )
        if not ranked:
            continue
        series = [
            LineSeries(
                name=f"{model_name} {version} ({source})",
                dashed=source == SOURCE_AUDIT,
                points=[_point(index[p.bucket], p.accuracy) for p in points if p.bucket in index],
            )
            for (_, model_name, version, source), points in ranked[:MAX_ACCURACY_SERIES]
        ]
        accuracy.append(
            {
                "project": project,
                "hidden": len(ranked) - len(series),
                "svg": line_chart(
                    chart_id=f"chart-accuracy-{project.pk}",
                    title=f"Accuracy of {project.name} per model version",
                    desc=(
                        f"Accuracy per {data.bucket} and model version with the 95% Wilson band "
                        f"where a {data.bucket} holds at least {MIN_BAND_N} decisions; dashed: "
                        f"audit samples; dotted: the project's target "
                        f"{project.accuracy_target:.0%}."
                    ),
                    x_labels=labels,
                    series=series,
                    target=project.accuracy_target,
                ),
            }
        )

    def rate_chart(chart_id: str, title: str, rows) -> str:
        by_project: dict[int, list] = {}
        for r in rows:
            if r.bucket in index:
                by_project.setdefault(r.project_id, []).append(r)
        return line_chart(
            chart_id=chart_id,
            title=title,
            x_labels=labels,
            series=[
                LineSeries(
                    name=names.get(project_id, str(project_id)),
                    points=[_point(index[r.bucket], r.rate) for r in points],
                )
                for project_id, points in sorted(
                    by_project.items(), key=lambda kv: names.get(kv[0], "")
                )
            ],
            plot_height=160,
        )

    return {
        "accuracy": accuracy,
        "interventions": rate_chart(
            "chart-interventions", "Intervention rate per project", data.interventions
        ),
        "judge": rate_chart("chart-judge", "Judge flag rate per project", data.judge_flags),
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


def _tables(data: Dashboard, names: dict[int, str]) -> dict:
    """The rows of the per-bucket tables, escaped by format_html_join.

    These grow with days times series (a few hundred rows for 30 days); built here
    in one pass they cost a fraction of the same loop in the template.
    """
    accuracy = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="num">{} / {}</td>'
        '<td class="num">{}</td><td class="ci">{} to {}</td></tr>',
        (
            (
                names.get(p.project_id, ""),
                p.model_name,
                p.model_version,
                p.source,
                p.bucket.isoformat(),
                p.accuracy.successes,
                p.accuracy.total,
                pct(p.accuracy.rate),
                pct(p.accuracy.low),
                pct(p.accuracy.high),
            )
            for p in data.accuracy
        ),
    )

    def rates(rows):
        return format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td class="num">{} / {}</td><td class="num">{}</td></tr>',
            (
                (
                    names.get(r.project_id, ""),
                    r.bucket.isoformat(),
                    r.rate.successes,
                    r.rate.total,
                    pct(r.rate.rate),
                )
                for r in rows
            ),
        )

    return {
        "accuracy": accuracy,
        "interventions": rates(data.interventions),
        "judge": rates(data.judge_flags),
    }


def dashboard_view(request: HttpRequest, *, admin_site) -> HttpResponse:
    form = DashboardFilter(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    data = dashboard(
        user=request.user,
        project_id=params.get("project"),
        bucket=params.get("bucket") or "auto",
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
            "min_band_n": MIN_BAND_N,
            "tables": _tables(data, {p.pk: p.name for p in data.projects}),
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
