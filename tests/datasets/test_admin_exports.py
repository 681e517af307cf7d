import pytest
from django.contrib.auth.models import Permission

from datasets.models import DatasetExport, ExportStatus
from datasets.services import export_create, export_fail
from tests.datasets.factories import reviewed
from tests.factories import make_project

ADD_URL = "/admin/datasets/datasetexport/"


def add_form(**overrides) -> dict:
    data = {
        "name": "clinical sft",
        "format": "sft_chat",
        "projects": [],
        "seed": "5",
        "validation_ratio": "0.25",
        "deduplicate": "on",
        "decided_after_0": "",
        "decided_after_1": "",
        "model_names": "",
        "model_versions": "",
        "min_severity": "",
        "reason_codes": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def staff_exporter(django_user_model, project):
    from tests.factories import add_member

    user = django_user_model.objects.create_user("ella", password="ella-pass-1", is_staff=True)
    add_member(project, user, "admin")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="datasets",
            codename__in=[
                "add_datasetexport",
                "view_datasetexport",
                "delete_datasetexport",
                "view_datasetexportitem",
            ],
        )
    )
    return user


def test_admin_creates_export_and_shows_progress_files_and_items(
    client, admin_user, project, django_capture_on_commit_callbacks
):
    items = [reviewed(project) for _ in range(4)]
    client.force_login(admin_user)
    form_page = client.get(f"{ADD_URL}add/")
    assert form_page.status_code == 200
    assert b"Exclude audit samples" in form_page.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{ADD_URL}add/", add_form(projects=[project.pk], model_names="acme-med")
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    export = DatasetExport.objects.get()
    assert response["Location"] == f"{ADD_URL}{export.pk}/change/"
    assert export.status == ExportStatus.SUCCEEDED
    assert export.created_by == admin_user
    assert export.filters["model_names"] == ["acme-med"]
    assert export.item_count == 4

    page = client.get(response["Location"]).content.decode()
    assert '<progress max="1" value="1.0000">' in page
    assert "datasets/export_progress.js" in page
    assert export.files["train"]["sha256"] in page
    assert f"/admin/datasets/datasetexport/{export.pk}/download/train/" in page

    download = client.get(f"{ADD_URL}{export.pk}/download/train/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).count(b"\n") == export.files["train"]["rows"]

    progress = client.get(f"{ADD_URL}{export.pk}/progress/").json()
    assert progress["status"] == "succeeded" and progress["progress"] == 1.0

    entries = client.get(f"/admin/datasets/datasetexportitem/?export__id__exact={export.pk}")
    assert entries.status_code == 200
    for item in items:
        assert f"/admin/reviews/reviewitem/{item.pk}/change/" in entries.content.decode()
    by_item = client.get(f"/admin/datasets/datasetexportitem/?q={items[0].pk}")
    assert by_item.context["cl"].result_list[0].export_id == export.pk


def test_admin_form_shows_errors_per_field_and_stores_nothing(client, admin_user, project):
    client.force_login(admin_user)
    response = client.post(
        f"{ADD_URL}add/",
        add_form(
            format="dpo_pairs",
            projects=[project.pk],
            statuses=["approved"],
            validation_ratio="0.9",
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "statuses" in errors and "validation_ratio" in errors
    assert not DatasetExport.objects.exists()


def test_staff_sees_and_exports_only_member_projects(
    client, staff_exporter, project, django_capture_on_commit_callbacks
):
    other = make_project(slug="hidden")
    theirs = export_create(format="sft_chat", projects=[other], filters={}, enqueue=False)
    ours = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    client.force_login(staff_exporter)
    listing = client.get(ADD_URL)
    assert [e.pk for e in listing.context["cl"].result_list] == [ours.pk]
    assert client.get(f"{ADD_URL}{theirs.pk}/change/").status_code == 302  # not found
    assert client.get(f"{ADD_URL}{theirs.pk}/progress/").status_code == 404

    form = client.get(f"{ADD_URL}add/").context["adminform"].form
    assert list(form.fields["projects"].queryset) == [project]
    refused = client.post(f"{ADD_URL}add/", add_form(projects=[other.pk]))
    assert "projects" in refused.context["adminform"].form.errors
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(f"{ADD_URL}add/", add_form(projects=[project.pk]))
    assert created.status_code == 302
    assert DatasetExport.objects.latest("id").created_by == staff_exporter


def test_failed_export_shows_error_and_can_be_retried(
    client, admin_user, project, django_capture_on_commit_callbacks
):
    reviewed(project)
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    export_fail(export_id=export.pk, error="OSError: disk full <script>x</script>")
    client.force_login(admin_user)
    page = client.get(f"{ADD_URL}{export.pk}/change/").content.decode()
    assert "OSError: disk full &lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>x</script>" not in page
    assert "Retry build" in page
    assert client.get(f"{ADD_URL}{export.pk}/retry/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{ADD_URL}{export.pk}/retry/")
    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED and export.row_count == 1


def test_deleting_an_export_removes_its_files(
    client, admin_user, project, export_dir, django_capture_on_commit_callbacks
):
    reviewed(project)
    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(format="sft_chat", projects=[project], filters={})
    assert len(list(export_dir.iterdir())) == 2
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{ADD_URL}{export.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not DatasetExport.objects.exists()
    assert list(export_dir.iterdir()) == []


def test_changelists_do_not_grow_queries_with_rows(
    client, admin_user, project, django_assert_max_num_queries
):
    for _ in range(3):
        reviewed(project)
    for _ in range(30):
        export = export_create(format="review_log", projects=[project], filters={}, enqueue=False)
    from datasets.services import export_build

    export_build(export_id=export.pk)
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        assert client.get(ADD_URL).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get("/admin/datasets/datasetexportitem/").status_code == 200
