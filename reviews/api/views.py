"""Items API: submit outputs, read their review status and results."""

import builtins

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from hitlplatform.api import IdCursorPagination
from reviews.api.serializers import (
    BatchResultSerializer,
    ItemBatchSerializer,
    ItemInputSerializer,
    ItemListFilterSerializer,
    ItemOutputSerializer,
)
from reviews.api.validation import validate_item
from reviews.models import Project
from reviews.principals import ApiClient
from reviews.selectors import items_visible_to, projects_administered_by
from reviews.services.ingest import item_ingest


class ItemCursorPagination(IdCursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _history_user(principal):
    return principal if isinstance(principal, AbstractBaseUser) else None


def _describe(principal) -> str:
    if isinstance(principal, ApiClient):
        return f"API key {principal.key.prefix}"
    return f"user {principal}"


class ItemViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ItemOutputSerializer
    pagination_class = ItemCursorPagination

    def get_queryset(self):
        return items_visible_to(self.request.user)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = ItemListFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        if "status" in params:
            queryset = queryset.filter(status=params["status"])
        if "model_version" in params:
            queryset = queryset.filter(model_version=params["model_version"])
        if "since" in params:
            queryset = queryset.filter(created_at__gte=params["since"])
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="Only items in this status."),
            OpenApiParameter("model_version", str),
            OpenApiParameter("since", str, description="ISO 8601; items created at or after."),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=inline_serializer(
            "ItemSubmission",
            {"items": ItemInputSerializer(many=True, required=False)},
        ),
        responses={201: BatchResultSerializer, 200: BatchResultSerializer},
        description=(
            'Submit one item (an object) or a batch (`{"items": [...]}`, up to the '
            "configured limit, stored all or nothing). Idempotent on `external_id`: an "
            "identical resubmit answers with the stored item, a different one with 409."
        ),
    )
    def create(self, request, *args, **kwargs):
        data = request.data
        if isinstance(data, dict) and "items" in data:
            batch = ItemBatchSerializer(data=data)
            batch.is_valid(raise_exception=True)
            raw_items, is_batch = batch.validated_data["items"], True
        elif isinstance(data, dict):
            raw_items, is_batch = [data], False
        else:
            raise ValidationError(
                {"non_field_errors": ['Send one item object or {"items": [...]}.']}
            )

        payloads, errors = [], {}
        for index, raw in enumerate(raw_items):
            clean, problems = validate_item(raw)
            if problems:
                errors[str(index)] = problems
            else:
                payloads.append(clean)
        if errors:
            raise ValidationError(errors["0"] if not is_batch else {"items": errors})
        project = self._project_for(payloads)
        outcome = item_ingest(
            project=project,
            payloads=payloads,
            user=_history_user(request.user),
            via=_describe(request.user),
        )
        code = status.HTTP_201_CREATED if outcome.created_count else status.HTTP_200_OK
        if not is_batch:
            item = self.get_queryset().get(pk=outcome.items[0].pk)
            return Response(ItemOutputSerializer(item).data, status=code)
        body = {
            "created": outcome.created_count,
            "existing": len(outcome.items) - outcome.created_count,
            "items": [
                {
                    "id": item.pk,
                    "external_id": item.external_id,
                    "status": item.status,
                    "created": created,
                }
                for item, created in zip(outcome.items, outcome.created, strict=True)
            ],
        }
        return Response(body, status=code)

    def _project_for(self, payloads: "builtins.list[dict]") -> Project:
        principal = self.request.user
        default = principal.project.slug if isinstance(principal, ApiClient) else None
        slugs = {payload.pop("project", None) or default for payload in payloads}
        if len(slugs) != 1:
            raise ValidationError({"project": ["All items of a batch must go to one project."]})
        slug = slugs.pop()
        if slug is None:
            raise ValidationError({"project": ["This field is required."]})
        project = projects_administered_by(principal).filter(slug=slug).first()
        if project is None:
            raise ValidationError({"project": [f"Unknown project '{slug}'."]})
        return project
