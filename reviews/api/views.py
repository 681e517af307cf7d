"""Items API: submit outputs, read their review status and results."""

import builtins

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from reviews.access import Capability, projects_where
from reviews.api.auth import HoldsCapability
from reviews.api.pagination import ApiCursorPagination
from reviews.api.schema import (
    COMMON_HEADERS,
    ITEM_SUBMISSION,
    ITEM_SUBMISSION_RESULT,
    error_responses,
)
from reviews.api.serializers import (
    ItemBatchSerializer,
    ItemListFilterSerializer,
    ItemOutputSerializer,
)
from reviews.api.validation import validate_item
from reviews.errors import NotAllowed
from reviews.models import Project
from reviews.principals import ApiClient, principal_label
from reviews.selectors import items_visible_to
from reviews.services.ingest import item_ingest


class ItemCursorPagination(ApiCursorPagination):
    page_size = 100
    max_page_size = 1000


def _history_user(principal):
    return principal if isinstance(principal, AbstractBaseUser) else None


@extend_schema_view(
    list=extend_schema(
        parameters=[ItemListFilterSerializer, *COMMON_HEADERS],
        responses={200: ItemOutputSerializer, **error_responses(400, 401, 404, 429)},
        description=(
            "Items of the projects where the caller may view items, newest first "
            "(cursor pagination); an account in no project gets an empty list."
        ),
    ),
    retrieve=extend_schema(
        parameters=COMMON_HEADERS,
        responses={200: ItemOutputSerializer, **error_responses(401, 404, 429)},
        description="One item, with its checks, the judge's verdict and, once final, "
        "the released output and the decision.",
    ),
)
class ItemViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Items by role in their project (``reviews.access``).

    Reading needs ``Capability.VIEW``, which every role and the project's API key
    hold: the list holds the caller's projects' items, an item elsewhere is a 404.
    Submitting needs ``Capability.SUBMIT`` in the item's project (its API key, the
    project's admins, superusers); a caller who holds it nowhere gets 403 at the door.
    """

    serializer_class = ItemOutputSerializer
    pagination_class = ItemCursorPagination
    permission_classes = [HoldsCapability]
    capability_anywhere = {"create": Capability.SUBMIT}

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
        request=ITEM_SUBMISSION,
        parameters=COMMON_HEADERS,
        responses={
            201: OpenApiResponse(
                ITEM_SUBMISSION_RESULT,
                description="Stored (at least one new item): the item, or the batch summary.",
            ),
            200: OpenApiResponse(
                ITEM_SUBMISSION_RESULT,
                description="Identical resubmit: the stored item, or the batch summary.",
            ),
            **error_responses(400, 401, 403, 409, 413, 415, 429),
        },
        description=(
            'Submit one item (an object) or a batch (`{"items": [...]}`, up to the '
            "configured limit, stored all or nothing). Idempotent on `external_id`: an "
            "identical resubmit answers with the stored item, a different one with 409. "
            "`project` defaults to the API key's project; a project the caller cannot see "
            "is 400, one it sees but may not submit to is 403."
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
            via=principal_label(request.user),
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
        project = projects_where(principal, Capability.SUBMIT).filter(slug=slug).first()
        if project is not None:
            return project
        if projects_where(principal, Capability.VIEW).filter(slug=slug).exists():
            raise NotAllowed(f"You may not submit items to project '{slug}'.")
        raise ValidationError({"project": [f"Unknown project '{slug}'."]})
