import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from datasets import storage
from datasets.formats import sft_chat, triplets
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus
from datasets.services import export_build, export_create
from reviews.models import ReviewItem
from tests.datasets import schemas
from tests.datasets.factories import reviewed
from tests.factories import ingest, item_payload, make_project

SYSTEM = [{"role": "system", "content": "You are a careful clinician."}]


def build(projects, fmt="sft_chat", **kwargs) -> DatasetExport:
    filters = kwargs.pop("filters", {})
    export = export_create(
        format=fmt, projects=list(projects), filters=filters, enqueue=False, **kwargs
    )
    return export_build(export_id=export.pk)


def lines(export_dir, export, split="train") -> list[dict]:
    path = export_dir / export.files[split]["name"]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def decided(project):
    """Approved, corrected, rejected, auto-approved and pending items of one project."""
    return {
        "approved": reviewed(project, messages=SYSTEM, output="Up to 4 g a day."),
        "corrected": reviewed(
            project,
            verdict="correct",
            output="Up to 8 g a day.",
            corrected_output="Up to 4 g a day; 2 g with liver disease.",
            severity="critical",
            reason_code="factual_error",
        ),
        "rejected": reviewed(project, verdict="reject", severity="major", reason_code="unsafe"),
        "pending": ingest(project, item_payload())[0],
    }


def test_sft_lines_follow_the_openai_chat_format(project, decided, export_dir):
    export = build([project])
    assert export.status == ExportStatus.SUCCEEDED
    rows = lines(export_dir, export)
    assert len(rows) == 2
    for row in rows:
        schemas.validate(row, schemas.OPENAI_CHAT_LINE)
    approved, corrected = rows
    assert approved["messages"] == [
        SYSTEM[0],
        {"role": "user", "content": decided["approved"].prompt},
        {"role": "assistant", "content": "Up to 4 g a day."},
    ]
    assert corrected["messages"][-1] == {
        "role": "assistant",
        "content": "Up to 4 g a day; 2 g with liver disease.",
    }
    assert export.counts["rows"] == {"train": 2}
    assert export.row_count == 2 and export.item_count == 2


def test_sft_keeps_earlier_assistant_turns_as_unweighted_context(project, export_dir):
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
    ]
    reviewed(project, messages=history)
    reviewed(project, messages=[{"role": "tool", "content": "{}"}])
    export = build([project])
    (row,) = lines(export_dir, export)
    schemas.validate(row, schemas.OPENAI_CHAT_LINE)
    assert row["messages"][1] == {**history[1], "weight": 0}
    # With any weight on the line, the gold turn's is explicit.
    assert row["messages"][-1]["weight"] == 1
    # A stored tool turn answering no call (written before transcripts were validated)
    # cannot be written: OpenAI's format needs its tool_call_id.
    assert export.counts["skipped"] == {"malformed_messages": 1}


def test_dpo_pairs_follow_trl_preference_columns_from_corrections_only(
    project, decided, export_dir
):
    export = build([project], fmt="dpo_pairs")
    (row,) = lines(export_dir, export)
    schemas.validate(row, schemas.TRL_PREFERENCE_LINE)
    item = decided["corrected"]
    assert row["prompt"] == [{"role": "user", "content": item.prompt}]
    assert row["chosen"] == [
        {"role": "assistant", "content": "Up to 4 g a day; 2 g with liver disease."}
    ]
    assert row["rejected"] == [{"role": "assistant", "content": "Up to 8 g a day."}]


def test_triplets_jsonl_carry_reason_severity_reviewer_and_time(project, decided, export_dir):
    export = build([project], fmt="triplets_jsonl")
    (row,) = lines(export_dir, export)
    item = decided["corrected"]
    assert row == {
        "item_id": item.pk,
        "external_id": item.external_id,
        "project": "clinical",
        "attribute": f"chars 0-{len(item.output)}",
        "old_value": "Up to 8 g a day.",
        "new_value": "Up to 4 g a day; 2 g with liver disease.",
        "reason": "factual_error",
        "severity": "critical",
        "reviewer": "rev-export",
        "timestamp": item.triplets.get().created_at.isoformat(),
    }


def test_triplets_csv_neutralises_formula_cells(project, export_dir):
    dangerous = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)"]
    for value in dangerous:
        reviewed(project, verdict="correct", output=value, corrected_output=value + " fixed")
    export = build([project], fmt="triplets_csv")
    text = (export_dir / export.files["train"]["name"]).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(triplets.TRIPLET_COLUMNS)
    assert [row["old_value"] for row in rows] == ["'" + value for value in dangerous]
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), cell


def test_review_log_holds_teacher_outputs_with_human_verdicts(project, decided, export_dir):
    export = build([project], fmt="review_log")
    rows = lines(export_dir, export)
    assert [row["verdict"] for row in rows] == ["approve", "correct", "reject"]
    rejected = rows[2]
    assert rejected["teacher_output"] == decided["rejected"].output
    assert rejected["final_output"] is None
    assert rejected["reason_code"] == "unsafe" and rejected["severity"] == "major"
    assert rejected["reviews"][0]["reviewer"] == "rev-export"
    assert rejected["reviews"][0]["verdict"] == "reject"


def test_rebuild_with_same_filters_is_byte_identical(project, decided, export_dir):
    first = build([project], validation_ratio=0.5, seed=7)
    second = build([project], validation_ratio=0.5, seed=7)
    assert first.pk != second.pk
    for split in ("train", "validation"):
        a = (export_dir / first.files[split]["name"]).read_bytes()
        b = (export_dir / second.files[split]["name"]).read_bytes()
        assert a == b
        assert first.files[split]["sha256"] == hashlib.sha256(a).hexdigest()
        assert first.files[split]["sha256"] == second.files[split]["sha256"]


def test_split_is_stable_when_items_are_added(project, export_dir):
    for _ in range(30):
        reviewed(project)
    before = build([project], validation_ratio=0.3, seed=11)
    for _ in range(30):
        reviewed(project)
    after = build([project], validation_ratio=0.3, seed=11)
    old = dict(before.entries.values_list("item_id", "split"))
    new = dict(after.entries.values_list("item_id", "split"))
    assert len(old) == 30 and len(new) == 60
    assert {item_id: new[item_id] for item_id in old} == old
    assert 0 < before.counts["rows"]["validation"] < 30
    other_seed = build([project], validation_ratio=0.3, seed=12)
    assert dict(other_seed.entries.values_list("item_id", "split")) != new


def test_identical_prompt_and_gold_are_kept_once(project, export_dir):
    first = reviewed(project, prompt="Same question?", output="Same answer.")
    reviewed(project, prompt="Same question?", output="Same answer.")
    reviewed(project, prompt="Same question?", output="Different answer.")
    export = build([project])
    assert export.counts["duplicates"] == 1
    assert export.row_count == 2
    assert first.pk in set(export.entries.values_list("item_id", flat=True))
    assert build([project], deduplicate=False).row_count == 3


def test_filters_select_items(project, export_dir):
    other = make_project()
    a = reviewed(project, model_version="v1")
    b = reviewed(
        project,
        verdict="correct",
        corrected_output="Fixed.",
        model_version="v2",
        severity="major",
        reason_code="hallucination",
        adjudicated=True,
    )
    c = reviewed(project, verdict="correct", corrected_output="Also fixed.", severity="minor")
    reviewed(other)

    def ids(**filters):
        export = build([project], filters=filters)
        return set(export.entries.values_list("item_id", flat=True))

    assert ids() == {a.pk, b.pk, c.pk}
    assert ids(model_versions=["v2"]) == {b.pk}
    assert ids(model_names=["acme-med"]) == {a.pk, b.pk, c.pk}
    assert ids(statuses=["approved"]) == {a.pk}
    assert ids(min_severity="minor") == {b.pk, c.pk}
    assert ids(min_severity="major") == {b.pk}
    assert ids(reason_codes=["hallucination"]) == {b.pk}
    assert ids(adjudicated_only=True) == {b.pk}
    ReviewItem.objects.filter(pk=a.pk).update(is_audit=True)
    assert ids(exclude_audit=True) == {b.pk, c.pk}
    ReviewItem.objects.filter(pk=c.pk).update(decided_at=timezone.now() - timedelta(days=10))
    cutoff = timezone.now() - timedelta(days=1)
    assert ids(decided_after=cutoff) == {a.pk, b.pk}
    assert ids(decided_before=cutoff) == {c.pk}
    assert build([project, other]).item_count == 4


def test_manifest_lists_each_item_with_its_history_version(project, decided, export_dir):
    export = build([project], validation_ratio=0.5, seed=3, name="clinical v1")
    manifest = json.loads((export_dir / export.manifest_name).read_text())
    assert manifest["format"] == "sft_chat"
    assert manifest["filters"]["projects"] == ["clinical"]
    assert manifest["filters"]["statuses"] == ["approved", "corrected"]
    assert manifest["files"] == export.files
    assert manifest["item_columns"] == ["item_id", "history_id", "split"]
    entries = {
        item_id: [item_id, history_id, split]
        for item_id, history_id, split in export.entries.values_list(
            "item_id", "history_id", "split"
        )
    }
    assert sorted(manifest["items"]) == sorted(entries.values())
    for item_id, history_id, _split in manifest["items"]:
        latest = ReviewItem.history.filter(id=item_id).latest()
        assert history_id == latest.history_id
        assert latest.status in ("approved", "corrected")
    counts = manifest["counts"]["rows"]
    assert counts["train"] + counts["validation"] == 2
    assert manifest["created_at"] and manifest["built_at"]
    assert export.manifest == {k: v for k, v in manifest.items() if k != "items"}


def test_failing_build_marks_export_failed_and_leaves_no_file(
    project, export_dir, settings, monkeypatch
):
    settings.HITL_EXPORT_CHUNK_SIZE = 2
    for _ in range(5):
        reviewed(project)
    real_line = sft_chat.sft_line
    calls = []

    def flaky_line(**kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("No space left on device")
        return real_line(**kwargs)

    monkeypatch.setattr(sft_chat, "sft_line", flaky_line)
    monkeypatch.setattr(sft_chat, "plain_head", lambda messages: None)  # every line by sft_line
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    progress = []
    with pytest.raises(OSError, match="No space left"):
        export_build(export_id=export.pk, on_progress=lambda *args: progress.append(args))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error == "OSError: No space left on device"
    assert progress == [(0, 5), (2, 5)]  # the first chunk was written before the failure
    assert list(export_dir.iterdir()) == []
    assert not DatasetExportItem.objects.filter(export=export).exists()


def test_a_built_export_never_changes(project, decided, export_dir):
    export = build([project])
    path = export_dir / export.files["train"]["name"]
    assert path.stat().st_mode & 0o777 == storage.FILE_MODE  # readable by the web process too
    content, mtime = path.read_bytes(), path.stat().st_mtime_ns
    reviewed(project)
    again = export_build(export_id=export.pk)
    assert again.row_count == export.row_count
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("fmt", "filters", "field"),
    [
        ("dpo_pairs", {"statuses": ["approved"]}, "statuses"),
        ("sft_chat", {"statuses": ["rejected"]}, "statuses"),
        ("sft_chat", {"min_severity": "extreme"}, "min_severity"),
        ("sft_chat", {"model_versions": [""]}, "model_versions"),
        ("nope", {}, "format"),
    ],
)
def test_invalid_filters_are_refused_per_field(project, fmt, filters, field):
    with pytest.raises(ValidationError) as exc:
        export_create(format=fmt, projects=[project], filters=filters, enqueue=False)
    assert field in exc.value.message_dict
    assert not DatasetExport.objects.exists()


def test_date_range_and_ratio_are_checked(project):
    now = timezone.now()
    with pytest.raises(ValidationError) as exc:
        export_create(
            format="sft_chat",
            projects=[project],
            filters={"decided_after": now, "decided_before": now - timedelta(days=1)},
            validation_ratio=0.9,
            enqueue=False,
        )
    assert set(exc.value.message_dict) == {"decided_before"}
    with pytest.raises(ValidationError) as exc:
        export_create(
            format="sft_chat", projects=[], filters={}, validation_ratio=0.9, enqueue=False
        )
    assert set(exc.value.message_dict) == {"projects", "validation_ratio"}
