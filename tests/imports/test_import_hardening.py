"""Strange files from the attacker's side: refused or reported per row, never a 500."""

import json

import pytest
from django.urls import reverse

from reviews.imports import parsing
from reviews.models import ImportStatus, ItemImport, ReviewItem
from tests.imports.helpers import MAPPING, error_report, item_row, jsonl, start, upload

pytestmark = pytest.mark.usefixtures("import_dir", "inline_jobs")


def test_deep_nesting_long_lines_and_nul_keys_are_row_errors(
    admin_client, project, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(parsing, "_line_limit", lambda: 4000)
    rows = [item_row(n) for n in range(1, 6)]
    rows[1] = '{"external_id": "deep", "prompt": ' + "[" * 1900 + "]" * 1900 + "}"
    rows[2] = json.dumps({**item_row(3), "prompt": "x" * 10_000})  # longer than the limit
    rows[3] = json.dumps({**item_row(4), "bad\u0000key": "v"})
    item_import = start(
        admin_client,
        project,
        "strange.jsonl",
        jsonl(rows),
        capture=django_capture_on_commit_callbacks,
    )
    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.DONE
    assert (item_import.created_count, item_import.error_count) == (2, 3)
    assert set(ReviewItem.objects.values_list("external_id", flat=True)) == {"row-1", "row-5"}
    report = error_report(admin_client, item_import)[1:]
    messages = {row: message for row, _field, message in report}
    assert "nested too deeply" in messages["2"]
    assert "longer than 4000 bytes" in messages["3"]
    assert "NUL" in messages["4"]


def test_a_csv_with_too_many_columns_is_refused_at_upload(admin_client, project):
    header = ",".join([*MAPPING, *(f"c{n}" for n in range(400))])
    response = upload(admin_client, project, "wide.csv", (header + "\r\n").encode())
    assert response.status_code == 400
    assert b"at most 200" in response.content
    assert not ItemImport.objects.exists()


def test_a_non_ascii_digit_in_the_import_url_is_a_404(admin_client):
    url = reverse("admin:reviews_itemimport_change", args=["1"]).replace("/1/", "/%C2%B2/")
    assert admin_client.get(url).status_code == 404
