"""Items API: submit outputs, read their review status and results."""

import builtins

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from reviews.access import Capability, may, projects_where
from reviews.api.auth import HoldsCapability
from reviews.api.pagination import ApiCursorPagination
from reviews.api.schema import (
    ITEM_HEADERS,
    ITEM_SUBMISSION,
    ITEM_SUBMISSION_RESULT,
    MAX_BATCH_HEADER,
    error_responses,
)
from reviews.api.serializers import (
    BatchResultSerializer,
    ItemDetailSerializer,
    ItemListFilterSerializer,
    ItemOutputSerializer,
)
from reviews.api.validation import ItemSubmissionSerializer
from reviews.errors import NotAllowed
from reviews.models import Project
from reviews.principals import ApiClient, principal_label
from reviews.selectors import item_as_inserted, items_visible_to, items_with_audits
from reviews.services.ingest import item_ingest


class ItemCursorPagination(ApiCursorPagination):
    page_size = 100
    max_page_size = 1000


def _history_user(principal):
    return principal if isinstance(principal, AbstractBaseUser) else None


@extend_schema_view(
    list=extend_schema(
        parameters=[ItemListFilterSerializer, *ITEM_HEADERS],
        responses={200: ItemOutputSerializer, **error_responses(400, 401, 404, 429)},
        description=(
            "Items of the projects where the caller may view items, newest first "
            "(cursor pagination); an account in no project gets an empty list."
        ),
    ),
    retrieve=extend_schema(
        parameters=ITEM_HEADERS,
        responses={200: ItemDetailSerializer, **error_responses(401, 404, 429)},
        description="One item: what was submitted (prompt, messages, tools, output, context, "
        "metadata), its checks, the judge's verdict and, once final, the released output and "
        "the decision.",
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

    def get_serializer_class(self):
        return ItemDetailSerializer if self.action == "retrieve" else ItemOutputSerializer

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = ItemListFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        if "external_id" in params:
            queryset = queryset.filter(external_id__in=params["external_id"])
        if "status" in params:
            queryset = queryset.filter(status=params["status"])
        if "model_version" in params:
            queryset = queryset.filter(model_version=params["model_version"])
        if "since" in params:
            queryset = queryset.filter(created_at__gte=params["since"])
        return queryset

    @extend_schema(
        request=ITEM_SUBMISSION,
        parameters=ITEM_HEADERS,
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
        submission = ItemSubmissionSerializer(data=request.data)
        submission.is_valid(raise_exception=True)
        parsed = submission.validated_data
        outcome = item_ingest(
            project=self._project_for(parsed["projects"]),
            payloads=parsed["payloads"],
            user=_history_user(request.user),
            via=principal_label(request.user),
        )
        code = status.HTTP_201_CREATED if outcome.created_count else status.HTTP_200_OK
        if parsed["batch"]:
            return Response(BatchResultSerializer(outcome).data, status=code)
        if outcome.created[0]:
            # Answered from what was just inserted: no read-back.
            item = item_as_inserted(outcome.items[0], check_results=outcome.check_results(0))
        else:
            item = self.get_queryset().get(pk=outcome.items[0].pk)
        return Response(ItemOutputSerializer(item).data, status=code)

    def paginate_queryset(self, queryset):
        return items_with_audits(super().paginate_queryset(queryset))

    def finalize_response(self, request, response, *args, **kwargs):
        # Clients chunk batches by this; sent on every answer, errors included.
        response[MAX_BATCH_HEADER] = str(settings.HITL_MAX_BATCH)
        return super().finalize_response(request, response, *args, **kwargs)

    def _project_for(self, requested: "builtins.list[str | None]") -> Project:
        """The one project a submission goes to, from the slug each item named."""
        principal = self.request.user
        default = principal.project.slug if isinstance(principal, ApiClient) else None
        slugs = {slug or default for slug in requested}
        if len(slugs) != 1:
            raise ValidationError({"project": ["All items of a batch must go to one project."]})
        slug = slugs.pop()
        if slug is None:
            raise ValidationError({"project": ["This field is required."]})
        if isinstance(principal, ApiClient) and slug == principal.project.slug:
            # The key's project came with the key (one query for both).
            project = (
                principal.project if may(principal, Capability.SUBMIT, principal.project) else None
            )
        else:
            project = projects_where(principal, Capability.SUBMIT).filter(slug=slug).first()
        if project is not None:
            return project
        if projects_where(principal, Capability.VIEW).filter(slug=slug).exists():
            raise NotAllowed(f"You may not submit items to project '{slug}'.")
        raise ValidationError({"project": [f"Unknown project '{slug}'."]})
