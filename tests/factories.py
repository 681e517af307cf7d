"""Small builders for test data. Items go through the real ingest service."""

import itertools
import json

from reviews.api.validation import validate_item
from reviews.models import CheckRule, Project, ProjectMembership
from reviews.services.accounts import user_roles_sync
from reviews.services.ingest import item_ingest

_counter = itertools.count(1)


def make_project(**overrides) -> Project:
    n = next(_counter)
    fields = {
        "name": f"Project {n}",
        "slug": f"project-{n}",
        "mode": "gate",
        "audit_sample_rate": 0.0,
        "audit_salt": "test-salt",
    }
    fields.update(overrides)
    return Project.objects.create(**fields)


def make_rule(project: Project, **fields) -> CheckRule:
    fields.setdefault("name", f"rule-{next(_counter)}")
    rule = CheckRule(project=project, **fields)
    rule.full_clean()
    rule.save()
    return rule


def add_member(project: Project, user, role: str = "reviewer") -> ProjectMembership:
    """A membership as the admin makes it: the user's role groups follow."""
    membership = ProjectMembership.objects.create(project=project, user=user, role=role)
    user_roles_sync(user=user)
    return membership


def item_payload(**overrides) -> dict:
    n = next(_counter)
    payload = {
        "external_id": f"ext-{n}",
        "prompt": f"What is the maximum daily dose of paracetamol for adults? (case {n})",
        "output": "For healthy adults the usual maximum is 4 g per day, split into doses.",
        "model_name": "acme-med",
        "model_version": "2026-11-01",
        "confidence": 0.9,
        "messages": [],
        "context": [],
        "metadata": {},
    }
    payload.update(overrides)
    return payload


def ingest(project: Project, *payloads: dict, user=None):
    """Ingest payloads (default: one) and return the stored items."""
    payloads = payloads or (item_payload(),)
    return item_ingest(project=project, payloads=list(payloads), user=user).items


AGENT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_drugs",
            "description": "Find a drug's monograph.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "dose_table",
            "description": "The dosing table of a drug for a patient group.",
            "parameters": {
                "type": "object",
                "properties": {"drug": {"type": "string"}, "group": {"type": "string"}},
                "required": ["drug"],
            },
        },
    },
]


def transcript_messages(
    *, rounds: int = 2, system: bool = True, final: str | None = None, text: str = ""
) -> list[dict]:
    """A tool-calling agent conversation in OpenAI chat format.

    An optional system turn, the user's question, then ``rounds`` rounds of an
    assistant turn calling both tools and the two tool results (three turns a
    round), and the final assistant answer under review. ``text`` is appended
    to every turn's text (e.g. hostile markup to check escaping).
    """
    messages: list[dict] = []
    if system:
        messages.append({"role": "system", "content": f"You are a careful pharmacist.{text}"})
    messages.append(
        {
            "role": "user",
            "content": f"How much paracetamol may a 70 kg adult take per day?{text}",
            "timestamp": "2026-12-01T09:00:00Z",
        }
    )
    for n in range(rounds):
        messages.append(
            {
                "role": "assistant",
                "content": f"Looking it up (round {n + 1}).{text}" if n % 2 else None,
                "model": "acme-agent-2",
                "timestamp": f"2026-12-01T09:00:{n + 1:02d}Z",
                "tool_calls": [
                    {
                        "id": f"call_{n}_search",
                        "type": "function",
                        "function": {
                            "name": "search_drugs",
                            "arguments": json.dumps({"query": f"paracetamol{text}", "limit": n}),
                        },
                    },
                    {
                        "id": f"call_{n}_dose",
                        "type": "function",
                        "function": {
                            "name": "dose_table",
                            "arguments": json.dumps({"drug": "paracetamol", "group": "adult"}),
                        },
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"call_{n}_search",
                "content": f"Paracetamol (acetaminophen): analgesic.{text}",
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"call_{n}_dose",
                "content": f'{{"adult_max_g_per_day": 4}}{text}',
            }
        )
    messages.append(
        {
            "role": "assistant",
            "content": final if final is not None else f"At most 4 g per day for adults.{text}",
            "model": "acme-agent-2",
            "timestamp": "2026-12-01T09:01:00Z",
        }
    )
    return messages


def ingest_transcript(
    project: Project,
    *,
    rounds: int = 2,
    system: bool = True,
    final: str | None = None,
    text: str = "",
    **overrides,
):
    """Ingest one multi-turn tool-calling transcript item (the transcript form) and return it.

    See ``transcript_messages`` for the turns; ``overrides`` go into the payload.
    """
    n = next(_counter)
    payload = {
        "external_id": f"trace-{n}",
        "model_name": "acme-agent",
        "model_version": "2026-12-01",
        "confidence": 0.5,
        "messages": transcript_messages(rounds=rounds, system=system, final=final, text=text),
        "tools": AGENT_TOOLS,
        "context": [],
        "metadata": {},
    }
    payload.update(overrides)
    # Through the API's validation: it normalises the conversation as a client's would be.
    clean, errors = validate_item(payload)
    assert not errors, errors
    (item,) = item_ingest(project=project, payloads=[clean]).items
    return item


def comparison_payload(count: int = 2, **overrides) -> dict:
    """A comparison item: one prompt, ``count`` candidates from different models."""
    n = next(_counter)
    payload = {
        "external_id": f"cmp-{n}",
        "prompt": f"How long should paracetamol doses be spaced? (case {n})",
        "candidates": [
            {
                "output": f"Candidate answer {i} for case {n}: space doses {4 + i} hours apart.",
                "model_name": f"model-{'wxyz'[i]}",
                "model_version": f"v{i + 1}.0",
                "confidence": 0.5 + i / 10,
            }
            for i in range(count)
        ],
        "messages": [],
        "context": [],
        "metadata": {},
    }
    payload.update(overrides)
    return payload
