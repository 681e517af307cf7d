"""Driving an import through the admin pages, as a project admin does."""

import csv
import io
import json
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reviews.models import ItemImport

MAPPING = {
    "external_id": "external_id",
    "prompt": "prompt",
    "output": "output",
    "model_name": "model_name",
    "model_version": "model_version",
    "confidence": "confidence",
}


def jsonl(rows) -> bytes:
    return "".join(
        (row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows
    ).encode()


def item_row(n: int, **overrides) -> dict:
    row = {
        "external_id": f"row-{n}",
        "prompt": f"How much paracetamol may an adult take? (case {n})",
        "output": "At most 4 g a day for a healthy adult.",
        "model_name": "acme-med",
        "model_version": "v1",
        "confidence": 0.9,
    }
    row.update(overrides)
    return row


def upload(client, project, name: str, content: bytes):
    return client.post(
        reverse("admin:reviews_itemimport_add"),
        {"project": project.pk, "file": SimpleUploadedFile(name, content)},
    )


def map_fields(mapping=None, **defaults) -> dict:
    data = {f"map_{target}": column for target, column in (mapping or MAPPING).items()}
    data.update({f"default_{target}": value for target, value in defaults.items()})
    return data


def start(client, project, name: str, content: bytes, mapping=None, capture=None) -> ItemImport:
    """Upload, map and confirm; returns the import. ``capture`` runs on-commit callbacks."""
    response = upload(client, project, name, content)
    assert response.status_code == 302, response.content.decode()[:2000]
    pk = int(re.search(r"/(\d+)/map/", response["Location"]).group(1))
    data = {**map_fields(mapping), "confirm": "1"}
    if capture is not None:
        with capture(execute=True):
            response = client.post(reverse("admin:reviews_itemimport_map", args=[pk]), data)
    else:
        response = client.post(reverse("admin:reviews_itemimport_map", args=[pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return ItemImport.objects.get(pk=pk)


def error_report(client, item_import) -> list[list[str]]:
    response = client.get(reverse("admin:reviews_itemimport_errors", args=[item_import.pk]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))
