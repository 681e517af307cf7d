"""File imports in the admin: upload, map and preview, progress, the error report.

Only admins of a project see, start or download anything of its imports:
``view_capability`` is ADMINISTER, so the list, the pages and the report all
answer from the role in the import's project (``reviews.access``).
"""

import csv

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from datasets.formats.triplets_csv import neutralise_csv_cell
from reviews.access import Capability, may, may_anywhere, projects_where
from reviews.access.admin import ProjectScopedAdminMixin
from reviews.errors import DomainError
from reviews.imports import parsing
from reviews.imports.services import (
    import_confirm,
    import_preview,
    import_progress,
    import_upload,
)
from reviews.models import ImportStatus, ItemImport, Project

NOT_MAPPED = ""


class UploadForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    file = forms.FileField(help_text="JSON Lines (.jsonl) or CSV (.csv) with a header row.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects_where(user, Capability.ADMINISTER).order_by(
            "name"
        )


class MappingForm(forms.Form):
    """One choice of column per item field, and fixed model name / version."""

    def __init__(self, *args, columns: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(NOT_MAPPED, "— not in the file —"), *((c, c) for c in columns)]
        for target in parsing.TARGET_FIELDS:
            self.fields[f"map_{target}"] = forms.ChoiceField(
                label=target,
                choices=choices,
                required=False,
                help_text="required" if target in parsing.REQUIRED_TARGETS else "",
            )
        for target in parsing.DEFAULTABLE:
            self.fields[f"default_{target}"] = forms.CharField(
                label=f"{target} when the file has none", required=False, max_length=200
            )

    def mapping(self) -> dict[str, str]:
        return {t: self.cleaned_data.get(f"map_{t}") or "" for t in parsing.TARGET_FIELDS}

    def defaults(self) -> dict[str, str]:
        return {t: self.cleaned_data.get(f"default_{t}") or "" for t in parsing.DEFAULTABLE}


class ItemImportAdmin(ProjectScopedAdminMixin, admin.ModelAdmin):
    view_capability = Capability.ADMINISTER
    change_capability = None  # an import changes only through its services and job
    list_display = [
        "original_name",
        "project",
        "status",
        "rows",
        "created_count",
        "existing_count",
        "error_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "project"]
    list_select_related = ["project", "created_by"]
    show_full_result_count = False

    class Media:
        js = ["reviews/imports.js"]

    @admin.display(description="rows read")
    def rows(self, item_import: ItemImport) -> str:
        total = "?" if item_import.total_rows is None else item_import.total_rows
        return f"{item_import.processed_rows} / {total}"

    def has_add_permission(self, request):
        return request.user.has_perm("reviews.add_itemimport") and may_anywhere(
            request.user, Capability.ADMINISTER
        )

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/map/", view(self.map_view), name="reviews_itemimport_map"),
            path(
                "<int:pk>/progress/", view(self.progress_view), name="reviews_itemimport_progress"
            ),
            path("<int:pk>/errors.csv", view(self.errors_view), name="reviews_itemimport_errors"),
            *super().get_urls(),
        ]

    # --- pages -------------------------------------------------------------------

    def _own_import(self, request, pk: int) -> ItemImport:
        """The import, if the user administers its project; 404 otherwise (nothing shown)."""
        item_import = self.get_queryset(request).filter(pk=pk).select_related("project").first()
        if item_import is None or not may(
            request.user, Capability.ADMINISTER, item_import.project_id
        ):
            raise Http404("No such import.")
        return item_import

    def _context(self, request, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        status = 200
        if request.method == "POST":
            form = UploadForm(request.POST, request.FILES, user=request.user)
            if form.is_valid():
                try:
                    item_import = import_upload(
                        project=form.cleaned_data["project"],
                        user=request.user,
                        upload=form.cleaned_data["file"],
                    )
                except DomainError as exc:
                    for name, errors in (exc.detail or {"file": [exc.message]}).items():
                        for error in errors:
                            form.add_error(name if name in form.fields else None, error)
                else:
                    return redirect(reverse("admin:reviews_itemimport_map", args=[item_import.pk]))
            status = 400
        else:
            form = UploadForm(user=request.user)
        return TemplateResponse(
            request,
            "admin/reviews/itemimport/upload.html",
            self._context(request, title="Import items from a file", form=form),
            status=status,
        )

    def map_view(self, request, pk: int):
        item_import = self._own_import(request, pk)
        if request.method not in ("GET", "POST"):
            return HttpResponse(status=405)
        if item_import.status != ImportStatus.DRAFT:
            return redirect(reverse("admin:reviews_itemimport_change", args=[item_import.pk]))
        initial_preview = import_preview(item_import=item_import)
        columns = initial_preview.columns
        status = 200
        if request.method == "POST":
            form = MappingForm(request.POST, columns=columns)
            if form.is_valid():
                if "confirm" in request.POST:
                    try:
                        import_confirm(
                            item_import=item_import,
                            mapping=form.mapping(),
                            defaults=form.defaults(),
                            user=request.user,
                        )
                    except DomainError as exc:
                        for name, errors in (exc.detail or {}).items():
                            field = f"map_{name}"
                            for error in errors:
                                form.add_error(field if field in form.fields else None, error)
                        if not exc.detail:
                            form.add_error(None, exc.message)
                    else:
                        messages.success(request, "Import queued; its progress shows below.")
                        return redirect(
                            reverse("admin:reviews_itemimport_change", args=[item_import.pk])
                        )
                    status = 400
                shown = import_preview(
                    item_import=item_import, mapping=_mapped(form), defaults=form.defaults()
                )
            else:
                status = 400
                shown = initial_preview
        else:
            initial = {f"map_{t}": c for t, c in item_import.mapping.items()}
            form = MappingForm(initial=initial, columns=columns)
            shown = initial_preview
        return TemplateResponse(
            request,
            "admin/reviews/itemimport/map.html",
            self._context(
                request,
                title=f"Map the columns of {item_import.original_name}",
                item_import=item_import,
                form=form,
                preview=shown,
                targets=parsing.TARGET_FIELDS,
            ),
            status=status,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not (object_id.isascii() and object_id.isdigit()):
            raise Http404("No such import.")
        item_import = self._own_import(request, int(object_id))
        if request.method != "GET":
            raise PermissionDenied
        if item_import.status == ImportStatus.DRAFT:
            return redirect(reverse("admin:reviews_itemimport_map", args=[item_import.pk]))
        return TemplateResponse(
            request,
            "admin/reviews/itemimport/detail.html",
            self._context(
                request,
                title=f"Import of {item_import.original_name}",
                item_import=item_import,
                progress=import_progress(item_import),
                errors=list(item_import.errors.all()[:50]),
                media=self.media,
            ),
        )

    @staticmethod
    def _require_get(request):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied

    def progress_view(self, request, pk: int):
        self._require_get(request)
        return JsonResponse(import_progress(self._own_import(request, pk)))

    def errors_view(self, request, pk: int):
        self._require_get(request)
        item_import = self._own_import(request, pk)
        rows = item_import.errors.values_list("row", "field", "message").iterator(chunk_size=2000)
        response = StreamingHttpResponse(
            error_report_csv(rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="import-{pk}-errors.csv"'
        return response


def _mapped(form: MappingForm) -> dict[str, str]:
    return {target: column for target, column in form.mapping().items() if column}


class _Echo:
    def write(self, value: str) -> str:
        return value


def error_report_csv(rows):
    """The error report: row, field, message; cells a spreadsheet would evaluate are quoted."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(["row", "field", "message"])
    for row in rows:
        yield writer.writerow([neutralise_csv_cell(value) for value in row])
