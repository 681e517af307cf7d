"""The reviewer workspace inside the admin: my queue, the review page, an item's timeline.

Thin views: they parse the form, call one service in reviews.workspace.services,
and render with templates under templates/admin/reviews/workspace/. Hooked into
the admin through ``ReviewItemAdmin.get_urls`` (see ``workspace_urls``).
"""

import json

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from reviews.errors import NotAllowed
from reviews.models import AssignmentState, CriterionKind, Project, Review, Severity, Verdict
from reviews.services.review_rules import OTHER_REASON, reason_label
from reviews.services.rubric import field_name, rubric_of
from reviews.workspace.compare_admin import PreferenceForm, comparison_post, render_comparison
from reviews.workspace.selectors import (
    assignment_for_review_page,
    assignment_of,
    control_seen_by,
    item_for_timeline,
    item_timeline,
    output_view,
    queue_overview,
    step_verdicts_of,
    transcript_view,
)
from reviews.workspace.services import (
    NOTE_MAX_CHARS,
    QueueNarrowing,
    ReviewInput,
    ReviewInvalid,
    StaleAssignment,
    StepMark,
    assignment_claim_next,
    assignment_release,
    review_submit,
    step_verdict_mark,
    step_verdict_remove,
)
from reviews.workspace.undo import UndoRefused, review_undo, undo_deadline

ACTION_SKIP = "skip"
ACTION_RELEASE = "release"
DONE = {
    Verdict.APPROVE: "Approved",
    Verdict.REJECT: "Rejected",
    Verdict.CORRECT: "Corrected",
    ACTION_SKIP: "Skipped",
}
SHORTCUTS = [
    ("a", "Approve the output as it is"),
    ("r", "Reject: pick a reason and a severity, then submit"),
    ("e", "Edit (correct) the output; the diff of the changes updates as you type"),
    ("g", "In the diff: go to the first change"),
    ("j", "In the diff: go to the next change"),
    ("k", "In the diff: go to the previous change"),
    ("m", "Show the texts as written (raw) or with their markdown rendered"),
    ("/", "Search the retrieved context; Enter goes to the next match"),
    ("n", "Skip this item (someone else will take it)"),
    ("s 0-3", "Severity: s then 0 none, 1 minor, 2 major, 3 critical"),
    ("c / C", "Rubric: go to the next (C: previous) criterion; Tab moves between them too"),
    ("digit", "On a rubric criterion: pick that score or option (then on to the next)"),
    ("Backspace", "On a rubric criterion: clear its score"),
    ("u", "Undo your last decision while the undo button is shown"),
    ("?", "Show or hide this help"),
    ("Ctrl+Enter", "Submit the open reject or correct form"),
    ("Esc", "Close the open form or this help"),
]


NARROWING_SESSION_KEY = "reviews_workspace_narrowing"
UNDO_SESSION_KEY = "reviews_workspace_undo"
SEVERITY_DIGITS = {
    Severity.NONE: "0",
    Severity.MINOR: "1",
    Severity.MAJOR: "2",
    Severity.CRITICAL: "3",
}


class NarrowingForm(forms.Form):
    """Part of the queue to work on: a model version, a routing reason, a failed check."""

    model_version = forms.CharField(required=False, max_length=200)
    reason = forms.CharField(
        required=False,
        max_length=200,
        help_text="A routing reason: low_confidence, risk_keyword:overdose, judge_flag, ...",
    )
    check = forms.CharField(required=False, max_length=100, help_text="A failed check's name.")

    def narrowing(self) -> QueueNarrowing:
        if not self.is_valid():
            return QueueNarrowing()
        return QueueNarrowing(**{k: v.strip() for k, v in self.cleaned_data.items()})


def _session_narrowing(request) -> QueueNarrowing:
    saved = request.session.get(NARROWING_SESSION_KEY) or {}
    return NarrowingForm(saved).narrowing()


class ReviewForm(forms.Form):
    """The review page's form; the rules themselves live in ``review_validate``."""

    action = forms.ChoiceField(
        choices=[*Verdict.choices, (ACTION_SKIP, "Skip"), (ACTION_RELEASE, "Release")]
    )
    corrected_output = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    reason_code = forms.CharField(required=False, max_length=50)
    severity = forms.ChoiceField(required=False, choices=[("", "---"), *Severity.choices])
    note = forms.CharField(required=False, max_length=NOTE_MAX_CHARS, widget=forms.Textarea)
    active_seconds = forms.FloatField(required=False, min_value=0)

    def __init__(self, *args, criteria=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        # One optional text field per criterion: review_submit judges the scores.
        for criterion in self.criteria:
            self.fields[field_name(criterion)] = forms.CharField(required=False, max_length=200)

    def rubric(self) -> dict:
        return {c.key: self.cleaned_data.get(field_name(c), "") for c in self.criteria}


STEP_MARK = "mark"
STEP_REMOVE = "remove"
# The service's field names -> the step form's (prefixed: the page has two forms).
STEP_FIELDS = {
    "step": "step_index",
    "part": "step_part",
    "reason": "step_reason",
    "severity": "step_severity",
    "note": "step_note",
}


class StepForm(forms.Form):
    """A mark on one step of the conversation; the rules live in ``step_verdict_validate``."""

    step_action = forms.ChoiceField(choices=[(STEP_MARK, "Mark"), (STEP_REMOVE, "Remove")])
    step_index = forms.IntegerField(min_value=1, max_value=1_000_000)
    step_part = forms.CharField(required=False, max_length=255)
    step_reason = forms.CharField(required=False, max_length=50)
    step_severity = forms.CharField(required=False, max_length=10)
    step_note = forms.CharField(required=False, max_length=NOTE_MAX_CHARS, widget=forms.Textarea)

    def mark(self) -> StepMark:
        data = self.cleaned_data
        return StepMark(
            step=data["step_index"],
            part=data["step_part"].strip(),
            reason=data["step_reason"],
            severity=data["step_severity"],
            note=data["step_note"],
        )


def _context(request: HttpRequest, admin_site, **extra) -> dict:
    return {**admin_site.each_context(request), **extra}


def _focused_context(admin_site, **extra) -> dict:
    """The admin chrome without the navigation sidebar, for the review page.

    Reviewers spend hours on this page: it gets the whole width, and skipping
    the sidebar's app list saves its permission queries on every item.
    """
    return {
        "site_title": admin_site.site_title,
        "site_header": admin_site.site_header,
        "site_url": admin_site.site_url,
        "has_permission": True,
        "available_apps": [],
        "is_popup": False,
        "is_nav_sidebar_enabled": False,
        **extra,
    }


def _queue_url() -> str:
    return reverse("admin:reviews_workspace_queue")


def _review_url(assignment) -> str:
    return reverse("admin:reviews_workspace_review", args=[assignment.pk])


@require_GET
def queue_view(request: HttpRequest, *, admin_site) -> HttpResponse:
    form = NarrowingForm(request.GET)
    narrowing = form.narrowing()
    rows = queue_overview(user=request.user, narrowing=narrowing)
    return TemplateResponse(
        request,
        "admin/reviews/workspace/queue.html",
        _context(
            request,
            admin_site,
            title="My review queue",
            rows=rows,
            narrowing_form=form,
            narrowing=narrowing,
            undo=undo_offer(request),
        ),
        status=200 if form.is_valid() else 400,
    )


@require_POST
def claim_view(request: HttpRequest, project_id: int, *, admin_site) -> HttpResponse:
    project = get_object_or_404(Project, pk=project_id)
    narrowing = NarrowingForm(request.POST).narrowing()
    # The next item after each decision comes from the same part of the queue.
    chosen = {
        "model_version": narrowing.model_version,
        "reason": narrowing.reason,
        "check": narrowing.check,
    }
    if request.session.get(NARROWING_SESSION_KEY) != chosen:  # unchanged: no session write
        request.session[NARROWING_SESSION_KEY] = chosen
    try:
        assignment = assignment_claim_next(
            reviewer=request.user, project=project, narrowing=narrowing
        )
    except NotAllowed as exc:
        raise Http404("No such project.") from exc
    if assignment is None:
        messages.info(request, f"Nothing left to review in {project.name}. Well done.")
        return redirect(_queue_url())
    return redirect(_review_url(assignment))


def review_view(request: HttpRequest, assignment_id: int, *, admin_site) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    if request.method == "GET":
        assignment = assignment_for_review_page(assignment_id=assignment_id, user=request.user)
        if assignment is None:
            raise Http404("No such claim.")
        if not _usable(assignment):
            messages.warning(request, _closed_message(assignment))
            return redirect(_queue_url())
        item = assignment.item
        form = (
            PreferenceForm()
            if item.is_comparison
            else ReviewForm(criteria=item.project.rubric_criteria.all())
        )
        return _render_review(request, admin_site, assignment, form, status=200)

    # A submit needs only the claim; the page's data is loaded again on a 400.
    assignment = assignment_of(assignment_id=assignment_id, user=request.user)
    if assignment is None:
        raise Http404("No such claim.")
    if assignment.item.is_comparison:
        return comparison_post(
            request,
            assignment,
            rerender=lambda form: _rerender(request, admin_site, assignment, form),
            queue_url=_queue_url(),
            review_url=_review_url,
            narrowing=_session_narrowing(request),
        )
    item = assignment.item
    form = ReviewForm(request.POST, criteria=rubric_of(item.project))
    if not form.is_valid():
        return _rerender(request, admin_site, assignment, form)
    data = form.cleaned_data
    action = data["action"]
    try:
        if action in (ACTION_SKIP, ACTION_RELEASE):
            assignment_release(
                assignment_id=assignment.pk, reviewer=request.user, skip=action == ACTION_SKIP
            )
        else:
            review = review_submit(
                assignment_id=assignment.pk,
                reviewer=request.user,
                data=ReviewInput(
                    verdict=action,
                    corrected_output=data["corrected_output"],
                    reason_code=data["reason_code"],
                    note=data["note"],
                    severity=data["severity"],
                    rubric=form.rubric(),
                ),
                active_seconds=data["active_seconds"],
                criteria=form.criteria,
            )
            undo_remember(request, review=review, item=item)
    except ReviewInvalid as exc:
        for name, errors in exc.detail.items():
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
        return _rerender(request, admin_site, assignment, form)
    except StaleAssignment as exc:
        messages.error(request, exc.message)
        return redirect(_queue_url())

    if action == ACTION_RELEASE:
        messages.info(request, f"Released {item.external_id}; it is back in the queue.")
        return redirect(_queue_url())
    done = DONE[action]
    next_assignment = assignment_claim_next(
        reviewer=request.user, project=item.project, narrowing=_session_narrowing(request)
    )
    if next_assignment is None:
        messages.success(request, f"{done} {item.external_id}. The queue is empty for now.")
        return redirect(_queue_url())
    messages.success(request, f"{done} {item.external_id}. Here is the next item.")
    return redirect(_review_url(next_assignment))


@require_POST
def steps_view(request: HttpRequest, assignment_id: int, *, admin_site) -> HttpResponse:
    """Mark a step of the conversation wrong (or take the mark back) while holding the claim."""
    assignment = assignment_of(assignment_id=assignment_id, user=request.user)
    if assignment is None:
        raise Http404("No such claim.")
    if not _usable(assignment):
        messages.warning(request, _closed_message(assignment))
        return redirect(_queue_url())
    form = StepForm(request.POST)
    if not form.is_valid():
        return _rerender(request, admin_site, assignment, ReviewForm(), step_form=form)
    mark = form.mark()
    try:
        if form.cleaned_data["step_action"] == STEP_REMOVE:
            removed = step_verdict_remove(
                assignment_id=assignment.pk, reviewer=request.user, step=mark.step, part=mark.part
            )
            done = f"Removed the mark on step {mark.step}." if removed else "Nothing to remove."
        else:
            step_verdict_mark(assignment_id=assignment.pk, reviewer=request.user, mark=mark)
            done = f"Marked step {mark.step} wrong."
    except ReviewInvalid as exc:
        for name, errors in exc.detail.items():
            for error in errors:
                form.add_error(STEP_FIELDS.get(name), error)
        return _rerender(request, admin_site, assignment, ReviewForm(), step_form=form)
    except StaleAssignment as exc:
        messages.error(request, exc.message)
        return redirect(_queue_url())
    messages.success(request, done)
    return redirect(f"{_review_url(assignment)}#ws-step-{mark.step}")


def _usable(assignment) -> bool:
    return (
        assignment.state == AssignmentState.ACTIVE and assignment.lease_expires_at > timezone.now()
    )


def _closed_message(assignment) -> str:
    if assignment.state == AssignmentState.SUBMITTED:
        return "You already submitted a review for that item; it was recorded once."
    if assignment.state == AssignmentState.ACTIVE:
        return "Your claim on that item expired; it went back to the queue."
    return f"That claim is closed ({assignment.get_state_display().lower()})."


def _rerender(request, admin_site, assignment, form, *, step_form=None) -> TemplateResponse:
    """The review page again with the form's errors and the reviewer's input (HTTP 400)."""
    full = assignment_for_review_page(assignment_id=assignment.pk, user=request.user)
    return _render_review(request, admin_site, full, form, status=400, step_form=step_form)


def _render_review(
    request, admin_site, assignment, form, *, status: int, step_form=None
) -> TemplateResponse:
    item = assignment.item
    project: Project = item.project
    # One query for the claim's marks, whatever the number of turns.
    has_turns = bool(item.messages) or item.is_transcript
    turns = transcript_view(item, step_verdicts_of(assignment) if has_turns else [])
    # A refused mark reopens its step's form with the errors; errors on a step the page
    # has no form for (a bad index) show above the conversation.
    step_open = ""
    if step_form is not None and step_form.is_bound:
        posted = str(step_form.data.get("step_index", ""))
        markable = {str(turn.step) for turn in turns if turn.markable}
        step_open = posted if posted in markable else ""
    # A comparison has neither: its checks live on its candidates, and the judge grades
    # single outputs (the selector reads neither for it).
    judge = [] if item.is_comparison else list(item.judge_verdicts.all())
    checks = [] if item.is_comparison else list(item.check_results.all())
    corrected = form.data.get("corrected_output") if form.is_bound else None
    output = output_view(item.output)
    context = _focused_context(
        admin_site,
        title=f"Review {item.external_id}",
        assignment=assignment,
        item=item,
        project=project,
        output=output,
        metadata=metadata_text(item.metadata),
        checks=checks,
        checks_failed=sum(1 for check in checks if not check.passed),
        judge=judge[0] if judge else None,
        form=form,
        reasons=[(code, reason_label(code)) for code in project.reason_codes or []],
        other_reason=reason_label(OTHER_REASON),
        severities=[(v, label, SEVERITY_DIGITS[v]) for v, label in Severity.choices],
        # A JSON output is edited pretty-printed (review_submit stores it in the output's layout).
        editor_text=corrected if corrected is not None else output.text,
        shortcuts=SHORTCUTS,
        rubric=rubric_rows(form),
        undo=undo_offer(request),
        lease_seconds=max(0, int((assignment.lease_expires_at - timezone.now()).total_seconds())),
        open_panel=form.data.get("action", "") if form.is_bound else "",
        turns=turns,
        step_form=step_form,
        step_open=step_open,
        step_severities=[(v, label) for v, label in Severity.choices if v != Severity.NONE],
    )
    if item.is_comparison:
        return render_comparison(
            request, admin_site, assignment, form, status=status, context=context
        )
    return TemplateResponse(request, "admin/reviews/workspace/review.html", context, status=status)


def rubric_rows(form: ReviewForm) -> list[dict]:
    """Each criterion of the review page with its choices, the entered value and errors.

    Every choice has the digit that picks it on the keyboard: a scale's own
    scores, a categorical criterion's options 1-9, a boolean 1 (yes) and 0 (no).
    """
    rows = []
    for criterion in form.criteria:
        name = field_name(criterion)
        entered = str(form.data.get(name, "")) if form.is_bound else ""
        if criterion.kind == CriterionKind.SCALE:
            anchors = criterion.anchors or {}
            scores = range(criterion.scale_min, criterion.scale_max + 1)
            choices = [(str(v), str(v), str(v), anchors.get(str(v), "")) for v in scores]
        elif criterion.kind == CriterionKind.CATEGORICAL:
            choices = [
                (option, str(i), option, "") for i, option in enumerate(criterion.options, 1)
            ]
        else:
            choices = [("yes", "1", "Yes", ""), ("no", "0", "No", "")]
        rows.append(
            {
                "criterion": criterion,
                "field": name,
                "choices": [
                    {
                        "value": v,
                        "digit": d,
                        "text": t,
                        "anchor": a,
                        "checked": entered == v,
                    }
                    for v, d, t, a in choices
                ],
                "errors": form.errors.get(name, []) if form.is_bound else [],
            }
        )
    return rows


def undo_remember(request: HttpRequest, *, review: Review, item) -> None:
    """Offer the undo of ``review`` on the next pages while its window lasts.

    The offer keeps what the pages show (the item, the verdict, the deadline) in
    the session, so no page reads the review again to show the button.
    """
    deadline = undo_deadline(review, item.project)
    if deadline is None:
        request.session.pop(UNDO_SESSION_KEY, None)
        return
    request.session[UNDO_SESSION_KEY] = {
        "review": review.pk,
        "external_id": item.external_id,
        "verdict": review.get_verdict_display(),
        "until": deadline.timestamp(),
    }


def undo_offer(request: HttpRequest) -> dict | None:
    """The reviewer's last decision while it may still be undone by time, else None.

    Whether nothing else forbids it is ``review_undo``'s to say when it is asked.
    """
    offer = request.session.get(UNDO_SESSION_KEY)
    if not isinstance(offer, dict):
        return None
    left = offer["until"] - timezone.now().timestamp()
    if left <= 0:
        request.session.pop(UNDO_SESSION_KEY, None)
        return None
    return {
        "url": reverse("admin:reviews_workspace_undo", args=[offer["review"]]),
        "external_id": offer["external_id"],
        "verdict": offer["verdict"],
        "seconds_left": int(left),
    }


@require_POST
def undo_view(request: HttpRequest, review_id: int, *, admin_site) -> HttpResponse:
    try:
        assignment = review_undo(review_id=review_id, reviewer=request.user)
    except NotAllowed as exc:
        raise Http404("No such review.") from exc
    except UndoRefused as exc:
        request.session.pop(UNDO_SESSION_KEY, None)
        messages.error(request, exc.message)
        return redirect(_queue_url())
    request.session.pop(UNDO_SESSION_KEY, None)
    messages.success(
        request, f"Undone: your decision on {assignment.item.external_id} was withdrawn."
    )
    return redirect(_review_url(assignment))


def metadata_text(value) -> str:
    """Metadata as indented JSON text (rendered escaped), or "" when empty."""
    if not value:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@require_GET
def timeline_view(request: HttpRequest, item_id: int, *, admin_site) -> HttpResponse:
    item = item_for_timeline(item_id=item_id, user=request.user)
    if item is None:
        raise Http404("No such item.")
    item = control_seen_by(item=item, viewer=request.user)
    events = item_timeline(item=item, viewer=request.user)
    return TemplateResponse(
        request,
        "admin/reviews/workspace/timeline.html",
        _context(
            request,
            admin_site,
            title=f"Timeline of {item.external_id}",
            item=item,
            events=events,
            output=output_view(item.output),
        ),
    )


def _workspace_view(view, admin_site):
    """Staff login via ``admin_site.admin_view``; each view scopes to the user's projects."""

    def wrapped(request, *args, **kwargs):
        return view(request, *args, admin_site=admin_site, **kwargs)

    return admin_site.admin_view(wrapped)


def workspace_urls(admin_site) -> list:
    """URL patterns of the workspace, wrapped in ``admin_site.admin_view``."""
    return [
        path(
            "workspace/",
            _workspace_view(queue_view, admin_site),
            name="reviews_workspace_queue",
        ),
        path(
            "workspace/claim/<int:project_id>/",
            _workspace_view(claim_view, admin_site),
            name="reviews_workspace_claim",
        ),
        path(
            "workspace/review/<int:assignment_id>/",
            _workspace_view(review_view, admin_site),
            name="reviews_workspace_review",
        ),
        path(
            "workspace/review/<int:assignment_id>/steps/",
            _workspace_view(steps_view, admin_site),
            name="reviews_workspace_steps",
        ),
        path(
            "workspace/undo/<int:review_id>/",
            _workspace_view(undo_view, admin_site),
            name="reviews_workspace_undo",
        ),
        path(
            "<int:item_id>/timeline/",
            _workspace_view(timeline_view, admin_site),
            name="reviews_item_timeline",
        ),
    ]
