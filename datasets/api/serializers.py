"""Input and output shapes of the exports API."""

from django.urls import reverse
from rest_framework import serializers

from datasets import formats
from datasets.models import DatasetExport, Split, WrongSteps
from reviews.models import Severity
from reviews.models.items import FINAL_STATUSES

FINAL_STATUS_CHOICES = sorted(str(status) for status in FINAL_STATUSES)


class FormatField(serializers.ChoiceField):
    """A registered export format (``datasets.formats``).

    The choices are read when the field is made, and DRF makes the fields anew
    for every serializer, so a format registered after import is offered too.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=formats.choices(), **kwargs)


class ExportCreateSerializer(serializers.Serializer):
    """What to export. Filters combine with AND; list filters match any of their values."""

    format = FormatField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    projects = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        allow_empty=False,
        help_text="Project slugs; defaults to the API key's project.",
    )
    decided_after = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Decided at or after (ISO 8601)."
    )
    decided_before = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Decided before (ISO 8601)."
    )
    model_names = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    model_versions = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=FINAL_STATUS_CHOICES),
        required=False,
        default=list,
        help_text="Final statuses to include; defaults to the format's human decisions.",
    )
    min_severity = serializers.ChoiceField(
        choices=Severity.choices, required=False, allow_blank=True, default=""
    )
    reason_codes = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list
    )
    adjudicated_only = serializers.BooleanField(required=False, default=False)
    exclude_audit = serializers.BooleanField(
        required=False, default=False, help_text="Leave out audit samples."
    )
    wrong_steps = serializers.ChoiceField(
        choices=WrongSteps.choices,
        required=False,
        default=WrongSteps.WEIGHT,
        help_text="Items whose conversation has steps marked wrong: 'weight' keeps them (SFT "
        "writes the marked assistant turns with weight 0), 'exclude' leaves them out.",
    )
    seed = serializers.IntegerField(
        required=False, default=0, min_value=-(2**63), max_value=2**63 - 1
    )
    validation_ratio = serializers.FloatField(
        required=False, default=0.0, min_value=0.0, max_value=0.5
    )
    deduplicate = serializers.BooleanField(required=False, default=True)

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


class ExportSerializer(serializers.ModelSerializer):
    """An export: its status and progress while it builds, its files and manifest once built."""

    projects = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    downloads = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetExport
        fields = [
            "id",
            "name",
            "format",
            "status",
            "progress",
            "rows_total",
            "rows_done",
            "row_count",
            "item_count",
            "counts",
            "files",
            "projects",
            "filters",
            "seed",
            "validation_ratio",
            "deduplicate",
            "error",
            "created_by",
            "created_via",
            "created_at",
            "started_at",
            "finished_at",
            "manifest",
            "downloads",
            "manifest_url",
        ]
        read_only_fields = fields

    def _url(self, export: DatasetExport, name: str, query: str = "") -> str:
        path = reverse(f"dataset-export-{name}", args=[export.pk]) + query
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_downloads(self, export: DatasetExport) -> dict[str, str]:
        if not export.is_built:
            return {}
        return {
            split: self._url(export, "download", f"?split={split}")
            for split in Split.values
            if split in export.files
        }

    def get_manifest_url(self, export: DatasetExport) -> str | None:
        return self._url(export, "manifest") if export.is_built else None


class DownloadQuerySerializer(serializers.Serializer):
    split = serializers.ChoiceField(choices=Split.choices, required=False, default=Split.TRAIN)
