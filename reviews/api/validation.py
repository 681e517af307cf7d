"""Fast validation of submitted items.

Batches of 1,000 items must be validated in milliseconds, which DRF's nested
serializers cannot do (~250 µs per item). This validator enforces exactly the
shape documented by ``ItemInputSerializer`` (the OpenAPI schema) and answers
with DRF's messages, per field; a parity test keeps the two in step.
``ItemSubmissionSerializer`` is what the items endpoint parses a request with.
"""

import re
from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import empty

from reviews import transcripts
from reviews.api.candidates import (
    BLANK,
    NOT_STRING,
    NULL,
    REQUIRED,
    comparison_errors,
    comparison_form,
)
from reviews.api.candidates import confidence_value as _confidence
from reviews.api.candidates import string_error as _string_error
from reviews.api.serializers import ItemBatchSerializer
from reviews.jsontext import json_value_error

__all__ = ["BLANK", "NOT_STRING", "NULL", "REQUIRED", "ItemSubmissionSerializer", "validate_item"]

STRING_FIELDS = {
    # name: (required, allow_blank, max_length or None = the text limit)
    "external_id": (True, False, 255),
    "prompt": (True, False, None),
    "output": (True, True, None),
    "model_name": (True, False, 200),
    "model_version": (True, False, 200),
}
CONTEXT_KEYS = {"text": None, "source": 2000, "title": 500, "id": 255}
# DRF's SlugField pattern, anchored at the true end of the string.
SLUG = re.compile(r"[-a-zA-Z0-9_]+")


def _context(value: Any, text_limit: int) -> tuple[list | None, Any]:
    if not isinstance(value, list):
        return None, [f'Expected a list of items but got type "{type(value).__name__}".']
    documents, errors = [], {}
    for index, document in enumerate(value):
        if isinstance(document, str):
            document = {"text": document}
        if not isinstance(document, dict):
            errors[index] = {"non_field_errors": ["Expected a string or an object with text."]}
            continue
        problems, clean = {}, {}
        for key, limit in CONTEXT_KEYS.items():
            if key not in document:
                if key == "text":
                    problems[key] = [REQUIRED]
                continue
            error = _string_error(document[key], allow_blank=True, limit=limit or text_limit)
            if error:
                problems[key] = [error]
            else:
                clean[key] = document[key]
        if problems:
            errors[index] = problems
        else:
            documents.append(clean)
    if errors:
        return None, errors
    return documents, None


def validate_item(raw: Any) -> tuple[dict | None, dict]:
    """(clean payload, {}) for a valid item, (None, {field: [messages]}) otherwise."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    # Read once an item (settings are looked up through a lazy object).
    text_limit, depth = settings.HITL_MAX_TEXT_CHARS, settings.HITL_MAX_JSON_DEPTH
    limits = transcripts.Limits(text_chars=text_limit, json_depth=depth)
    errors: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    compared = comparison_form(raw)
    if compared:
        # Candidates instead of one output: reviews.api.candidates.
        whole = "prompt" not in raw
        conversation, problems = comparison_errors(raw, limits=limits)
    else:
        # The conversation (messages, tools; a transcript's prompt and output): reviews.transcripts.
        whole = transcripts.transcript_form(raw)
        conversation, problems = transcripts.conversation_clean(raw, limits=limits)
    clean.update(conversation)
    errors.update(problems)
    for name, (required, allow_blank, limit) in STRING_FIELDS.items():
        if whole and name in transcripts.DERIVED_FIELDS:
            continue
        if compared and (name in errors or name in ("output", "model_name", "model_version")):
            continue
        if name not in raw:
            if required:
                errors[name] = [REQUIRED]
            continue
        value = raw[name]
        error = (
            NULL
            if value is None
            else _string_error(value, allow_blank=allow_blank, limit=limit or text_limit)
        )
        if error:
            errors[name] = [error]
        else:
            clean[name] = value

    project = raw.get("project")
    if project is not None:
        if not isinstance(project, str) or not SLUG.fullmatch(project):
            errors["project"] = ['Enter a valid "slug".']
        else:
            clean["project"] = project

    if "confidence" in raw and not compared:
        value, error = _confidence(raw["confidence"])
        if error:
            errors["confidence"] = [error]
        else:
            clean["confidence"] = value

    if "context" in raw:
        value, error = _context(raw["context"], text_limit)
        if error:
            errors["context"] = error
        else:
            clean["context"] = value
    else:
        clean["context"] = []

    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        errors["metadata"] = [
            f'Expected a dictionary of items but got type "{type(metadata).__name__}".'
        ]
    elif error := json_value_error(metadata, max_depth=depth):
        errors["metadata"] = [error]
    else:
        clean["metadata"] = metadata

    if errors:
        return None, errors
    return clean, {}


class ItemSubmissionSerializer(serializers.BaseSerializer):
    """A submission to the items endpoint: one item object, or ``{"items": [...]}``.

    Every item goes through ``validate_item``. Refused, the answer is that
    item's messages per field, or for a batch the messages of each refused item
    under ``items`` by position. Accepted, ``validated_data`` holds
    ``payloads`` (the clean items, without ``project``), ``projects`` (the slug
    each item named, None where it named none) and ``batch``.
    """

    def run_validation(self, data=empty):
        # Not DRF's empty-value handling: null, lists and scalars all get the
        # one "send an object" answer below.
        return self.to_internal_value(data)

    def to_internal_value(self, data) -> dict:
        if isinstance(data, dict) and "items" in data:
            envelope = ItemBatchSerializer(data=data)
            envelope.is_valid(raise_exception=True)
            raw_items, batch = envelope.validated_data["items"], True
            # Read per request, as the X-HITL-Max-Batch header that clients chunk by is.
            if len(raw_items) > settings.HITL_MAX_BATCH:
                limit = settings.HITL_MAX_BATCH
                raise serializers.ValidationError(
                    {"items": [f"Ensure this field has no more than {limit} elements."]}
                )
        elif isinstance(data, dict):
            raw_items, batch = [data], False
        else:
            raise serializers.ValidationError(
                {"non_field_errors": ['Send one item object or {"items": [...]}.']}
            )
        payloads, projects, errors = [], [], {}
        for index, raw in enumerate(raw_items):
            clean, problems = validate_item(raw)
            if problems:
                errors[str(index)] = problems
                continue
            projects.append(clean.pop("project", None))
            payloads.append(clean)
        if errors:
            raise serializers.ValidationError({"items": errors} if batch else errors["0"])
        return {"payloads": payloads, "projects": projects, "batch": batch}
