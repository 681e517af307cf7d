"""Conversations and agent traces as items: the OpenAI shape, Anthropic blocks, strict 400s."""

import hashlib
import json

import pytest

from reviews.api.serializers import ItemInputSerializer
from reviews.api.validation import validate_item
from reviews.jsontext import json_bytes
from reviews.models import ReviewItem
from reviews.services.ingest import INGEST_FIELDS, payload_hash
from reviews.transcripts import LAST_TURN, Limits, conversation_clean
from tests.factories import item_payload

LIMITS = Limits(text_chars=1000, json_depth=8)
URL = "/api/v1/items/"


def agent_trace() -> list[dict]:
    """A two-tool agent trace: the final assistant turn is the output under review."""
    return [
        {"role": "system", "content": "You are a travel agent."},
        {"role": "user", "content": "Book me the cheapest flight to Lisbon on Friday."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search_flights", "arguments": '{"to": "LIS"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '[{"id": "TP1", "eur": 89}]'},
        {
            "role": "assistant",
            "content": "Booking TP1.",
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "book", "arguments": '{"flight": "TP1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": "booked"},
        {"role": "assistant", "content": "Booked TP1 for 89 EUR."},
    ]


def transcript(messages=None, **overrides) -> dict:
    payload = item_payload(messages=messages or agent_trace(), **overrides)
    del payload["prompt"], payload["output"]
    return payload


def clean(raw):
    fields, errors = conversation_clean(raw, limits=LIMITS)
    return fields, errors


def test_a_whole_conversation_copies_its_prompt_and_output():
    fields, errors = clean({"messages": agent_trace()})
    assert errors == {}
    assert fields["is_transcript"] is True
    assert fields["prompt"] == "Book me the cheapest flight to Lisbon on Friday."
    assert fields["output"] == "Booked TP1 for 89 EUR."
    assert fields["messages"] == agent_trace()


def test_a_final_turn_of_tool_calls_only_is_the_output_with_empty_text():
    messages = agent_trace()[:3]
    fields, errors = clean({"messages": messages})
    assert errors == {}
    assert fields["output"] == ""
    assert fields["messages"][-1]["tool_calls"][0]["function"]["name"] == "search_flights"


def test_anthropic_blocks_become_openai_tool_calls_and_tool_messages():
    anthropic = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3 C, snow"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Snow again."}]},
    ]
    tools = [{"name": "weather", "description": "Forecast", "input_schema": {"type": "object"}}]
    fields, errors = clean({"messages": anthropic, "tools": tools})
    assert errors == {}
    assert fields["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "-3 C, snow"},
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": "Snow again."},
    ]
    assert fields["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Forecast",
                "parameters": {"type": "object"},
            },
        }
    ]
    assert fields["prompt"] == "And tomorrow?"


def test_time_and_model_of_a_turn_are_kept_and_empty_sdk_fields_dropped():
    messages = agent_trace()
    messages[-1] = {
        **messages[-1],
        "timestamp": "2026-12-01T10:00:00Z",
        "model": "gpt-x",
        "refusal": None,
        "annotations": [],
    }
    fields, errors = clean({"messages": messages})
    assert errors == {}
    assert fields["messages"][-1] == {
        "role": "assistant",
        "content": "Booked TP1 for 89 EUR.",
        "timestamp": "2026-12-01T10:00:00Z",
        "model": "gpt-x",
    }


def _with(index, **changes):
    messages = agent_trace()
    messages[index] = {**messages[index], **changes}
    return messages


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            _with(3, tool_call_id="call_9"),
            {
                "3": {
                    "tool_call_id": [
                        'No tool call "call_9" in the assistant turn before this message.'
                    ]
                }
            },
        ),
        (_with(1, role="wizard"), {"1": {"role": ['"wizard" is not a valid choice.']}}),
        (
            _with(2, tool_calls=[{"id": "call_1", "function": {"name": "f", "arguments": "{x"}}]),
            {
                "2": {
                    "tool_calls[0].function.arguments": [
                        "Not valid JSON: Expecting property name enclosed in double quotes "
                        "at character 1."
                    ]
                }
            },
        ),
        (
            _with(2, tool_calls=[{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]),
            {"2": {"tool_calls[0].function.arguments": ["Must be a JSON object."]}},
        ),
        (
            _with(4, tool_calls=[{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}]),
            {
                "4": {
                    "tool_calls": ['The tool call id "call_1" is used twice (first in message 2).']
                }
            },
        ),
        (
            agent_trace()[:3] + agent_trace()[6:],
            {
                "2": {
                    "tool_calls": [
                        'No tool result for "call_1": a tool message answering each call '
                        "must follow this turn."
                    ]
                }
            },
        ),
        (_with(1, bogus=1), {"1": {"bogus": ["Unknown field."]}}),
        (
            _with(1, content=[{"type": "image", "source": {}}]),
            {
                "1": {
                    "content[0]": [
                        'Unsupported content block type "image"; accepted: text, tool_result.'
                    ]
                }
            },
        ),
        (
            _with(6, content=None),
            {"6": {"content": ["An assistant turn needs content or tool_calls."]}},
        ),
        (_with(1, tool_call_id="x"), {"1": {"tool_call_id": ["Not allowed on a user message."]}}),
        (
            _with(6, timestamp="yesterday"),
            {"6": {"timestamp": ["Must be an ISO 8601 date and time."]}},
        ),
        (agent_trace()[:2], [LAST_TURN]),
        ([], [LAST_TURN]),
    ],
)
def test_a_bad_conversation_is_refused_naming_the_message_and_field(messages, expected):
    fields, errors = clean({"messages": messages})
    assert fields == {}
    assert errors == {"messages": expected}


def test_a_tool_answered_twice_is_refused():
    messages = agent_trace()
    messages.insert(4, dict(messages[3]))
    _fields, errors = clean({"messages": messages})
    assert errors == {
        "messages": {"4": {"tool_call_id": ['The tool call "call_1" was already answered.']}}
    }


def test_texts_and_arguments_have_the_limits_of_every_text():
    long_text = _with(1, content="x" * 1001)
    _fields, errors = clean({"messages": long_text})
    assert errors == {
        "messages": {"1": {"content": ["Ensure this field has no more than 1000 characters."]}}
    }
    deep = {"a": 1}
    for _ in range(10):
        deep = {"a": deep}
    nested = _with(2, tool_calls=[{"id": "c", "function": {"name": "f", "arguments": deep}}])
    _fields, errors = clean({"messages": nested})
    assert errors == {
        "messages": {"2": {"tool_calls[0].function.arguments": ["Nested deeper than 8 levels."]}}
    }


def test_bad_tool_definitions_are_refused_by_index():
    _fields, errors = clean(
        {
            "messages": agent_trace(),
            "tools": [
                {"type": "function", "function": {"name": "book", "parameters": []}},
                {"name": "book"},
                {"name": "book", "input_schema": {}},
                {"type": "web_search_20250305", "name": "web"},
            ],
        }
    )
    assert errors == {
        "tools": {
            "0": {"parameters": ["Must be a JSON Schema object."]},
            "2": {"name": ['A tool named "book" is defined twice.']},
            "3": {"type": ["Only function tools can be reviewed."]},
        }
    }


def test_the_prompt_form_still_works_and_may_carry_tool_turns_in_its_history():
    history = agent_trace()[:6]
    fields, errors = clean({"prompt": "Thanks! Seat?", "output": "12A.", "messages": history})
    assert errors == {}
    assert fields == {"is_transcript": False, "messages": history, "tools": []}


TRANSCRIPT_CASES = [
    transcript(),
    transcript(tools=[{"name": "book"}]),
    transcript(messages=agent_trace()[:2]),
    transcript(messages=_with(3, tool_call_id="nope")),
    {**transcript(), "prompt": "only a prompt"},
    transcript(messages="not a list"),
]


@pytest.mark.parametrize("raw", TRANSCRIPT_CASES)
def test_fast_validator_agrees_with_the_documented_serializer_on_transcripts(raw):
    serializer = ItemInputSerializer(data=raw)
    ok = serializer.is_valid()
    fields, errors = validate_item(raw)
    assert (fields is not None) == ok, (errors, serializer.errors)
    if ok:
        assert fields == {"context": [], "metadata": {}, **serializer.validated_data}
    else:
        assert json.loads(json.dumps(errors)) == json.loads(json.dumps(serializer.errors))


def test_a_transcript_is_stored_and_read_back_as_submitted(client_api, project):
    payload = transcript(tools=[{"name": "book", "input_schema": {"type": "object"}}])
    response = client_api.post(URL, payload, format="json")
    assert response.status_code == 201, response.json()
    item = ReviewItem.objects.get()
    assert item.is_transcript
    assert item.output == "Booked TP1 for 89 EUR."
    assert item.messages == agent_trace()
    body = client_api.get(f"{URL}{item.pk}/").json()
    assert body["messages"] == agent_trace()
    assert body["is_transcript"] is True
    assert body["prompt"] == "Book me the cheapest flight to Lisbon on Friday."
    assert body["output"] == "Booked TP1 for 89 EUR."
    assert body["tools"] == [
        {"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}
    ]
    again = client_api.post(URL, payload, format="json")
    assert again.status_code == 200
    changed = client_api.post(
        URL,
        transcript(messages=agent_trace()[:3], external_id=payload["external_id"]),
        format="json",
    )
    assert changed.status_code == 409
    assert ReviewItem.objects.count() == 1


def test_a_bad_transcript_is_a_400_naming_the_path_and_stores_nothing(client_api, project):
    response = client_api.post(
        URL, transcript(messages=_with(5, tool_call_id="call_7")), format="json"
    )
    assert response.status_code == 400
    assert response.json()["messages"] == {
        "5": {"tool_call_id": ['No tool call "call_7" in the assistant turn before this message.']}
    }
    batch = {"items": [transcript(), transcript(messages=_with(1, role="robot"))]}
    response = client_api.post(URL, batch, format="json")
    assert response.status_code == 400
    assert response.json()["items"] == {
        "1": {"messages": {"1": {"role": ['"robot" is not a valid choice.']}}}
    }
    assert not ReviewItem.objects.exists()


def test_items_of_the_prompt_form_keep_the_hash_they_were_stored_with():
    clean_payload, _errors = validate_item(item_payload())
    before = {name: clean_payload.get(name) for name in INGEST_FIELDS}
    expected = hashlib.sha256(json_bytes(before, sort_keys=True)).hexdigest()
    assert payload_hash(clean_payload) == expected
    assert payload_hash({**clean_payload, "is_transcript": True}) != expected
