from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from datasets.downloads import stored_file_response
from datasets.forms import ExportCreateForm
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus
from datasets.selectors import export_entries_visible_to, exports_visible_to
from datasets.services import export_create, export_delete, export_retry
from reviews.access import Capability, may_anywhere, may_in_all, projects_where
from reviews.principals import principal_label


@admin.register(DatasetExport)
class DatasetExportAdmin(admin.ModelAdmin):
    form = ExportCreateForm
    list_display = [
        "id",
        "label",
        "format",
        "status",
        "progress_bar",
        "row_count",
        "created_by",
        "created_at",
        "download_links",
    ]
    list_display_links = ["id", "label"]
    list_filter = ["format", "status"]
    list_select_related = ["created_by"]
    search_fields = ["name"]
    show_full_result_count = False
    actions = ["retry"]
    readonly_fields = [
        "label",
        "format",
        "status",
        "progress_bar",
        "project_list",
        "filters_table",
        "seed",
        "validation_ratio",
        "deduplicate",
        "rows_total",
        "row_count",
        "item_count",
        "items_link",
        "counts",
        "files_table",
        "error",
        "created_by",
        "created_via",
        "created_at",
        "started_at",
        "finished_at",
    ]
    add_fieldsets = [
        (None, {"fields": ["name", "format", "projects"]}),
        (
            "Filters",
            {
                "fields": [
                    ("decided_after", "decided_before"),
                    "statuses",
                    "model_names",
                    "model_versions",
                    "min_severity",
                    "reason_codes",
                    "adjudicated_only",
                    "exclude_audit",
                    "wrong_steps",
                ]
            },
        ),
        ("Split and de-duplication", {"fields": ["seed", "validation_ratio", "deduplicate"]}),
    ]

    class Media:
        js = ["datasets/export_progress.js"]
        css = {"all": ["datasets/exports.css"]}

    def get_queryset(self, request):
        return exports_visible_to(request.user)

    @staticmethod
    def _project_ids(export: DatasetExport) -> list[int]:
        return [project.pk for project in export.projects.all()]

    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) and may_anywhere(
            request.user, Capability.DOWNLOAD_EXPORTS
        )

    def has_view_permission(self, request, obj=None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        if obj is None:
            return may_anywhere(request.user, Capability.DOWNLOAD_EXPORTS)
        return may_in_all(request.user, Capability.DOWNLOAD_EXPORTS, self._project_ids(obj))

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and may_anywhere(
            request.user, Capability.BUILD_EXPORTS
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None:
            return may_anywhere(request.user, Capability.BUILD_EXPORTS)
        return may_in_all(request.user, Capability.BUILD_EXPORTS, self._project_ids(obj))

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        return [(None, {"fields": self.readonly_fields})]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            # The read-only record of an existing export.
            return super().get_form(request, obj, change=change, form=forms.ModelForm, **kwargs)
        form = super().get_form(request, obj, change=change, **kwargs)
        projects = projects_where(request.user, Capability.BUILD_EXPORTS)

        class ScopedForm(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, projects=projects, **inner)

        return ScopedForm

    def has_change_permission(self, request, obj=None) -> bool:
        # A built export never changes; the page is a read-only record.
        return False

    def save_model(self, request, obj, form, change):
        export = export_create(
            format=form.cleaned_data["format"],
            projects=list(form.cleaned_data["projects"]),
            filters=form.filter_values(),
            seed=form.cleaned_data["seed"],
            validation_ratio=form.cleaned_data["validation_ratio"],
            deduplicate=form.cleaned_data["deduplicate"],
            name=form.cleaned_data["name"],
            user=request.user,
            via=principal_label(request.user),
        )
        obj.pk = export.pk
        obj.format = export.format

    def save_related(self, request, form, formsets, change):
        """The service already stored the projects."""

    def get_deleted_objects(self, objs, request):
        """Summarise instead of listing every item entry (an export may hold millions)."""
        exports = list(objs)
        entries = DatasetExportItem.objects.filter(export__in=exports).count()
        summary = [
            f"{export}: its files and {export.item_count:,} item entries" for export in exports
        ]
        counts = {"dataset exports": len(exports), "dataset export items": entries}
        return summary, counts, set(), []

    def delete_model(self, request, obj):
        export_delete(export=obj)

    def delete_queryset(self, request, queryset):
        for export in queryset:
            export_delete(export=export)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, "Export queued; its progress shows below.", messages.SUCCESS)
        return redirect("admin:datasets_datasetexport_change", obj.pk)

    @admin.action(description="Retry selected failed exports")
    def retry(self, request, queryset):
        retried = 0
        for export in queryset.filter(status=ExportStatus.FAILED):
            if not may_in_all(request.user, Capability.BUILD_EXPORTS, self._project_ids(export)):
                continue
            export_retry(export=export)
            retried += 1
        self.message_user(request, f"{retried} export(s) queued again.")

    # --- display -----------------------------------------------------------------

    @admin.display(description="export")
    def label(self, export: DatasetExport) -> str:
        return str(export)

    @admin.display(description="progress")
    def progress_bar(self, export: DatasetExport) -> str:
        return format_html(
            '<span class="export-progress" data-status="{}" data-url="{}">'
            '<progress max="1" value="{}"></progress> <span class="export-progress-text">{}</span>'
            "</span>",
            export.status,
            reverse("admin:datasets_datasetexport_progress", args=[export.pk]),
            f"{export.progress:.4f}",
            _progress_text(export),
        )

    @admin.display(description="download")
    def download_links(self, export: DatasetExport) -> str:
        if not export.is_built:
            return "-"
        links = [
            (reverse("admin:datasets_datasetexport_download", args=[export.pk, split]), split)
            for split in export.files
        ]
        links.append(
            (reverse("admin:datasets_datasetexport_manifest", args=[export.pk]), "manifest")
        )
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="projects")
    def project_list(self, export: DatasetExport) -> str:
        return ", ".join(project.slug for project in export.projects.all())

    @admin.display(description="filters")
    def filters_table(self, export: DatasetExport) -> str:
        return _table((key, _show(value)) for key, value in export.filters.items())

    @admin.display(description="files")
    def files_table(self, export: DatasetExport) -> str:
        if not export.files:
            return "-"
        rows = [
            (
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:datasets_datasetexport_download", args=[export.pk, split]),
                    meta["name"],
                ),
                f"{meta['rows']:,} rows, {meta['bytes']:,} bytes",
                format_html("<code>sha256 {}</code>", meta["sha256"]),
            )
            for split, meta in export.files.items()
        ]
        return _table(rows, columns=3) + self.download_links(export)

    @admin.display(description="items")
    def items_link(self, export: DatasetExport) -> str:
        url = reverse("admin:datasets_datasetexportitem_changelist")
        return format_html(
            '<a href="{}?export__id__exact={}">{} items: which went into this export</a>',
            url,
            export.pk,
            f"{export.item_count:,}",
        )

    # --- custom views --------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/progress/",
                view(self.progress_view),
                name="datasets_datasetexport_progress",
            ),
            path(
                "<int:pk>/download/<str:split>/",
                view(self.download_view),
                name="datasets_datasetexport_download",
            ),
            path(
                "<int:pk>/manifest/",
                view(self.manifest_view),
                name="datasets_datasetexport_manifest",
            ),
            path("<int:pk>/retry/", view(self.retry_view), name="datasets_datasetexport_retry"),
            *super().get_urls(),
        ]

    def _export(self, request: HttpRequest, pk: int) -> DatasetExport:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        return self._scoped_export(request, pk)

    def _scoped_export(self, request: HttpRequest, pk: int) -> DatasetExport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        export = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, export):
            raise PermissionDenied
        return export

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        export = self._export(request, pk)
        return JsonResponse(
            {
                "status": export.status,
                "progress": export.progress,
                "rows_done": export.rows_done,
                "rows_total": export.rows_total,
                "text": _progress_text(export),
                "error": export.error,
            }
        )

    def download_view(self, request: HttpRequest, pk: int, split: str) -> HttpResponse:
        export = self._export(request, pk)
        meta = export.files.get(split) if export.is_built else None
        if meta is None:
            raise Http404("No such file in this export.")
        return _file(meta["name"], export.content_type)

    def manifest_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        export = self._export(request, pk)
        if not export.is_built:
            raise Http404("The export is not built.")
        return _file(export.manifest_name, "application/json")

    def retry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            raise PermissionDenied
        export = self._scoped_export(request, pk)
        if not may_in_all(request.user, Capability.BUILD_EXPORTS, self._project_ids(export)):
            raise PermissionDenied
        try:
            export_retry(export=export)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, "Export queued again.")
        return redirect("admin:datasets_datasetexport_change", export.pk)


@admin.register(DatasetExportItem)
class DatasetExportItemAdmin(admin.ModelAdmin):
    """Which items went into which export, at which history version, in which split."""

    list_display = ["item_link", "export_link", "split", "history_id", "item_status"]
    list_filter = ["split", "export"]
    list_select_related = ["export", "item", "item__project"]
    search_fields = ["=item__id", "=item__external_id"]
    search_help_text = "Find the exports an item went into: its id or external id."
    show_full_result_count = False
    ordering = ["-export_id", "item_id"]

    def get_queryset(self, request):
        return export_entries_visible_to(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="item", ordering="item_id")
    def item_link(self, entry: DatasetExportItem) -> str:
        url = reverse("admin:reviews_reviewitem_change", args=[entry.item_id])
        return format_html('<a href="{}">{}</a>', url, entry.item)

    @admin.display(description="export", ordering="export_id")
    def export_link(self, entry: DatasetExportItem) -> str:
        url = reverse("admin:datasets_datasetexport_change", args=[entry.export_id])
        return format_html('<a href="{}">{}</a>', url, entry.export)

    @admin.display(description="item status now")
    def item_status(self, entry: DatasetExportItem) -> str:
        return entry.item.get_status_display()


def _progress_text(export: DatasetExport) -> str:
    if export.status == ExportStatus.SUCCEEDED:
        return f"built: {export.row_count:,} rows"
    if export.status == ExportStatus.FAILED:
        return "failed"
    if export.status == ExportStatus.QUEUED:
        return "queued"
    total = f"{export.rows_total:,}" if export.rows_total is not None else "?"
    return f"{export.progress:.0%} ({export.rows_done:,} of {total} rows)"


def _show(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "any"
    if value in (None, ""):
        return "any"
    return str(value)


def _table(rows, columns: int = 2) -> str:
    cells = "".join("<td>{}</td>" for _ in range(columns))
    return format_html(
        '<table class="export-table">{}</table>',
        format_html_join("", f"<tr>{cells}</tr>", rows),
    )


def _file(name: str, content_type: str) -> HttpResponse:
    return stored_file_response(name, content_type=content_type)
