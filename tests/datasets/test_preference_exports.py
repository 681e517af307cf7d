"""Preference exports: TRL preference pairs, OpenAI preference (DPO) and TRL unpaired (KTO).

Every line is checked against the published formats (``tests.datasets.schemas``
cites them) and against the decisions it came from: roles and types, non-empty
texts, the chosen answer the gold one and the rejected one a candidate that
lost, one line per ordered pair the decision implies; ties and all bad counted.
"""

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.models import DatasetExport
from datasets.services import export_build, export_create
from datasets.services.build import split_of
from reviews.models import ItemStatus
from reviews.quality.quarantine import quarantine_create
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.datasets import schemas
from tests.datasets.factories import reviewed
from tests.datasets.test_sft_tool_calls import check_openai_line
from tests.factories import AGENT_TOOLS, comparison_payload, ingest

HISTORY = [
    {"role": "system", "content": "You are a careful clinician."},
    {"role": "user", "content": "I take paracetamol for a headache."},
    {"role": "assistant", "content": "Noted. What would you like to know?"},
]
CORRECTION = "Space doses at least 4 hours apart, at most 4 doses in 24 hours."
FORMATS = ("trl_preference", "openai_preference", "trl_unpaired")


def build(project, fmt: str, **kwargs) -> DatasetExport:
    filters = kwargs.pop("filters", {})
    export = export_create(format=fmt, projects=[project], filters=filters, enqueue=False, **kwargs)
    return export_build(export_id=export.pk)


def lines(export_dir, export, split="train") -> list[dict]:
    path = export_dir / export.files[split]["name"]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def decide(project, reviewer, payload, **choice):
    """Ingest one comparison, claim it and submit ``choice`` (``winner`` a position)."""
    (item,) = ingest(project, payload)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == item.pk
    candidates = list(item.candidates.order_by("position"))
    position = choice.pop("winner", None)
    data = PreferenceInput(
        winner_id=candidates[position].pk if position is not None else None, **choice
    )
    preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=data)
    item.refresh_from_db()
    return item, candidates


@pytest.fixture
def decided(project, reviewer):
    """Four decided comparisons (a corrected winner of three, a winner of two, a tie,
    all bad) and three single items (approved, corrected, rejected)."""
    three, three_candidates = decide(
        project,
        reviewer,
        comparison_payload(3, messages=HISTORY),
        preference="winner",
        winner=1,
        corrected_output=CORRECTION,
        reason_code="tone",
        severity="minor",
    )
    two, two_candidates = decide(
        project, reviewer, comparison_payload(2), preference="winner", winner=0
    )
    tie, _ = decide(project, reviewer, comparison_payload(2), preference="tie")
    bad, _ = decide(
        project,
        reviewer,
        comparison_payload(2),
        preference="all_bad",
        reason_code="factual_error",
        severity="major",
    )
    assert three.status == ItemStatus.CORRECTED and three.final_output == CORRECTION
    assert (two.status, tie.status, bad.status) == ("approved", "approved", "rejected")
    return {
        "three": (three, three_candidates),
        "two": (two, two_candidates),
        "tie": tie,
        "bad": bad,
        "approved": reviewed(project, output="Up to 4 g a day."),
        "corrected": reviewed(
            project,
            verdict="correct",
            output="Up to 8 g a day.",
            corrected_output="Up to 4 g a day; 2 g with liver disease.",
            messages=HISTORY[:1],
            tools=AGENT_TOOLS,
        ),
        "rejected": reviewed(project, verdict="reject", severity="major", output="Take 10 g."),
    }


def expected_pairs(decided) -> list[tuple[object, str, str]]:
    """(item, chosen, rejected) the comparisons' decisions imply, in export order."""
    three, (c0, c1, c2) = decided["three"]
    two, (d0, d1) = decided["two"]
    return [
        (three, CORRECTION, c0.output),
        (three, CORRECTION, c1.output),  # the winner's own output lost to its correction
        (three, CORRECTION, c2.output),
        (two, d0.output, d1.output),
    ]


def prompt_of(item) -> list[dict]:
    return [*item.messages, {"role": "user", "content": item.prompt}]


def test_trl_preference_lines_are_trl_conversational_preference_pairs(project, decided, export_dir):
    export = build(project, "trl_preference")
    rows = lines(export_dir, export)
    pairs = expected_pairs(decided)
    assert len(rows) == len(pairs) == 4
    for row, (item, chosen, rejected) in zip(rows, pairs, strict=True):
        schemas.validate(row, schemas.TRL_PREFERENCE_LINE)
        assert row["prompt"] == prompt_of(item)
        assert row["prompt"][-1]["role"] == "user"
        assert row["chosen"] == [{"role": "assistant", "content": chosen}]
        assert row["rejected"] == [{"role": "assistant", "content": rejected}]
        assert chosen.strip() and rejected.strip() and chosen != rejected
    three = decided["three"][0]
    assert rows[0]["prompt"][0] == {"role": "system", "content": "You are a careful clinician."}
    assert len(rows[0]["prompt"]) == 4
    # Ties and all bad give no line and are counted; single items are not read.
    assert export.counts["skipped"] == {"all_bad": 1, "tie": 1}
    assert export.counts["rows"] == {"train": 4}
    assert export.counts["source_rows"] == 6
    assert list(export.entries.order_by("item_id").values_list("item_id", flat=True)) == [
        three.pk,
        decided["two"][0].pk,
    ]
    assert export.manifest["counts"]["skipped"] == {"all_bad": 1, "tie": 1}


def test_openai_preference_lines_from_comparisons_and_corrections(project, decided, export_dir):
    export = build(project, "openai_preference")
    rows = lines(export_dir, export)
    corrected = decided["corrected"]
    pairs = [*expected_pairs(decided), (corrected, corrected.final_output, corrected.output)]
    assert len(rows) == 5
    for row, (item, preferred, non_preferred) in zip(rows, pairs, strict=True):
        schemas.validate(row, schemas.OPENAI_PREFERENCE_LINE)
        assert row["input"]["messages"] == prompt_of(item)
        assert row["input"]["messages"][-1]["role"] == "user"
        assert row["preferred_output"] == [{"role": "assistant", "content": preferred}]
        assert row["non_preferred_output"] == [{"role": "assistant", "content": non_preferred}]
        assert preferred != non_preferred
    assert rows[-1]["input"]["tools"] == AGENT_TOOLS
    assert all("tools" not in row["input"] for row in rows[:-1])
    assert export.counts["skipped"] == {"all_bad": 1, "tie": 1}
    # Approved and rejected single items hold no pair: not even source rows.
    assert export.counts["source_rows"] == 7
    exported = set(export.entries.values_list("item_id", flat=True))
    assert exported == {decided["three"][0].pk, decided["two"][0].pk, corrected.pk}


def test_trl_unpaired_lines_label_verdicts_and_corrected_originals(project, decided, export_dir):
    export = build(project, "trl_unpaired")
    rows = lines(export_dir, export)
    approved, corrected, rejected = decided["approved"], decided["corrected"], decided["rejected"]
    expected = [
        (approved, "Up to 4 g a day.", True),
        (corrected, "Up to 8 g a day.", False),
        (corrected, "Up to 4 g a day; 2 g with liver disease.", True),
        (rejected, "Take 10 g.", False),
    ]
    assert len(rows) == len(expected)
    for row, (item, completion, label) in zip(rows, expected, strict=True):
        schemas.validate(row, schemas.TRL_UNPAIRED_LINE)
        assert row["prompt"] == prompt_of(item)
        assert row["completion"] == [{"role": "assistant", "content": completion}]
        assert row["label"] is label
    assert rows[1]["prompt"][0]["role"] == "system"
    # Comparisons are not read: a preference between candidates is no absolute verdict.
    assert export.counts["source_rows"] == 4 and export.counts["skipped"] == {}
    assert export.item_count == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_rebuild_gives_the_same_sha256_and_a_stable_split(project, decided, export_dir, fmt):
    first = build(project, fmt, validation_ratio=0.5, seed=11)
    second = build(project, fmt, validation_ratio=0.5, seed=11)
    assert first.pk != second.pk and first.row_count > 0
    for split in ("train", "validation"):
        data = (export_dir / first.files[split]["name"]).read_bytes()
        assert data == (export_dir / second.files[split]["name"]).read_bytes()
        assert first.files[split]["sha256"] == hashlib.sha256(data).hexdigest()
        assert first.files[split]["sha256"] == second.files[split]["sha256"]
    for item_id, split in first.entries.values_list("item_id", "split"):
        assert split == split_of(seed=11, item_id=item_id, validation_ratio=0.5)
    # An item's lines all go to its split.
    assert first.files["train"]["rows"] + first.files["validation"]["rows"] == first.row_count


def test_filters_select_comparisons_by_status_and_candidate_model(project, decided, export_dir):
    corrected_only = build(project, "trl_preference", filters={"statuses": ["corrected"]})
    assert corrected_only.row_count == 3 and corrected_only.counts["skipped"] == {}
    # Only the comparison of three has a candidate from model-y (models w, x, y).
    by_model = build(project, "openai_preference", filters={"model_names": ["model-y"]})
    assert set(by_model.entries.values_list("item_id", flat=True)) == {decided["three"][0].pk}
    assert by_model.row_count == 3
    # The single items' model matches their own name, as in the other formats.
    singles = build(project, "openai_preference", filters={"model_names": ["acme-med"]})
    assert set(singles.entries.values_list("item_id", flat=True)) == {decided["corrected"].pk}


def test_repeated_pairs_are_written_once(project, reviewer, export_dir):
    payload = comparison_payload(2)
    decide(project, reviewer, payload, preference="winner", winner=1)
    again = {**payload, "external_id": f"{payload['external_id']}-again"}
    decide(project, reviewer, again, preference="winner", winner=1)
    export = build(project, "trl_preference")
    assert export.row_count == 1 and export.counts["duplicates"] == 1
    assert build(project, "trl_preference", deduplicate=False).row_count == 2


def test_quarantined_preferences_are_withheld(project, reviewer, decided, export_dir):
    now = timezone.now()
    outcome = quarantine_create(
        project=project,
        reviewer=reviewer,
        start=now - timedelta(hours=1),
        end=now + timedelta(minutes=1),
        reason="Failed controls",
    )
    assert len(outcome.withdrawn) == 4
    export = build(project, "trl_preference")
    assert export.row_count == 0 and export.counts["skipped"] == {}
    assert export.counts["withheld"] == {"quarantined": 4}
    # The single items were another reviewer's: still exported.
    assert build(project, "openai_preference").row_count == 1


def test_the_api_and_the_admin_offer_the_preference_formats(
    client, client_api, admin_user, project, decided, django_capture_on_commit_callbacks
):
    for fmt in FORMATS:
        with django_capture_on_commit_callbacks(execute=True):
            answer = client_api.post(
                "/api/v1/exports/", data={"format": fmt}, content_type="application/json"
            )
        assert answer.status_code == 202, answer.content
        detail = client_api.get(f"/api/v1/exports/{answer.json()['id']}/").json()
        assert detail["status"] == "succeeded" and detail["format"] == fmt
        download = client_api.get(f"/api/v1/exports/{detail['id']}/download/")
        body = b"".join(download.streaming_content)
        assert body.count(b"\n") == detail["files"]["train"]["rows"] > 0
    refused = client_api.post(
        "/api/v1/exports/",
        data={"format": "trl_unpaired", "statuses": ["auto_approved"]},
        content_type="application/json",
    )
    assert refused.status_code == 400 and "statuses" in refused.json()
    client.force_login(admin_user)
    form = client.get("/admin/datasets/datasetexport/add/").content.decode()
    for fmt in FORMATS:
        assert f'value="{fmt}"' in form


def test_a_corrected_tool_calling_transcript_keeps_its_calls_in_openai_input(
    project, reviewer, export_dir
):
    item = factories.ingest_transcript(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == item.pk
    corrected = "At most 4 g per day; 2 g with liver disease."
    data = ReviewInput(
        "correct", corrected_output=corrected, reason_code="factual_error", severity="minor"
    )
    review_submit(assignment_id=claim.pk, reviewer=reviewer, data=data)
    (row,) = lines(export_dir, build(project, "openai_preference"))
    schemas.validate(row, schemas.OPENAI_PREFERENCE_LINE)
    assert row["input"]["tools"] == factories.AGENT_TOOLS
    # The input and the preferred answer make a valid chat fine-tuning conversation:
    # every tool call answered by its result, the answer last.
    check_openai_line({"messages": row["input"]["messages"] + row["preferred_output"]})
    assert any(m.get("tool_calls") for m in row["input"]["messages"])
    assert row["preferred_output"] == [{"role": "assistant", "content": corrected}]
    assert row["non_preferred_output"] == [
        {"role": "assistant", "content": "At most 4 g per day for adults."}
    ]
    # TRL's plain turns hold no tool calls (an assistant turn without text content):
    # skipped and counted under dpo_pairs' reason for them.
    unpaired = build(project, "trl_unpaired")
    assert unpaired.row_count == 0
    assert unpaired.counts["skipped"] == {"malformed_messages": 2}
