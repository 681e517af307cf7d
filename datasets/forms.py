"""The admin's export form: the same fields and rules as the API."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from datasets.models import DatasetExport, WrongSteps
from datasets.services import MAX_VALIDATION_RATIO, export_filters_normalise
from reviews.models import Severity
from reviews.models.items import FINAL_STATUSES, ItemStatus

FILTER_FIELDS = (
    "decided_after",
    "decided_before",
    "model_names",
    "model_versions",
    "statuses",
    "min_severity",
    "reason_codes",
    "adjudicated_only",
    "exclude_audit",
    "wrong_steps",
)


class CommaSeparatedField(forms.CharField):
    """A comma-separated list of values, e.g. ``v1, v2``."""

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        return [part.strip() for part in text.split(",") if part.strip()]


class ExportCreateForm(forms.ModelForm):
    decided_after = forms.DateTimeField(
        required=False, help_text="Items decided at or after, e.g. 2026-11-01 00:00."
    )
    decided_before = forms.DateTimeField(required=False, help_text="Items decided before.")
    model_names = CommaSeparatedField(required=False, help_text="Comma-separated; any matches.")
    model_versions = CommaSeparatedField(required=False, help_text="Comma-separated; any matches.")
    statuses = forms.MultipleChoiceField(
        required=False,
        choices=[(s.value, s.label) for s in ItemStatus if s in FINAL_STATUSES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty for the format's default: the human decisions it can use.",
    )
    min_severity = forms.ChoiceField(required=False, choices=[("", "any"), *Severity.choices])
    reason_codes = CommaSeparatedField(required=False, help_text="Comma-separated; any matches.")
    adjudicated_only = forms.BooleanField(required=False)
    exclude_audit = forms.BooleanField(required=False, label="Exclude audit samples")
    wrong_steps = forms.ChoiceField(
        required=False,
        choices=WrongSteps.choices,
        initial=WrongSteps.WEIGHT,
        label="Items with steps marked wrong",
        help_text="Keep them (SFT weights the marked assistant turns 0) or leave them out.",
    )

    class Meta:
        model = DatasetExport
        fields = ["name", "format", "projects", "seed", "validation_ratio", "deduplicate"]
        widgets = {"projects": forms.CheckboxSelectMultiple}

    def __init__(self, *args, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        if projects is not None:
            self.fields["projects"].queryset = projects
        ratio = self.fields["validation_ratio"]
        ratio.validators += [MinValueValidator(0.0), MaxValueValidator(MAX_VALIDATION_RATIO)]
        ratio.widget.attrs.update({"min": 0, "max": MAX_VALIDATION_RATIO, "step": "0.01"})

    def clean(self):
        data = super().clean()
        if "format" in data:
            try:
                self.filters = export_filters_normalise(
                    format=data["format"], filters={name: data.get(name) for name in FILTER_FIELDS}
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
        return data

    def filter_values(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in FILTER_FIELDS}
