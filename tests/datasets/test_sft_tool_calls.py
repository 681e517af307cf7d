"""SFT lines of tool-calling conversations, checked against OpenAI's fine-tuning format.

The rules (platform.openai.com/docs/guides/fine-tuning, "Fine-tuning and tool
calling" and the chat format; the API reference's
FineTuneChatCompletionRequestAssistantMessage): each line holds ``messages``
and optionally ``tools``; roles are system, user, assistant and tool; an
assistant message has string ``content`` unless it has ``tool_calls``, each
call an id, ``"type": "function"`` and a function whose ``arguments`` are a
string of JSON; a tool message answers, by ``tool_call_id``, a call made by the
assistant turn before it, once; ``weight`` is 0 or 1 and only on assistant
messages; the last message is the assistant's and at least one assistant
message is trained on.

Items go through the real workspace: claimed, steps marked, review submitted.
"""

import io
import json

import pytest
from django.core.management import call_command

from datasets.models import DatasetExport
from datasets.services import export_build, export_create
from reviews.workspace.services import (
    ReviewInput,
    StepMark,
    assignment_claim_next,
    review_submit,
    step_verdict_mark,
)
from tests import factories
from tests.datasets import schemas

pytestmark = pytest.mark.django_db

ROLE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "weight"},
    "tool": {"role", "content", "tool_call_id"},
}


def check_openai_line(line: dict) -> None:
    """Raise AssertionError unless ``line`` follows OpenAI's chat fine-tuning rules."""
    assert set(line) <= {"messages", "tools", "parallel_tool_calls"}, set(line)
    tools = line.get("tools")
    names = None
    if tools is not None:
        assert isinstance(tools, list) and tools
        names = set()
        for tool in tools:
            assert tool["type"] == "function" and set(tool) == {"type", "function"}
            assert isinstance(tool["function"]["name"], str)
            assert set(tool["function"]) <= {"name", "description", "parameters", "strict"}
            names.add(tool["function"]["name"])
    messages = line["messages"]
    assert isinstance(messages, list) and messages
    open_calls: set[str] = set()
    answered: set[str] = set()
    trained = 0
    for index, message in enumerate(messages):
        role = message["role"]
        assert role in ROLE_KEYS, role
        assert set(message) <= ROLE_KEYS[role], (index, set(message))
        if "weight" in message:
            assert message["weight"] in (0, 1) and type(message["weight"]) is int
        if role == "tool":
            call_id = message["tool_call_id"]
            assert isinstance(call_id, str)
            assert call_id in open_calls, f"message {index}: {call_id} answers no earlier call"
            open_calls.remove(call_id)
            answered.add(call_id)
            assert isinstance(message["content"], str)
            continue
        assert not open_calls, f"message {index}: calls {open_calls} were never answered"
        if role != "assistant":
            assert isinstance(message["content"], str)
            continue
        if message.get("weight", 1) == 1:
            trained += 1
        calls = message.get("tool_calls")
        if calls is None:
            assert isinstance(message["content"], str)
        else:
            assert isinstance(calls, list) and calls
            assert isinstance(message.get("content", ""), str)
            for call in calls:
                assert set(call) == {"id", "type", "function"} and call["type"] == "function"
                assert isinstance(call["id"], str) and call["id"] not in answered
                assert set(call["function"]) == {"name", "arguments"}
                assert isinstance(call["function"]["arguments"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                if names is not None:
                    assert call["function"]["name"] in names
            # The final turn's calls are the answer; earlier ones must be answered.
            if index < len(messages) - 1:
                open_calls = {call["id"] for call in calls}
    assert messages[-1]["role"] == "assistant"
    assert trained >= 1


def test_the_validator_refuses_what_openai_refuses():
    good = {
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
            {"role": "assistant", "content": "a", "weight": 1},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    check_openai_line(good)
    broken = [
        ("tool_call_id", lambda m: m[2].update(tool_call_id="c2")),
        ("arguments", lambda m: m[1]["tool_calls"][0]["function"].update(arguments={})),
        ("weight on user", lambda m: m[0].update(weight=0)),
        ("weight 2", lambda m: m[3].update(weight=2)),
        ("role", lambda m: m[0].update(role="developer")),
        ("unanswered", lambda m: m.pop(2)),
        ("timestamp", lambda m: m[0].update(timestamp="2026-12-01T00:00:00Z")),
        ("nothing trained", lambda m: [m[1].update(weight=0), m[3].update(weight=0)]),
    ]
    for name, breaks in broken:
        line = json.loads(json.dumps(good))
        breaks(line["messages"])
        with pytest.raises((AssertionError, KeyError)):
            check_openai_line(line)
            pytest.fail(f"accepted a line with a bad {name}")


def decide(project, reviewer, *, verdict="approve", marks=(), corrected=None, **transcript):
    """Ingest a transcript, claim it, mark ``marks`` ((step, part) pairs), submit ``verdict``."""
    item = factories.ingest_transcript(project, **transcript)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == item.pk
    for step, part in marks:
        step_verdict_mark(
            assignment_id=claim.pk,
            reviewer=reviewer,
            mark=StepMark(step=step, part=part, reason="factual_error", severity="major"),
        )
    data = ReviewInput(verdict)
    if verdict == "correct":
        data = ReviewInput(
            "correct", corrected_output=corrected, reason_code="factual_error", severity="minor"
        )
    review_submit(assignment_id=claim.pk, reviewer=reviewer, data=data)
    item.refresh_from_db()
    return item


def build(project, **filters):
    export = export_create(format="sft_chat", projects=[project], filters=filters, enqueue=False)
    return export_build(export_id=export.pk)


def lines_of(export_dir, export) -> list[dict]:
    path = export_dir / export.files["train"]["name"]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def traces(project, reviewer):
    """Four decided agent traces: one with a wrong tool call, one corrected, one whose
    answer is a tool call, one prompt-and-output item with a tool-calling history."""
    marked = decide(project, reviewer, marks=[(3, "call_0_dose")])
    corrected = decide(
        project, reviewer, verdict="correct", corrected="At most 3 g a day with liver disease."
    )
    messages = factories.transcript_messages(rounds=1)
    messages[-1] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_final",
                "type": "function",
                "function": {"name": "dose_table", "arguments": '{"drug": "ibuprofen"}'},
            }
        ],
    }
    calls_only = decide(project, reviewer, messages=messages)
    history = factories.transcript_messages(rounds=1, system=False)[:-1]
    (plain,) = factories.ingest(
        project,
        factories.item_payload(
            messages=history,
            prompt="And for a child?",
            output="Ask a paediatrician.",
        ),
    )
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(assignment_id=claim.pk, reviewer=reviewer, data=ReviewInput("approve"))
    return {"marked": marked, "corrected": corrected, "calls_only": calls_only, "plain": plain}


def test_every_sft_line_with_tool_calls_follows_openais_rules(export_dir, project, traces):
    export = build(project)
    written = lines_of(export_dir, export)
    assert len(written) == 4
    for line in written:
        check_openai_line(line)
    marked, corrected, calls_only, plain = written  # by item id

    # tools on the line; tool_calls with JSON-text arguments; tool results by call id.
    assert [t["function"]["name"] for t in marked["tools"]] == ["search_drugs", "dose_table"]
    roles = [m["role"] for m in marked["messages"]]
    assert roles == [
        "system",
        "user",
        *["assistant", "tool", "tool"] * 2,
        "assistant",
    ]
    call_turn = marked["messages"][2]
    assert "content" not in call_turn
    assert call_turn["tool_calls"][1] == {
        "id": "call_0_dose",
        "type": "function",
        "function": {
            "name": "dose_table",
            "arguments": json.dumps({"drug": "paracetamol", "group": "adult"}),
        },
    }
    assert marked["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_0_search",
        "content": "Paracetamol (acetaminophen): analgesic.",
    }
    # The turn with the wrong tool call is not trained on; the others are, explicitly.
    weights = [m.get("weight") for m in marked["messages"] if m["role"] == "assistant"]
    assert weights == [0, 1, 1]
    assert marked["messages"][-1] == {
        "role": "assistant",
        "content": "At most 4 g per day for adults.",
        "weight": 1,
    }

    # A correction is the gold final turn; without marks there are no weights at all.
    assert corrected["messages"][-1] == {
        "role": "assistant",
        "content": "At most 3 g a day with liver disease.",
    }
    assert not any("weight" in m for m in corrected["messages"])
    assert len(corrected["messages"]) == 9

    # A final turn that only calls a tool keeps its call as the answer.
    assert calls_only["messages"][-1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_final",
                "type": "function",
                "function": {"name": "dose_table", "arguments": '{"drug": "ibuprofen"}'},
            }
        ],
    }

    # A prompt-and-output item: its tool-calling history is context (weight 0), then the
    # prompt and the gold answer.
    assert [m["role"] for m in plain["messages"]] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
        "assistant",
    ]
    assert plain["messages"][1]["weight"] == 0
    assert plain["messages"][-1] == {
        "role": "assistant",
        "content": "Ask a paediatrician.",
        "weight": 1,
    }


def test_wrong_steps_exclude_drops_the_lines_with_a_marked_step(export_dir, project, traces):
    export = build(project, wrong_steps="exclude")
    written = lines_of(export_dir, export)
    assert len(written) == 3
    for line in written:
        check_openai_line(line)
    finals = [line["messages"][-1].get("content") for line in written]
    assert "At most 4 g per day for adults." not in finals
    assert export.filters["wrong_steps"] == "exclude"
    assert "wrong_steps" not in build(project).filters


def test_a_marked_final_turn_released_unchanged_is_skipped(export_dir, project, reviewer):
    decide(project, reviewer, marks=[(9, "")])
    decide(project, reviewer, verdict="correct", corrected="Fixed answer.", marks=[(9, "")])
    export = build(project)
    written = lines_of(export_dir, export)
    assert [line["messages"][-1]["content"] for line in written] == ["Fixed answer."]
    # The correction replaced the marked turn: nothing left to weight 0.
    assert not any("weight" in m for m in written[0]["messages"])
    assert export.counts["skipped"] == {"final_turn_marked_wrong": 1}


def test_wrong_steps_through_the_api_the_admin_form_and_the_command(
    export_dir, project, reviewer, client_api, admin_user, client, traces
):
    response = client_api.post(
        "/api/v1/exports/", {"format": "sft_chat", "wrong_steps": "exclude"}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["filters"]["wrong_steps"] == "exclude"
    bad = client_api.post(
        "/api/v1/exports/", {"format": "sft_chat", "wrong_steps": "drop"}, format="json"
    )
    assert bad.status_code == 400 and "wrong_steps" in bad.json()

    client.force_login(admin_user)
    page = client.get("/admin/datasets/datasetexport/add/")
    assert b"Items with steps marked wrong" in page.content
    admin_form = {
        "name": "no wrong steps",
        "format": "sft_chat",
        "projects": [project.pk],
        "seed": "0",
        "validation_ratio": "0",
        "deduplicate": "on",
        "wrong_steps": "exclude",
    }
    created = client.post("/admin/datasets/datasetexport/add/", admin_form)
    assert created.status_code == 302, created.context["adminform"].form.errors
    assert DatasetExport.objects.get(name="no wrong steps").filters["wrong_steps"] == "exclude"
    refused = client.post(
        "/admin/datasets/datasetexport/add/", {**admin_form, "wrong_steps": "maybe"}
    )
    assert refused.status_code == 200
    assert "wrong_steps" in refused.context["adminform"].form.errors

    call_command(
        "export_dataset",
        "--format=sft_chat",
        f"--project={project.slug}",
        "--wrong-steps=exclude",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    latest = DatasetExport.objects.order_by("-pk").first()
    assert latest.filters["wrong_steps"] == "exclude" and latest.row_count == 3


def test_the_review_log_lists_each_reviews_marked_steps(export_dir, project, reviewer):
    decide(project, reviewer, marks=[(3, "call_0_dose"), (7, "")])
    decide(project, reviewer)
    export = export_create(format="review_log", projects=[project], filters={}, enqueue=False)
    export = export_build(export_id=export.pk)
    marked, clean = lines_of(export_dir, export)
    (review,) = marked["reviews"]
    assert review["steps"] == [
        {
            "step": 3,
            "part": "call_0_dose",
            "reason": "factual_error",
            "severity": "major",
            "note": "",
        },
        {"step": 7, "part": "", "reason": "factual_error", "severity": "major", "note": ""},
    ]
    assert "review_id" not in review
    assert clean["reviews"][0]["steps"] == []


def test_a_dpo_line_of_a_transcript_does_not_repeat_the_prompt(export_dir, project, reviewer):
    decide(project, reviewer, verdict="correct", corrected="At most 3 g a day.", rounds=0)
    export = export_create(format="dpo_pairs", projects=[project], filters={}, enqueue=False)
    (line,) = lines_of(export_dir, export_build(export_id=export.pk))
    schemas.validate(line, schemas.TRL_PREFERENCE_LINE)
    assert [m["role"] for m in line["prompt"]] == ["system", "user"]
    assert line["chosen"] == [{"role": "assistant", "content": "At most 3 g a day."}]
    assert line["rejected"] == [{"role": "assistant", "content": "At most 4 g per day for adults."}]
