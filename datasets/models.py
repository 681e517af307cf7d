from enum import StrEnum

from django.conf import settings
from django.db import models

from datasets import formats
from reviews.models import Project, ReviewItem


class ExportFormat(StrEnum):
    """The keys of the built-in formats, for code that names one.

    The formats themselves are the registry's (``datasets.formats``); a new
    format is not added here.
    """

    SFT_CHAT = "sft_chat"
    DPO_PAIRS = "dpo_pairs"
    TRIPLETS_JSONL = "triplets_jsonl"
    TRIPLETS_CSV = "triplets_csv"
    REVIEW_LOG = "review_log"
    TRL_PREFERENCE = "trl_preference"
    OPENAI_PREFERENCE = "openai_preference"
    TRL_UNPAIRED = "trl_unpaired"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Built"
    FAILED = "failed", "Failed"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"


class WrongSteps(models.TextChoices):
    """What an export does with items whose conversation has steps marked wrong."""

    WEIGHT = "weight", "Keep them (SFT: the marked assistant turns get weight 0)"
    EXCLUDE = "exclude", "Leave them out"


class DatasetExportQuerySet(models.QuerySet):
    def for_projects(self, projects) -> "DatasetExportQuerySet":
        """Exports whose every project is in ``projects`` (a queryset of Project)."""
        return self.exclude(projects__in=Project.objects.exclude(pk__in=projects.values("pk")))


class DatasetExport(models.Model):
    """One training dataset built from final human decisions. Immutable once built.

    The files live on the ``exports`` storage (``datasets.storage``): one per
    split, plus a manifest that lists every exported item with the history row
    it was read at.
    """

    name = models.CharField(max_length=200, blank=True, help_text="A label for people.")
    # Choices are read from the registry when asked for, so a new format needs no migration.
    format = models.CharField(max_length=formats.KEY_MAX_LENGTH, choices=formats.choices)
    projects = models.ManyToManyField(Project, related_name="dataset_exports")
    filters = models.JSONField(
        default=dict, help_text="The normalised filters the rows were selected with."
    )
    seed = models.BigIntegerField(default=0, help_text="Seed of the train/validation split.")
    validation_ratio = models.FloatField(
        default=0.0, help_text="Share of items drawn into the validation split, in [0, 0.5]."
    )
    deduplicate = models.BooleanField(
        default=True, help_text="Drop items whose prompt and gold output repeat an earlier item."
    )

    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    progress = models.FloatField(default=0.0, help_text="Share of source rows read, in [0, 1].")
    rows_total = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Source rows matching the filters."
    )
    rows_done = models.PositiveBigIntegerField(default=0)
    row_count = models.PositiveBigIntegerField(default=0, help_text="Lines written (all splits).")
    item_count = models.PositiveBigIntegerField(default=0, help_text="Distinct items exported.")
    counts = models.JSONField(
        default=dict, blank=True, help_text="Rows per split, duplicates and skipped rows."
    )
    files = models.JSONField(
        default=dict, blank=True, help_text="Per split: file name, rows, bytes, sha256."
    )
    manifest = models.JSONField(
        default=dict, blank=True, help_text="The manifest without its item list."
    )
    error = models.TextField(blank=True)
    job_id = models.CharField(max_length=100, blank=True)
    build_id = models.CharField(
        max_length=32, blank=True, help_text="The current build attempt (set when it starts)."
    )
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of the running build; the sweep fails a silent one.",
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dataset_exports",
    )
    created_via = models.CharField(
        max_length=100, blank=True, help_text="Who asked: a user, an API key or a command."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DatasetExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(validation_ratio__gte=0.0, validation_ratio__lte=0.5),
                name="export_validation_ratio_range",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0, progress__lte=1.0),
                name="export_progress_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"Export {self.pk} ({self.get_format_display()})"

    @property
    def is_built(self) -> bool:
        return self.status == ExportStatus.SUCCEEDED

    @property
    def file_stem(self) -> str:
        return f"export-{self.pk}-{self.format}"

    @property
    def spec(self) -> formats.ExportFormatSpec:
        """The export's format, from the registry."""
        return formats.get(self.format)

    @property
    def extension(self) -> str:
        return self.spec.extension

    @property
    def content_type(self) -> str:
        return self.spec.content_type

    def file_name(self, split: str) -> str:
        return f"{self.file_stem}-{split}.{self.extension}"

    @property
    def manifest_name(self) -> str:
        return f"{self.file_stem}-manifest.json"


class DatasetExportItem(models.Model):
    """An item that went into an export, the history row it was read at, and its split."""

    # Up to millions of rows per export, written once by COPY in the transaction
    # that read the items: per-row foreign key triggers would cost more than the
    # whole build, so the links are kept by the ORM (cascade, protect) only.
    export = models.ForeignKey(
        DatasetExport,
        on_delete=models.CASCADE,
        related_name="entries",
        db_constraint=False,
        db_index=False,  # the unique (export, item) index serves lookups by export
    )
    item = models.ForeignKey(
        ReviewItem, on_delete=models.PROTECT, related_name="export_entries", db_constraint=False
    )
    history_id = models.BigIntegerField(
        null=True, help_text="The item's latest history row when the export was built."
    )
    split = models.CharField(max_length=10, choices=Split.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["export", "item"], name="unique_export_item")
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} in export {self.export_id} ({self.split})"
