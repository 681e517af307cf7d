"""The API's OpenAPI contract where drf-spectacular cannot infer it.

Imported by the API views, which registers the extensions below: the API-key
security schemes, the error body of every 4xx answer, and the shapes of the
items contract that custom serializer fields and method fields hide from the
generator. ``error_responses`` gives each operation the answers it can give.
"""

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from reviews.api.serializers import (
    AuditSerializer,
    BatchResultSerializer,
    DecisionSerializer,
    ItemInputSerializer,
    ItemOutputSerializer,
)
from reviews.checks import BUILTIN_CHECK_KINDS
from reviews.models import MAX_CANDIDATES, MIN_CANDIDATES, CheckKind, CheckSeverity


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """``reviews.api.auth.ApiKeyAuthentication``: two headers, either one authenticates."""

    target_class = "reviews.api.auth.ApiKeyAuthentication"
    name = ["apiKeyAuth", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        # Alternatives (a list of requirements), not both headers at once.
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": (
                    "`Authorization: Api-Key <key>` (`Bearer <key>` is accepted too). A key "
                    "acts for its one project: it reads and submits items there, reads its "
                    "agreement figures and builds and downloads its exports."
                ),
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "`X-API-Key: <key>`; read before the Authorization header.",
            },
        ]


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer.

    ``detail`` says what went wrong; domain errors (409, 413, refusals by role)
    add a stable ``code``. Invalid input (400) names each bad field instead,
    mapping it to its messages, or (for a list of objects) to an object keyed
    by the index of the bad element.
    """

    detail = serializers.CharField(required=False, help_text="What went wrong, for people.")
    code = serializers.CharField(
        required=False,
        help_text="A stable code on domain errors: conflict, not_allowed, too_large, invalid.",
    )


class ErrorSchema(OpenApiSerializerExtension):
    target_class = ErrorSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = {
            "description": "Field errors: a list of messages, or an object keyed by list index."
        }
        return schema


ERROR_DESCRIPTIONS = {
    400: "Invalid input: `detail`, or each invalid field with its messages.",
    401: "No credentials, or an API key that is unknown or revoked.",
    403: (
        "The caller's roles allow no such action in any project, or in one of the named "
        "projects; a session request without its CSRF token."
    ),
    404: "No such object among those the caller may see (or an invalid page cursor).",
    409: "Conflicts with the stored state; `code` is `conflict`.",
    413: "The request body is larger than the configured limit; `code` is `too_large`.",
    415: "The request body is not `application/json`.",
    429: "Too many requests for this API key or user; retry after `Retry-After` seconds.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers ``codes`` of one operation, each with the error body."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds until the throttle lets this caller through again.",
)
WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[401],
    description="`Api-Key`: the scheme to authenticate with.",
)
# Header parameters of the answers every authenticated operation can give.
COMMON_HEADERS = [RETRY_AFTER, WWW_AUTHENTICATE]
MAX_BATCH_HEADER = "X-HITL-Max-Batch"
# The items operations also say how many items a batch may hold.
ITEM_HEADERS = [
    *COMMON_HEADERS,
    OpenApiParameter(
        MAX_BATCH_HEADER,
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=True,
        description="The most items one batch may hold (HITL_MAX_BATCH), on every answer.",
    ),
]


def optional_query_values_may_be_empty(result, generator, request, public):
    """Postprocessing hook: an optional query parameter sent empty counts as absent.

    DRF reads ``?status=`` as no status filter (and the cursor pagination an
    empty ``cursor`` as the first page), so the schema allows the empty value.
    """
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result


# --- The items contract ---------------------------------------------------------


class ItemBatchInputSerializer(serializers.Serializer):
    """A batch: up to the configured limit of items, stored all or nothing."""

    items = serializers.ListField(
        child=ItemInputSerializer(),
        min_length=1,
        max_length=settings.HITL_MAX_BATCH,
        help_text=(
            f"Up to {settings.HITL_MAX_BATCH} items for one project, stored all or nothing; "
            "one external_id twice with different content is refused."
        ),
    )


ITEM_SUBMISSION = PolymorphicProxySerializer(
    component_name="ItemSubmission",
    serializers=[ItemInputSerializer, ItemBatchInputSerializer],
    resource_type_field_name=None,
    many=False,
)
ITEM_SUBMISSION_RESULT = PolymorphicProxySerializer(
    component_name="ItemSubmissionResult",
    serializers=[ItemOutputSerializer, BatchResultSerializer],
    resource_type_field_name=None,
    many=False,
)


class ItemInputSchema(OpenApiSerializerExtension):
    """A submitted item: ``project`` may be null, which means absent."""

    target_class = "reviews.api.serializers.ItemInputSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        properties = schema["properties"]
        properties["project"].update(
            nullable=True,
            description="Project slug; absent or null: the API key's project.",
        )
        properties["metadata"]["description"] = (
            f"Any JSON object, nested at most {settings.HITL_MAX_JSON_DEPTH} levels; "
            "its text (keys included) without NUL characters or lone surrogates."
        )
        properties["candidates"].update(minItems=MIN_CANDIDATES, maxItems=MAX_CANDIDATES)
        return schema


class ConfidenceSchema(OpenApiSerializerFieldExtension):
    target_class = "reviews.api.serializers.ConfidenceField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "number", "format": "double", "minimum": 0, "maximum": 1}


def _non_blank(schema: dict) -> dict:
    # DRF refuses a string of whitespace alone where blank is not allowed.
    schema.setdefault("pattern", r"\S")
    return schema


class CharSchema(OpenApiSerializerFieldExtension):
    """A trimmed CharField that may not be blank needs a non-whitespace character."""

    target_class = serializers.CharField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request" and not self.target.allow_blank and self.target.trim_whitespace:
            _non_blank(schema)
        return schema


class StrictCharSchema(OpenApiSerializerFieldExtension):
    """Not trimmed, yet one that may not be blank must hold a non-whitespace character."""

    target_class = "reviews.api.serializers.StrictCharField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request" and not self.target.allow_blank:
            _non_blank(schema)
        return schema


class ListSchema(OpenApiSerializerFieldExtension):
    """``allow_empty=False`` is a minimum of one element."""

    target_class = serializers.ListField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if not self.target.allow_empty:
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        return schema


class ContextDocumentSchema(OpenApiSerializerExtension):
    """A retrieved document, or its text alone as a bare string."""

    target_class = "reviews.api.serializers.ContextDocumentSerializer"

    def map_serializer(self, auto_schema, direction):
        document = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        text = {
            "type": "string",
            "maxLength": settings.HITL_MAX_TEXT_CHARS,
            "description": 'Shorthand for {"text": ...}.',
        }
        return {"oneOf": [text, document]}


class ItemOutputSchema(OpenApiSerializerExtension):
    """Method fields and JSON columns of an item, typed; every field is always present."""

    target_class = "reviews.api.serializers.ItemOutputSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        properties = schema["properties"]
        decision = auto_schema.resolve_serializer(DecisionSerializer, direction).ref
        properties["decision"] = {
            "allOf": [decision],
            "nullable": True,
            "readOnly": True,
            "description": "The final decision, by people or automatic; null until final.",
        }
        audit = auto_schema.resolve_serializer(AuditSerializer, direction).ref
        properties["audit"] = {
            "allOf": [audit],
            "nullable": True,
            "readOnly": True,
            "description": "The audit of an auto-approved audit sample; null for other items.",
        }
        properties["final_output"].update(
            description="The released output once final; null before, and when rejected."
        )
        properties["review_reasons"] = {
            "type": "array",
            "items": {"type": "string"},
            "readOnly": True,
            "description": "Why this item was sent to a human.",
        }
        schema["required"] = sorted(properties)
        return schema


class ItemDetailSchema(ItemOutputSchema):
    """An item with what was submitted: its JSON columns typed too."""

    target_class = "reviews.api.serializers.ItemDetailSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        properties = schema["properties"]
        properties["context"] = {
            "type": "array",
            "readOnly": True,
            "items": {
                "type": "object",
                "properties": {
                    name: {"type": "string"} for name in ("text", "source", "title", "id")
                },
                "required": ["text"],
            },
            "description": "The retrieved documents, as submitted.",
        }
        properties["metadata"] = {
            "type": "object",
            "additionalProperties": {},
            "readOnly": True,
            "description": "The metadata, as submitted.",
        }
        return schema


class CheckResultSchema(OpenApiSerializerExtension):
    """A check's kind and severity are the rule's choices."""

    target_class = "reviews.api.serializers.CheckResultSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["properties"]["kind"]["enum"] = [*CheckKind.values, *BUILTIN_CHECK_KINDS]
        schema["properties"]["severity"]["enum"] = list(CheckSeverity.values)
        return schema


_EXPORT_FILE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "rows": {"type": "integer"},
        "bytes": {"type": "integer"},
        "sha256": {"type": "string"},
    },
    "required": ["name", "rows", "bytes", "sha256"],
}


class ExportSchema(OpenApiSerializerExtension):
    """The JSON columns of an export, typed; ``created_by`` is null for keys and commands."""

    target_class = "datasets.api.serializers.ExportSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        properties = schema["properties"]
        properties["created_by"] = {
            "type": "string",
            "nullable": True,
            "readOnly": True,
            "description": "The user who asked; null for an API key or a command.",
        }
        properties["files"].update(
            type="object",
            additionalProperties=_EXPORT_FILE,
            description="Per split (train, validation): file name, rows, bytes, sha256.",
        )
        for name in ("counts", "filters", "manifest"):
            properties[name].update(type="object", additionalProperties={})
        properties["downloads"]["additionalProperties"] = {"type": "string", "format": "uri"}
        properties["downloads"]["description"] = "Per split: the download URL, once built."
        properties["manifest_url"].update(format="uri", description="Once built.")
        return schema
