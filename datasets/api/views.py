"""Exports API: ask for a training dataset, follow its build, download its files."""

from django.contrib.auth.models import AbstractBaseUser
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from datasets.api.serializers import (
    DownloadQuerySerializer,
    ExportCreateSerializer,
    ExportSerializer,
)
from datasets.models import DatasetExport
from datasets.selectors import exports_visible_to
from datasets.services import export_create
from datasets.storage import export_path
from hitlplatform.api import IdCursorPagination
from reviews.errors import Conflict
from reviews.principals import ApiClient
from reviews.selectors import projects_visible_to

CONTENT_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv; charset=utf-8"}


class ExportCursorPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ExportViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ExportSerializer
    pagination_class = ExportCursorPagination

    def get_queryset(self):
        return (
            exports_visible_to(self.request.user)
            .select_related("created_by")
            .prefetch_related("projects")
        )

    @extend_schema(
        request=ExportCreateSerializer,
        responses={202: ExportSerializer},
        description=(
            "Queue a dataset export. The build runs on the `exports` queue; follow "
            "`status` and `progress` on the export, then download its files."
        ),
    )
    def create(self, request, *args, **kwargs):
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        principal = request.user
        export = export_create(
            format=params["format"],
            projects=self._projects(params.get("projects")),
            filters={name: params.get(name) for name in ExportCreateSerializer.FILTER_FIELDS},
            seed=params["seed"],
            validation_ratio=params["validation_ratio"],
            deduplicate=params["deduplicate"],
            name=params["name"],
            user=principal if isinstance(principal, AbstractBaseUser) else None,
            via=str(principal) if isinstance(principal, ApiClient) else f"user {principal}",
        )
        body = ExportSerializer(export, context=self.get_serializer_context()).data
        location = request.build_absolute_uri(f"{request.path}{export.pk}/")
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    def _projects(self, slugs: list[str] | None):
        principal = self.request.user
        if not slugs:
            if isinstance(principal, ApiClient):
                return [principal.project]
            raise ValidationError({"projects": ["This field is required."]})
        visible = {p.slug: p for p in projects_visible_to(principal).filter(slug__in=slugs)}
        unknown = [slug for slug in dict.fromkeys(slugs) if slug not in visible]
        if unknown:
            raise ValidationError({"projects": [f"Unknown project '{slug}'." for slug in unknown]})
        return list(visible.values())

    @extend_schema(
        parameters=[OpenApiParameter("split", str, enum=["train", "validation"])],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="The export is not built."),
        },
        description="Stream one split's file of a built export.",
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        export = self._built(self.get_object())
        query = DownloadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        split = query.validated_data["split"]
        meta = export.files.get(split)
        if meta is None:
            raise Http404(f"This export has no {split} split.")
        response = self._file(meta["name"], CONTENT_TYPES[export.extension])
        response["ETag"] = f'"{meta["sha256"]}"'
        return response

    @extend_schema(
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
        description="The full manifest, with every exported item and its history version.",
    )
    @action(detail=True, methods=["get"])
    def manifest(self, request, pk=None):
        export = self._built(self.get_object())
        return self._file(export.manifest_name, "application/json")

    @staticmethod
    def _built(export: DatasetExport) -> DatasetExport:
        if not export.is_built:
            raise Conflict(
                f"The export is {export.status}, not built.", detail={"status": export.status}
            )
        return export

    @staticmethod
    def _file(name: str, content_type: str) -> FileResponse:
        path = export_path(name)
        if not path.exists():
            raise Http404("The export file is missing from storage.")
        return FileResponse(
            path.open("rb"), as_attachment=True, filename=name, content_type=content_type
        )
