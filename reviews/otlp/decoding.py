"""OTLP/HTTP request bodies: protobuf or JSON, plain or gzip, into an ExportTraceServiceRequest.

The JSON encoding is protobuf's JSON mapping with OTLP's own deviations
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): trace and
span ids are hex strings, not base64, and unknown fields are ignored. Every
refusal is a ``MalformedPayload`` (400) or ``PayloadTooLarge`` (413) naming
what is wrong; nothing is stored from a request that does not decode.
"""

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from reviews.errors import DomainError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


class MalformedPayload(DomainError):
    code = "malformed"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "too_large"


def body_inflated(body: bytes, *, encoding: str, limit: int) -> bytes:
    """The request body with its Content-Encoding undone, at most ``limit`` bytes.

    gzip is inflated in one bounded step: a small body that would inflate past
    the limit (a gzip bomb) is refused without inflating more than that.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise MalformedPayload(
            f"Content-Encoding {encoding!r} is not supported: send gzip or none."
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise MalformedPayload(f"The gzip body does not inflate: {exc}.") from exc
    if inflater.unconsumed_tail:
        raise PayloadTooLarge(f"The body inflates to more than {limit} bytes.")
    if not inflater.eof:
        raise MalformedPayload("The gzip body is truncated.")
    return inflated


def request_decoded(data: bytes, *, media_type: str) -> ExportTraceServiceRequest:
    """The export request in ``data`` (``application/x-protobuf`` or ``application/json``)."""
    message = ExportTraceServiceRequest()
    if media_type == PROTOBUF:
        try:
            message.ParseFromString(data)
        except (DecodeError, RecursionError) as exc:
            raise MalformedPayload(
                f"The body is not an OTLP ExportTraceServiceRequest: {exc}"
            ) from exc
        return message
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"The body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedPayload("The body must be a JSON object (an ExportTraceServiceRequest).")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        raise MalformedPayload(f"The body is not an OTLP ExportTraceServiceRequest: {exc}") from exc
    return message


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP JSON's hex ids, rewritten in place to the base64 protobuf's JSON mapping reads."""
    for r_index, resource_spans in enumerate(_list(document, "resourceSpans")):
        for s_index, scope_spans in enumerate(_list(resource_spans, "scopeSpans")):
            for index, span in enumerate(_list(scope_spans, "spans")):
                where = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{index}]"
                _rewrite_ids(span, where)
                for l_index, link in enumerate(_list(span, "links")):
                    _rewrite_ids(link, f"{where}.links[{l_index}]")


def _list(container: Any, key: str) -> list:
    if not isinstance(container, dict):
        return []
    value = container.get(key)
    return value if isinstance(value, list) else []


def _rewrite_ids(span: Any, where: str) -> None:
    if not isinstance(span, dict):
        return
    for key, size in ID_BYTES.items():
        value = span.get(key)
        if value in (None, ""):
            continue
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else None
        except ValueError:
            raw = None
        if raw is None or len(raw) != size:
            raise MalformedPayload(f"{where}.{key} must be {size * 2} hex digits.")
        span[key] = base64.b64encode(raw).decode()


def response_encoded(response: ExportTraceServiceResponse, *, media_type: str) -> bytes:
    """The export response in the request's encoding."""
    if media_type == PROTOBUF:
        return response.SerializeToString()
    return json.dumps(json_format.MessageToDict(response)).encode()


def ids_valid(trace_id: bytes, span_id: bytes) -> bool:
    """OTLP's rule: a span's trace id is 16 bytes, its span id 8, neither all zeros."""
    return (
        len(trace_id) == 16 and len(span_id) == 8 and trace_id != bytes(16) and span_id != bytes(8)
    )
