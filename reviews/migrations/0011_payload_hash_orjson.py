"""Recompute payload hashes with the orjson canonical form ingest uses from now on.

The two forms differ only for floats with a small exponent (``1e-07`` against
``1e-7``); items holding such a value would otherwise answer an identical
resubmit with 409. The canonical forms are frozen here, as they were.
"""

import hashlib
import json

import orjson
from django.db import migrations

FIELDS = (
    "external_id",
    "prompt",
    "messages",
    "output",
    "model_name",
    "model_version",
    "confidence",
    "context",
    "metadata",
)


def _orjson_form(payload):
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _json_form(payload)


def _json_form(payload):
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _rehash(apps, canonical):
    ReviewItem = apps.get_model("reviews", "ReviewItem")
    changed = []
    for item in ReviewItem.objects.only("pk", "payload_hash", *FIELDS).iterator(chunk_size=2000):
        payload = {name: getattr(item, name) for name in FIELDS}
        digest = hashlib.sha256(canonical(payload)).hexdigest()
        if digest != item.payload_hash:
            item.payload_hash = digest
            changed.append(item)
        if len(changed) >= 1000:
            ReviewItem.objects.bulk_update(changed, ["payload_hash"])
            changed.clear()
    ReviewItem.objects.bulk_update(changed, ["payload_hash"])


def forwards(apps, schema_editor):
    _rehash(apps, _orjson_form)


def backwards(apps, schema_editor):
    _rehash(apps, _json_form)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0010_item_history_without_submitted_content"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
