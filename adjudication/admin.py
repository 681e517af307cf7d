"""Adjudication in the admin: the senior queue, the case page, reopen, the agreement report.

The views parse input, call one service or selector, and render admin templates.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from adjudication.diffs import compare
from adjudication.forms import (
    AgreementFilterForm,
    DecisionForm,
    ReopenForm,
    ReopenLookupForm,
)
from adjudication.metrics import project_agreement
from adjudication.models import AdjudicationCase, CaseClaim
from adjudication.preferences import case_preferences
from adjudication.selectors import (
    case_for_page,
    case_queue_for,
    cases_for_queue_page,
    cases_of_item,
    live_claim,
    senior_may_adjudicate,
)
from adjudication.services import (
    case_claim,
    case_claim_next,
    case_claim_release,
    case_decide,
    item_reopen,
)
from reviews.access import Capability, may, may_anywhere, projects_where
from reviews.access.admin import ProjectScopedAdminMixin, ReadOnlyHistoryAdmin
from reviews.errors import DomainError, NotAllowed
from reviews.models import ReviewItem

QUEUE_PAGE_SIZE = 50


def _is_senior(user) -> bool:
    return may_anywhere(user, Capability.ADJUDICATE)


@admin.register(AdjudicationCase)
class AdjudicationCaseAdmin(ProjectScopedAdminMixin, ReadOnlyHistoryAdmin):
    """Read-only list of cases; all changes go through the case page's services."""

    view_capability = Capability.ADJUDICATE
    change_capability = None

    list_display = (
        "id",
        "item_link",
        "project",
        "kind",
        "status",
        "severity",
        "opened_at",
        "decided_by",
        "upheld",
    )
    list_filter = ("status", "kind", "project")
    list_select_related = ("item", "project", "decided_by")
    search_fields = ("item__external_id",)
    show_full_result_count = False
    ordering = ("-opened_at",)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Item", ordering="item__external_id")
    def item_link(self, case: AdjudicationCase):
        url = reverse("admin:adjudication_case", args=[case.pk])
        return format_html('<a href="{}">{}</a>', url, case.item.external_id)

    @admin.display(description="Severity", ordering="severity_rank")
    def severity(self, case: AdjudicationCase) -> str:
        return case.severity_label

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("queue/", view(self.queue_view), name="adjudication_queue"),
            path("claim-next/", view(self.claim_next_view), name="adjudication_claim_next"),
            path("<int:case_id>/work/", view(self.case_view), name="adjudication_case"),
            path("reopen/", view(self.reopen_lookup_view), name="adjudication_reopen_lookup"),
            path("reopen/<int:item_id>/", view(self.reopen_view), name="adjudication_reopen"),
            path("agreement/", view(self.agreement_view), name="adjudication_agreement"),
            *super().get_urls(),
        ]

    def _context(self, request, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            **extra,
        }

    def queue_view(self, request):
        if not _is_senior(request.user):
            raise PermissionDenied
        projects = projects_where(request.user, Capability.ADJUDICATE)
        project = None
        if request.GET.get("project"):
            project = projects.filter(slug=request.GET["project"]).first()
        ids = case_queue_for(request.user, project=project).values_list("pk", flat=True)
        page = Paginator(ids, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
        cases = cases_for_queue_page(ids=list(page), now=timezone.now())
        return TemplateResponse(
            request,
            "admin/adjudication/queue.html",
            self._context(
                request,
                "Adjudication queue",
                page=page,
                cases=cases,
                projects=projects,
                project=project,
                lookup_form=ReopenLookupForm(projects=projects),
            ),
        )

    @staticmethod
    def _case_url(case_id: int) -> str:
        return reverse("admin:adjudication_case", args=[case_id])

    def claim_next_view(self, request):
        if not _is_senior(request.user):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:adjudication_queue"))
        project = None
        if request.POST.get("project"):
            adjudicated = projects_where(request.user, Capability.ADJUDICATE)
            project = adjudicated.filter(slug=request.POST["project"])
            project = project.first()
        claim = case_claim_next(user=request.user, project=project)
        if claim is None:
            messages.info(request, "No case is waiting for you.")
            return HttpResponseRedirect(reverse("admin:adjudication_queue"))
        return HttpResponseRedirect(self._case_url(claim.case_id))

    def case_view(self, request, case_id: int):
        try:
            case = case_for_page(case_id=case_id)
        except AdjudicationCase.DoesNotExist as exc:
            raise Http404("No such case.") from exc
        if not may(request.user, Capability.ADJUDICATE, case.project_id):
            raise PermissionDenied
        form = None
        if request.method == "POST":
            action = request.POST.get("action")
            if action == "claim":
                return self._claim(request, case)
            if action == "release":
                return self._release(request, case)
            if action == "decide":
                form = DecisionForm(request.POST, project=case.project)
                if form.is_valid():
                    outcome = self._decide(request, case, form)
                    if outcome is not None:
                        return outcome
            else:
                messages.error(request, "Unknown action.")
                return HttpResponseRedirect(self._case_url(case.pk))
        return self._render_case(request, case, form)

    def _claim(self, request, case):
        try:
            case_claim(case=case, user=request.user)
        except NotAllowed as exc:
            raise PermissionDenied(exc.message) from exc
        except DomainError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(self._case_url(case.pk))

    def _release(self, request, case):
        claim = get_object_or_404(CaseClaim, pk=request.POST.get("claim") or 0, case=case)
        try:
            case_claim_release(claim=claim, user=request.user)
        except NotAllowed as exc:
            raise PermissionDenied(exc.message) from exc
        messages.info(request, "The case is back in the queue.")
        return HttpResponseRedirect(reverse("admin:adjudication_queue"))

    def _decide(self, request, case, form):
        data = form.cleaned_data
        preference, winner_id = form.own_preference()
        try:
            case_decide(
                case=case,
                claim_id=data["claim"],
                user=request.user,
                upheld=data["upheld"],
                rationale=data["rationale"],
                verdict=data["verdict"],
                final_output=data["final_output"],
                reason_code=data["reason_code"],
                severity=data["severity"],
                preference=preference,
                winner_id=winner_id,
            )
        except NotAllowed as exc:
            raise PermissionDenied(exc.message) from exc
        except DomainError as exc:
            if isinstance(exc.detail, dict):
                for field, errors in exc.detail.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
                return None
            messages.error(request, exc.message)
            return HttpResponseRedirect(self._case_url(case.pk))
        done = f"Case {case.pk} decided: {case.item.external_id} is final."
        if not data["and_next"]:
            messages.success(request, done)
            return HttpResponseRedirect(self._case_url(case.pk))
        claim = case_claim_next(user=request.user)
        if claim is None:
            messages.success(request, f"{done} No other case is waiting for you.")
            return HttpResponseRedirect(reverse("admin:adjudication_queue"))
        messages.success(request, f"{done} Here is the next case.")
        return HttpResponseRedirect(self._case_url(claim.case_id))

    def _render_case(self, request, case, form):
        now = timezone.now()
        claim = live_claim(case=case, now=now) if case.is_open else None
        mine = claim is not None and claim.senior_id == request.user.pk
        if mine and form is None:
            form = DecisionForm(initial={"claim": claim.pk}, project=case.project)
        item = case.item
        return TemplateResponse(
            request,
            "admin/adjudication/case.html",
            self._context(
                request,
                f"Case {case.pk}: {item.external_id}",
                case=case,
                item=item,
                project=case.project,
                comparison=compare(
                    original=item.output, review_a=case.review_a, review_b=case.review_b
                ),
                checks=list(item.check_results.all()),
                judge=item.judge_verdicts.first(),
                claim=claim,
                mine=mine,
                may_decide=case.is_open and senior_may_adjudicate(user=request.user, case=case),
                form=form,
                history=cases_of_item(item_id=item.pk).exclude(pk=case.pk),
                preferences=case_preferences(case) if item.is_comparison else None,
            ),
        )

    def reopen_lookup_view(self, request):
        if not _is_senior(request.user):
            raise PermissionDenied
        projects = projects_where(request.user, Capability.ADJUDICATE)
        form = ReopenLookupForm(request.GET or None, projects=projects)
        if form.is_valid():
            item = ReviewItem.objects.filter(
                project=form.cleaned_data["project"],
                external_id=form.cleaned_data["external_id"],
            ).first()
            if item is not None:
                return HttpResponseRedirect(reverse("admin:adjudication_reopen", args=[item.pk]))
            form.add_error("external_id", "No item with this id in that project.")
        return TemplateResponse(
            request,
            "admin/adjudication/reopen_lookup.html",
            self._context(request, "Reopen a final item", form=form),
        )

    def reopen_view(self, request, item_id: int):
        item = get_object_or_404(
            ReviewItem.objects.select_related("project"),
            pk=item_id,
            project__in=projects_where(request.user, Capability.ADJUDICATE),
        )
        form = ReopenForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                case = item_reopen(item=item, user=request.user, reason=form.cleaned_data["reason"])
            except NotAllowed as exc:
                raise PermissionDenied(exc.message) from exc
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"{item.external_id} is back in adjudication.")
                return HttpResponseRedirect(self._case_url(case.pk))
        return TemplateResponse(
            request,
            "admin/adjudication/reopen.html",
            self._context(
                request,
                f"Reopen {item.external_id}",
                item=item,
                form=form,
                cases=cases_of_item(item_id=item.pk),
            ),
        )

    def agreement_view(self, request):
        projects = projects_where(request.user, Capability.READ_AGREEMENT)
        if not projects.exists():
            raise PermissionDenied
        data = request.GET.copy()
        if "project" not in data:
            data["project"] = projects.order_by("name").values_list("pk", flat=True).first()
        form = AgreementFilterForm(data, projects=projects)
        figures = None
        if form.is_valid():
            start, end = form.period()
            figures = project_agreement(project=form.cleaned_data["project"], start=start, end=end)
        return TemplateResponse(
            request,
            "admin/adjudication/agreement.html",
            self._context(request, "Reviewer agreement", form=form, figures=figures),
        )
