"""The export-format registry: a format is one spec, and everything else reads it.

A toy format registered here (and only for the test that asks for it) flows
through the API, the build, the admin form, the downloads and the command
with nothing else changed; and every registered format's spec is complete.
"""

import dataclasses
import io
import json

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.db.models import QuerySet

from datasets import formats
from datasets.formats import ExportFormatSpec
from datasets.models import DatasetExport, ExportFormat, ExportStatus
from datasets.selectors import item_rows
from datasets.services import export_build, export_create
from reviews.models import ItemKind, ItemStatus
from reviews.models.items import FINAL_STATUSES
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import assignment_claim_next
from tests.datasets.factories import reviewed
from tests.factories import comparison_payload, ingest

API = "/api/v1/exports/"
ADMIN = "/admin/datasets/datasetexport/"


def _toy_encoder(chunk):
    return lambda row: f"{row[0]}\t{row[1]}\n".encode()


TOY = ExportFormatSpec(
    key="toy_tsv",
    label="Toy TSV (item id and prompt)",
    statuses=frozenset({ItemStatus.APPROVED, ItemStatus.CORRECTED}),
    default_statuses=(ItemStatus.APPROVED,),
    extension="tsv",
    content_type="text/tab-separated-values",
    rows=lambda export: item_rows(export, ("id", "prompt")),
    encoder=_toy_encoder,
    header=b"item_id\tprompt\n",
)


@pytest.fixture
def toy_format():
    formats.register(TOY)
    yield TOY
    formats.unregister(TOY.key)


@pytest.fixture
def approved(project):
    return [reviewed(project, prompt=f"Question {n}?") for n in range(3)]


def toy_file(items) -> bytes:
    return b"item_id\tprompt\n" + b"".join(f"{i.pk}\t{i.prompt}\n".encode() for i in items)


def test_the_api_accepts_a_registered_format_and_streams_its_file(
    client_api, approved, toy_format, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_api.post(
            API, data=json.dumps({"format": "toy_tsv"}), content_type="application/json"
        )
    assert response.status_code == 202, response.content
    detail = client_api.get(f"{API}{response.json()['id']}/").json()
    assert detail["status"] == "succeeded"
    assert detail["format"] == "toy_tsv"
    assert detail["filters"]["statuses"] == ["approved"]
    assert detail["manifest"]["format"] == "toy_tsv"
    download = client_api.get(f"{API}{detail['id']}/download/")
    assert download.status_code == 200
    assert download["Content-Type"] == "text/tab-separated-values"
    assert b"".join(download.streaming_content) == toy_file(approved)


def test_the_build_writes_a_registered_formats_file(project, approved, toy_format, export_dir):
    export = export_create(format="toy_tsv", projects=[project], filters={}, enqueue=False)
    export = export_build(export_id=export.pk)
    assert export.status == ExportStatus.SUCCEEDED
    name = export.files["train"]["name"]
    assert name == f"export-{export.pk}-toy_tsv-train.tsv"
    assert (export_dir / name).read_bytes() == toy_file(approved)
    assert export.row_count == 3 and export.item_count == 3
    assert str(export) == f"Export {export.pk} (Toy TSV (item id and prompt))"
    with pytest.raises(ValidationError) as refused:
        export_create(format="toy_tsv", projects=[project], filters={"statuses": ["rejected"]})
    assert "statuses" in refused.value.message_dict


def test_the_admin_offers_a_registered_format_and_downloads_it_with_its_content_type(
    client, admin_user, project, approved, toy_format, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    page = client.get(f"{ADMIN}add/")
    assert ("toy_tsv", "Toy TSV (item id and prompt)") in [
        (value, label) for value, label in page.context["adminform"].form.fields["format"].choices
    ]
    assert b'<option value="toy_tsv">Toy TSV (item id and prompt)</option>' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            f"{ADMIN}add/",
            {
                "name": "",
                "format": "toy_tsv",
                "projects": [project.pk],
                "seed": "0",
                "validation_ratio": "0",
                "deduplicate": "on",
                "decided_after_0": "",
                "decided_after_1": "",
                "model_names": "",
                "model_versions": "",
                "min_severity": "",
                "reason_codes": "",
            },
        )
    assert created.status_code == 302, created.context["adminform"].form.errors
    export = DatasetExport.objects.get()
    assert export.format == "toy_tsv" and export.status == ExportStatus.SUCCEEDED
    download = client.get(f"{ADMIN}{export.pk}/download/train/")
    assert download["Content-Type"] == "text/tab-separated-values"
    assert b"".join(download.streaming_content) == toy_file(approved)
    listing = client.get(ADMIN).content.decode()
    assert "Toy TSV (item id and prompt)" in listing  # the format column and its filter


def test_the_command_accepts_a_registered_format(project, approved, toy_format):
    out = io.StringIO()
    call_command(
        "export_dataset", "--format=toy_tsv", "--project=clinical", stdout=out, stderr=io.StringIO()
    )
    assert "3 rows from 3 items" in out.getvalue()


def test_an_unregistered_format_is_gone_everywhere(client_api, project):
    assert "toy_tsv" not in dict(formats.choices())
    response = client_api.post(
        API, data=json.dumps({"format": "toy_tsv"}), content_type="application/json"
    )
    assert response.status_code == 400 and "format" in response.json()
    with pytest.raises(formats.UnknownFormat):
        formats.get("toy_tsv")


def test_a_key_registers_once_and_a_bad_spec_is_refused(toy_format):
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        formats.register(TOY)
    with pytest.raises(ImproperlyConfigured, match="key must match"):
        dataclasses.replace(TOY, key="Toy TSV")
    with pytest.raises(ImproperlyConfigured, match="default_statuses"):
        dataclasses.replace(TOY, default_statuses=(ItemStatus.REJECTED,))
    with pytest.raises(ImproperlyConfigured, match="extension"):
        dataclasses.replace(TOY, extension=".tsv")
    with pytest.raises(ImproperlyConfigured, match="item_kinds"):
        dataclasses.replace(TOY, item_kinds=frozenset({"bundle"}))
    with pytest.raises(ImproperlyConfigured, match="item_kinds"):
        dataclasses.replace(TOY, item_kinds=frozenset())


def test_every_format_module_registers_one_format(monkeypatch):
    # A caller that imports one format module before the others registers it
    # first; the order of specs() is still FORMAT_MODULES'.
    formats.autodiscover()
    monkeypatch.setattr(formats, "_registry", dict(reversed(formats._registry.items())))
    keys = [spec.key for spec in formats.specs()]
    assert len(keys) == len(formats.FORMAT_MODULES) == len(set(keys))
    for module, key in zip(formats.FORMAT_MODULES, keys, strict=True):
        assert module == f"datasets.formats.{key}"
    assert {str(key) for key in ExportFormat} == set(keys)  # the alias names only real formats


def decided_comparison(project, reviewer) -> None:
    """A comparison whose second candidate won (what the preference formats read)."""
    (item,) = ingest(project, comparison_payload(2))
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    winner = item.candidates.get(position=1)
    preference_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=PreferenceInput(preference="winner", winner_id=winner.pk),
    )


@pytest.mark.parametrize("key", [spec.key for spec in formats.specs()])
def test_every_registered_format_is_complete(key, project, reviewer, export_dir):
    spec = formats.get(key)
    field = DatasetExport._meta.get_field("format")
    assert len(spec.key) <= field.max_length
    assert (spec.key, spec.label) in list(field.choices)
    assert spec.label and spec.extension.isalnum()
    assert spec.statuses and spec.statuses <= FINAL_STATUSES
    assert set(spec.default_statuses) <= spec.statuses
    assert "/" in spec.media_type
    assert all(callable(f) for f in (spec.rows, spec.encoder, spec.join))
    assert spec.dedupe_key is None or callable(spec.dedupe_key)
    assert isinstance(spec.header, bytes)
    assert spec.item_kinds and spec.item_kinds <= set(ItemKind.values)

    reviewed(project)
    reviewed(project, verdict="correct", corrected_output="Better.")
    reviewed(project, verdict="reject", severity="major", reason_code="unsafe")
    decided_comparison(project, reviewer)
    export = export_create(
        format=key, projects=[project], filters={"statuses": sorted(spec.statuses)}, enqueue=False
    )
    assert isinstance(spec.rows(export), QuerySet)
    export = export_build(export_id=export.pk)
    assert export.status == ExportStatus.SUCCEEDED, export.error
    assert export.row_count > 0
    path = export_dir / export.files["train"]["name"]
    assert path.suffix == f".{spec.extension}"
    assert path.read_bytes().startswith(spec.header)
    assert export.manifest["format"] == key
    assert export.content_type == spec.content_type
