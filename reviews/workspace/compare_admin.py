"""The review page of a comparison item: candidates side by side, a preference to submit.

Called by ``reviews.workspace.admin.review_view`` for comparison items; thin
like it: parse the form, call ``preference_submit``, render. The candidates
appear in the order drawn for this claim, labelled A-D; model names and
versions are left out of the page until the reviewer has decided (then the
confirmation names them).
"""

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from reviews.models import Candidate, Severity
from reviews.services.comparisons import PreferenceInput
from reviews.services.review_rules import OTHER_REASON
from reviews.workspace.preferences import candidates_in_claim_order, preference_submit
from reviews.workspace.selectors import OutputView, output_view
from reviews.workspace.services import (
    NOTE_MAX_CHARS,
    ReviewInvalid,
    StaleAssignment,
    assignment_claim_next,
    assignment_release,
)

LABELS = "ABCD"
CHOICE_TIE = "tie"
CHOICE_ALL_BAD = "all_bad"
CHOICE_CORRECT = "correct"
CHOICE_SKIP = "skip"
CHOICE_RELEASE = "release"
WINNER_PREFIX = "winner:"
SHORTCUTS = [
    ("1-4", "This candidate (A-D) is the best: submit and next"),
    ("=", "Tie: no candidate is better than the others"),
    ("b", "All bad: pick a reason and a severity, then submit"),
    ("e", "Correct the best candidate: pick it, edit, reason and severity, then submit"),
    ("m", "Show the texts as written (raw) or with their markdown rendered"),
    ("n", "Skip this item (someone else will take it)"),
    ("?", "Show or hide this help"),
    ("Ctrl+Enter", "Submit the open all-bad or correction form"),
    ("Esc", "Close the open form or this help"),
]


class PreferenceForm(forms.Form):
    """The comparison page's form; the rules live in ``preference_decide``."""

    # Rubric criteria score single outputs; a comparison is scored by its preference.
    criteria = ()

    choice = forms.CharField(max_length=40)
    winner = forms.IntegerField(required=False, min_value=1)
    corrected_output = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    reason_code = forms.CharField(required=False, max_length=50)
    severity = forms.ChoiceField(required=False, choices=[("", "---"), *Severity.choices])
    note = forms.CharField(required=False, max_length=NOTE_MAX_CHARS, widget=forms.Textarea)
    active_seconds = forms.FloatField(required=False, min_value=0)

    def clean(self):
        data = super().clean()
        choice = data.get("choice", "")
        if choice.startswith(WINNER_PREFIX):
            try:
                data["winner"] = int(choice.removeprefix(WINNER_PREFIX))
            except ValueError:
                self.add_error("winner", "Choose one of this item's candidates.")
            data["choice"] = "winner"
        elif choice not in (
            CHOICE_TIE,
            CHOICE_ALL_BAD,
            CHOICE_CORRECT,
            CHOICE_SKIP,
            CHOICE_RELEASE,
        ):
            self.add_error("choice", "Choose the best candidate, a tie or all bad.")
        return data


@dataclass
class ShownCandidate:
    label: str
    key: int
    candidate: Candidate
    output: OutputView


def shown_candidates(assignment) -> list[ShownCandidate]:
    """The item's candidates in this claim's order, labelled A-D (one query, none when
    the review page's selector read them already)."""
    candidates = list(assignment.item.candidates.all())
    return [
        ShownCandidate(
            label=LABELS[index],
            key=index + 1,
            candidate=candidate,
            output=output_view(candidate.output),
        )
        for index, candidate in enumerate(candidates_in_claim_order(assignment, candidates))
    ]


def render_comparison(
    request, admin_site, assignment, form, *, status: int, context
) -> TemplateResponse:
    """The comparison review page; ``context`` is the review page's common context."""
    shown = shown_candidates(assignment)
    context = {
        **context,
        "candidates": shown,
        "shortcuts": SHORTCUTS,
        "reason_codes": assignment.item.project.reason_codes,
        "other_reason": OTHER_REASON,
        "severities": Severity.choices,
        "editor_sources": {str(s.candidate.pk): s.output.text for s in shown},
        "chosen_winner": form.data.get("winner", "") if form.is_bound else "",
        "open_panel": form.data.get("choice", "") if form.is_bound else "",
        "lease_seconds": max(
            0, int((assignment.lease_expires_at - timezone.now()).total_seconds())
        ),
    }
    return TemplateResponse(request, "admin/reviews/workspace/compare.html", context, status=status)


def _revealed(shown: list[ShownCandidate]) -> str:
    """The models behind the labels, for the confirmation once the reviewer decided."""
    return "; ".join(
        f"{s.label} was {s.candidate.model_name} {s.candidate.model_version}" for s in shown
    )


def comparison_post(request, assignment, *, rerender, queue_url, review_url, narrowing):
    """Handle the comparison form: a preference, a skip or a release."""
    form = PreferenceForm(request.POST)
    if not form.is_valid():
        return rerender(form)
    data = form.cleaned_data
    choice = data["choice"]
    item = assignment.item
    try:
        if choice in (CHOICE_SKIP, CHOICE_RELEASE):
            assignment_release(
                assignment_id=assignment.pk, reviewer=request.user, skip=choice == CHOICE_SKIP
            )
        else:
            review = preference_submit(
                assignment_id=assignment.pk,
                reviewer=request.user,
                data=PreferenceInput(
                    preference="winner" if choice == CHOICE_CORRECT else choice,
                    winner_id=data["winner"],
                    corrected_output=data["corrected_output"] if choice == CHOICE_CORRECT else None,
                    reason_code=data["reason_code"],
                    note=data["note"],
                    severity=data["severity"],
                ),
                active_seconds=data["active_seconds"],
            )
    except ReviewInvalid as exc:
        for name, errors in exc.detail.items():
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
        return rerender(form)
    except StaleAssignment as exc:
        messages.error(request, exc.message)
        return redirect(queue_url)
    if choice == CHOICE_RELEASE:
        messages.info(request, f"Released {item.external_id}; it is back in the queue.")
        return redirect(queue_url)
    if choice == CHOICE_SKIP:
        done = f"Skipped {item.external_id}."
    else:
        shown = shown_candidates(assignment)
        label = {s.candidate.pk: s.label for s in shown}
        said = (
            f"you preferred {label.get(review.winner_id, '?')}"
            if review.winner_id
            else ("a tie" if review.preference == CHOICE_TIE else "all bad")
        )
        done = f"Recorded {item.external_id}: {said}. {_revealed(shown)}."
    next_assignment = assignment_claim_next(
        reviewer=request.user, project=item.project, narrowing=narrowing
    )
    if next_assignment is None:
        messages.success(request, f"{done} The queue is empty for now.")
        return redirect(queue_url)
    messages.success(request, f"{done} Here is the next item.")
    return redirect(review_url(next_assignment))
