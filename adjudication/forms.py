"""Admin forms: they parse input; the rules live in adjudication.services."""

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from adjudication.models import Upheld
from reviews.models import Project, Severity, Verdict
from reviews.services.review_rules import reason_label

MAX_RATIONALE_CHARS = 20_000


class DecisionForm(forms.Form):
    claim = forms.IntegerField(widget=forms.HiddenInput)
    upheld = forms.ChoiceField(choices=Upheld.choices, widget=forms.RadioSelect)
    verdict = forms.ChoiceField(
        choices=[("", "—"), *Verdict.choices], required=False, widget=forms.RadioSelect
    )
    final_output = forms.CharField(widget=forms.Textarea, required=False, strip=False)
    reason_code = forms.ChoiceField(choices=[("", "—")], required=False)
    severity = forms.ChoiceField(
        choices=[("", "—"), *Severity.choices], required=False, widget=forms.RadioSelect
    )
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_RATIONALE_CHARS,
        error_messages={"required": "Explain the decision: the rationale is required."},
    )
    # Submit-and-next: after deciding, claim the next case and open it.
    and_next = forms.BooleanField(required=False)
    # A comparison's own decision: "winner:<candidate id>", "tie" or "all_bad".
    own = forms.CharField(required=False, max_length=40)

    def own_preference(self) -> tuple[str, int | None]:
        """(preference, winner id) of the own-decision radio; the rules judge them."""
        own = self.cleaned_data.get("own") or ""
        preference, _, winner = own.partition(":")
        return preference, int(winner) if winner.isdigit() else None

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        codes = project.reason_codes or []
        self.fields["reason_code"].choices = [
            ("", "—"),
            *((code, f"{n}. {reason_label(code)}") for n, code in enumerate(codes, 1)),
        ]
        if not project.allow_corrections:
            self.fields["verdict"].choices = [
                choice for choice in self.fields["verdict"].choices if choice[0] != "correct"
            ]


class ReopenForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_RATIONALE_CHARS,
        error_messages={"required": "Say why the item is reopened."},
    )


class ReopenLookupForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    external_id = forms.CharField(max_length=255)

    def __init__(self, *args, projects, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects


class AgreementFilterForm(forms.Form):
    """A project and a period of whole days, both ends included."""

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
        elif not self.errors:
            try:
                self.period()
            except OverflowError:
                # 0001-01-01 minus a month, or the day after 9999-12-31.
                self.add_error("end" if end else "start", "Choose a date between years 1 and 9999.")
        return data

    def period(self) -> tuple[datetime, datetime]:
        """The chosen days as [start 00:00, day after end 00:00) in the current time zone."""
        today = timezone.localdate()
        end_day = self.cleaned_data.get("end") or today
        start_day = self.cleaned_data.get("start") or end_day - timedelta(days=29)
        zone = timezone.get_current_timezone()
        start = datetime.combine(start_day, time.min, tzinfo=zone)
        end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=zone)
        return start, end
