import io
import json

import pytest
from django.core.management import CommandError, call_command

from datasets.models import DatasetExport, ExportStatus
from tests.datasets import schemas
from tests.datasets.factories import reviewed


def test_command_builds_export_in_process(project, export_dir):
    for n in range(4):
        reviewed(project, verdict="correct", corrected_output=f"Better {n}.", model_version="v2")
    reviewed(project, model_version="v1")
    out = io.StringIO()
    call_command(
        "export_dataset",
        "--format=sft_chat",
        "--project=clinical",
        "--model-version=v2",
        "--validation-ratio=0.5",
        "--seed=9",
        stdout=out,
        stderr=io.StringIO(),
    )
    export = DatasetExport.objects.get()
    assert export.status == ExportStatus.SUCCEEDED
    assert export.created_via == "manage.py export_dataset"
    assert export.item_count == 4
    text = out.getvalue()
    assert f"Export {export.pk}: 4 rows from 4 items" in text
    for split, meta in export.files.items():
        assert meta["sha256"] in text
        for line in (export_dir / meta["name"]).read_text().splitlines():
            schemas.validate(json.loads(line), schemas.OPENAI_CHAT_LINE)
        assert split in text


def test_command_enqueue_leaves_build_to_a_worker(project, django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks() as callbacks:
        call_command(
            "export_dataset", "--format=review_log", "--project=clinical", "--enqueue", stdout=out
        )
    export = DatasetExport.objects.get()
    assert export.status == ExportStatus.QUEUED
    assert f"Export {export.pk} queued" in out.getvalue()
    assert len(callbacks) == 1  # the enqueue, sent once the transaction commits


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format=sft_chat", "--project=nope"], "Unknown project(s): nope"),
        (["--format=dpo_pairs", "--project=clinical", "--status=approved"], "statuses:"),
        (["--format=sft_chat", "--project=clinical", "--validation-ratio=2"], "validation_ratio"),
        (["--format=sft_chat", "--project=clinical", "--user=ghost"], "Unknown user"),
    ],
)
def test_command_refuses_bad_input(project, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("export_dataset", *args, stdout=io.StringIO())
    assert not DatasetExport.objects.exists()
