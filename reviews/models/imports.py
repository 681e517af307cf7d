from django.conf import settings
from django.db import models

from reviews.models.projects import Project


class ImportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines (one item object a line)"
    CSV = "csv", "CSV (a header row, then one item a row)"


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Uploaded, columns not mapped yet"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ItemImport(models.Model):
    """A file of outputs a project admin uploaded, and how far its ingest got.

    The file itself lives on the ``imports`` storage under ``file_name``; rows
    reach the items table only through the ingest service, chunk by chunk.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    original_name = models.CharField(max_length=255, help_text="The uploaded file's own name.")
    file_name = models.CharField(
        max_length=300, editable=False, help_text="Where the file is on the imports storage."
    )
    file_size = models.PositiveBigIntegerField(default=0)
    format = models.CharField(max_length=10, choices=ImportFormat.choices)
    mapping = models.JSONField(
        default=dict, blank=True, help_text="Item field -> column (CSV) or key (JSONL)."
    )
    defaults = models.JSONField(
        default=dict, blank=True, help_text="Fixed values for unmapped fields (model name/version)."
    )
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.DRAFT
    )
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0, help_text="Items this import stored.")
    existing_count = models.PositiveIntegerField(
        default=0, help_text="Rows whose item was already stored (identical resubmits)."
    )
    error_count = models.PositiveIntegerField(default=0, help_text="Rows refused.")
    error = models.TextField(blank=True, help_text="Why the whole file was refused, if it was.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="import_project_idx")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)


class ItemImportError(models.Model):
    """One refused row of an import: its number in the file, the field and the message."""

    item_import = models.ForeignKey(ItemImport, on_delete=models.CASCADE, related_name="errors")
    row = models.PositiveIntegerField(help_text="1 = the first data row (after a CSV header).")
    field = models.CharField(max_length=200, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["row", "id"]

    def __str__(self) -> str:
        return f"row {self.row} {self.field}: {self.message}"
