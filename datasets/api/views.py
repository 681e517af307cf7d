"""Exports API: ask for a training dataset, follow its build, download its files."""

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from datasets import formats
from datasets.api.serializers import (
    DownloadQuerySerializer,
    ExportCreateSerializer,
    ExportSerializer,
)
from datasets.downloads import stored_file_response
from datasets.models import DatasetExport
from datasets.selectors import exports_where
from datasets.services import export_create
from reviews.access import Capability, projects_where
from reviews.api.auth import HoldsCapability
from reviews.api.pagination import ApiCursorPagination
from reviews.api.schema import COMMON_HEADERS, error_responses
from reviews.errors import Conflict, NotAllowed
from reviews.principals import ApiClient, principal_label


def _download_responses() -> dict:
    """The 200 answer in each content type the registered formats stream.

    OpenAPI gives one description per status, so it names every format's type.
    """
    keys: dict[str, list[str]] = {}
    for spec in formats.specs():
        keys.setdefault(spec.media_type, []).append(f"`{spec.key}`")
    by_type = "; ".join(f"{', '.join(names)}: {media}" for media, names in keys.items())
    return {
        (200, media): OpenApiResponse(
            OpenApiTypes.BINARY, description=f"One split's file, by format: {by_type}."
        )
        for media in keys
    }


PRESIGNED_REDIRECT = OpenApiResponse(
    description="Presigned downloads (`HITL_S3_PRESIGNED_DOWNLOADS`): `Location` is a "
    "short-lived URL of the file in object storage."
)


class ExportCursorPagination(ApiCursorPagination):
    page_size = 50
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        parameters=COMMON_HEADERS,
        responses={200: ExportSerializer, **error_responses(400, 401, 403, 404, 429)},
        description=(
            "Exports in whose every project the caller may download exports, newest first. "
            "Refused (403) to a caller who may download exports of no project."
        ),
    ),
    retrieve=extend_schema(
        parameters=COMMON_HEADERS,
        responses={200: ExportSerializer, **error_responses(401, 404, 429)},
        description="One export: its status and progress while it builds, its files, "
        "counts and manifest once built.",
    ),
)
class ExportViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Dataset exports, by role in every project an export spans (``reviews.access``).

    Reading, downloading and the manifest need ``Capability.DOWNLOAD_EXPORTS`` in
    each of the export's projects (seniors, admins, the project's API key,
    superusers); any other export is a 404, whether it exists or not. Asking for
    one needs ``Capability.BUILD_EXPORTS`` in each requested project (admins, the
    API key, superusers).
    """

    serializer_class = ExportSerializer
    pagination_class = ExportCursorPagination
    permission_classes = [HoldsCapability]
    capability_anywhere = {
        "list": Capability.DOWNLOAD_EXPORTS,
        "create": Capability.BUILD_EXPORTS,
    }

    def get_queryset(self):
        return (
            exports_where(self.request.user, Capability.DOWNLOAD_EXPORTS)
            .select_related("created_by")
            .prefetch_related("projects")
        )

    @extend_schema(
        request=ExportCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                response=[202],
                description="The new export's URL.",
            ),
            *COMMON_HEADERS,
        ],
        responses={202: ExportSerializer, **error_responses(400, 401, 403, 413, 415, 429)},
        description=(
            "Queue a dataset export. The build runs on the `exports` queue; follow "
            "`status` and `progress` on the export, then download its files. `projects` "
            "defaults to the API key's project; a project the caller cannot see is 400, "
            "one it sees but may not build exports of is 403."
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
            via=principal_label(principal),
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
        wanted = list(dict.fromkeys(slugs))
        seen = set(
            projects_where(principal, Capability.VIEW)
            .filter(slug__in=wanted)
            .values_list("slug", flat=True)
        )
        unknown = [slug for slug in wanted if slug not in seen]
        if unknown:
            raise ValidationError({"projects": [f"Unknown project '{slug}'." for slug in unknown]})
        allowed = {
            project.slug: project
            for project in projects_where(principal, Capability.BUILD_EXPORTS).filter(
                slug__in=wanted
            )
        }
        refused = [slug for slug in wanted if slug not in allowed]
        if refused:
            names = ", ".join(f"'{slug}'" for slug in refused)
            raise NotAllowed(f"You may not build exports of {names}.")
        return [allowed[slug] for slug in wanted]

    @extend_schema(
        parameters=[
            DownloadQuerySerializer,
            OpenApiParameter(
                "ETag",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                description="The file's quoted SHA-256.",
            ),
            *COMMON_HEADERS,
        ],
        responses={
            **_download_responses(),
            302: PRESIGNED_REDIRECT,
            **error_responses(400, 401, 404, 409, 429),
        },
        description=(
            "Stream one split's file of a built export, as an attachment; 404 when the "
            "export has no such split, 409 while it is not built. With presigned downloads "
            "configured (S3 storage), a 302 to a short-lived URL of the file instead."
        ),
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
        response = self._file(meta["name"], export.content_type)
        response["ETag"] = f'"{meta["sha256"]}"'
        return response

    @extend_schema(
        parameters=COMMON_HEADERS,
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The export's manifest, ending with `items`: "
                "[item id, history id, split] for every exported item.",
            ),
            302: PRESIGNED_REDIRECT,
            **error_responses(401, 404, 409, 429),
        },
        description="The full manifest, with every exported item and its history version; "
        "409 while the export is not built (302 to a presigned URL when configured).",
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
    def _file(name: str, content_type: str) -> HttpResponse:
        return stored_file_response(name, content_type=content_type)
