"""OTLP/HTTP traces intake: ``POST /api/v1/otlp/v1/traces``, as an OpenTelemetry collector.

An application points its standard OTLP exporter here with its project's API
key in a header. Bodies are protobuf (``application/x-protobuf``) or OTLP JSON
(``application/json``), plain or gzip; the answer is an
``ExportTraceServiceResponse`` in the request's encoding, and every error a
``google.rpc.Status`` in it too, as the OTLP specification asks.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from google.rpc.code_pb2 import Code
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from rest_framework import parsers, renderers
from rest_framework.response import Response
from rest_framework.views import APIView

from hitlplatform.metrics.instruments import otlp_spans_observe
from reviews.access import Capability, may
from reviews.errors import NotAllowed
from reviews.otlp.decoding import (
    JSON,
    PROTOBUF,
    PayloadTooLarge,
    body_inflated,
    request_decoded,
    response_encoded,
)
from reviews.otlp.services import otlp_traces_ingest
from reviews.principals import ApiClient, principal_label

# The gRPC code an OTLP client reads from an error's Status, per HTTP answer.
STATUS_CODES = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
    503: Code.UNAVAILABLE,
}
COUNT_HEADERS = {
    "created": "X-HITL-Items-Created",
    "existing": "X-HITL-Items-Existing",
    "ignored": "X-HITL-Spans-Ignored",
    "held": "X-HITL-Spans-Held",
    "rejected": "X-HITL-Spans-Rejected",
}


class _OtlpParser(parsers.BaseParser):
    """An OTLP body, bounded by ``HITL_MAX_REQUEST_BYTES`` before and after gzip."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        meta = parser_context["request"].META
        data = body_inflated(body, encoding=meta.get("HTTP_CONTENT_ENCODING", ""), limit=limit)
        return request_decoded(data, media_type=self.media_type)


class OtlpProtobufParser(_OtlpParser):
    media_type = PROTOBUF


class OtlpJsonParser(_OtlpParser):
    media_type = JSON


class _OtlpRenderer(renderers.BaseRenderer):
    """An ExportTraceServiceResponse, or an error (DRF's ``detail``) as a google.rpc.Status."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, ExportTraceServiceResponse):
            return response_encoded(data, media_type=self.media_type)
        response = (renderer_context or {}).get("response")
        code = STATUS_CODES.get(getattr(response, "status_code", 400), Code.UNKNOWN)
        status = Status(code=code, message=_message(data))
        if self.media_type == PROTOBUF:
            return status.SerializeToString()
        return renderers.JSONRenderer().render({"code": status.code, "message": status.message})


def _message(data) -> str:
    if isinstance(data, dict):
        detail = data.get("detail")
        if detail is not None:
            return str(detail)
        return "; ".join(f"{key}: {value}" for key, value in data.items())
    return str(data)


class OtlpProtobufRenderer(_OtlpRenderer):
    media_type = PROTOBUF
    format = "protobuf"
    charset = None  # binary


class OtlpJsonRenderer(_OtlpRenderer):
    media_type = JSON
    format = "json"


class OtlpTracesView(APIView):
    """Stores the LLM calls of exported traces as items of the API key's project.

    Only a project's API key may send traces (``Capability.SUBMIT`` in its
    project): people submit through the items API. The answer is in the
    encoding the request came in.
    """

    parser_classes = [OtlpProtobufParser, OtlpJsonParser]
    renderer_classes = [OtlpProtobufRenderer, OtlpJsonRenderer]

    def perform_content_negotiation(self, request, force=False):
        # OTLP answers in the request's encoding whatever Accept says.
        renderer = (
            OtlpProtobufRenderer()
            if request.content_type.startswith(PROTOBUF)
            else OtlpJsonRenderer()
        )
        return renderer, renderer.media_type

    @extend_schema(
        request={PROTOBUF: bytes, JSON: dict},
        # The answer's encoding follows the request's, so DRF's ?format= means nothing here.
        parameters=[OpenApiParameter("format", exclude=True)],
        responses={
            200: OpenApiResponse(
                description="An ExportTraceServiceResponse; spans that could not become items "
                "are counted in partial_success.rejected_spans with the reasons in "
                "partial_success.error_message."
            ),
            400: OpenApiResponse(description="A body that does not decode: nothing is stored."),
            401: OpenApiResponse(description="No valid API key."),
            403: OpenApiResponse(description="Not a project API key."),
            413: OpenApiResponse(description="A body over the limit, before or after gzip."),
            415: OpenApiResponse(description="Neither protobuf nor JSON."),
        },
        description="OTLP/HTTP trace export (protobuf or JSON, optionally gzip). LLM spans "
        "(OpenTelemetry GenAI conventions or OpenInference) become items of the API key's "
        "project; other spans are counted and ignored. Idempotent on trace and span ids.",
    )
    def post(self, request):
        principal = request.user
        if not isinstance(principal, ApiClient) or not may(
            principal, Capability.SUBMIT, principal.project
        ):
            raise NotAllowed("Traces are sent with a project's API key.")
        export = request.data
        if not isinstance(export, ExportTraceServiceRequest):
            export = ExportTraceServiceRequest()  # an empty body: an empty export
        outcome = otlp_traces_ingest(
            project=principal.project, export=export, via=principal_label(principal)
        )
        otlp_spans_observe(
            project=principal.project.slug,
            counts={
                "stored": outcome.stored,
                "held": outcome.held,
                "ignored": outcome.ignored,
                "rejected": outcome.rejected,
            },
        )
        answer = ExportTraceServiceResponse()
        if outcome.rejected:
            answer.partial_success.rejected_spans = outcome.rejected
            answer.partial_success.error_message = outcome.error_message
        headers = {name: str(getattr(outcome, key)) for key, name in COUNT_HEADERS.items()}
        return Response(answer, headers=headers)
