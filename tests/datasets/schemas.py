"""The published line formats the exports must follow, as JSON Schemas.

OpenAI chat fine-tuning (platform.openai.com/docs/guides/fine-tuning, "Example
format", and the cookbook's "Data preparation and analysis for chat model
fine-tuning" format checks): one object per line with a ``messages`` list;
each message has a known role and string content, no unrecognised keys,
``weight`` (0 or 1) only on assistant turns, and at least one assistant turn.

TRL preference data (huggingface.co/docs/trl/dataset_formats, "Preference",
conversational with explicit prompt): ``prompt`` a list of messages,
``chosen`` and ``rejected`` lists of assistant messages.
"""

import jsonschema

MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool", "function"]},
        "content": {"type": "string"},
        "name": {"type": "string"},
        "weight": {"enum": [0, 1]},
        "tool_calls": {"type": "array"},
        "tool_call_id": {"type": "string"},
        "function_call": {"type": "object"},
    },
    "additionalProperties": False,
    "if": {"required": ["weight"]},
    "then": {"properties": {"role": {"const": "assistant"}}},
}

OPENAI_CHAT_LINE = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": MESSAGE,
            "contains": {"properties": {"role": {"const": "assistant"}}},
        },
        "tools": {"type": "array"},
        "parallel_tool_calls": {"type": "boolean"},
    },
    "additionalProperties": False,
}

CHAT_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant"]},
        "content": {"type": "string"},
    },
    "additionalProperties": False,
}
ASSISTANT_TURN = {
    "type": "array",
    "minItems": 1,
    "items": {
        **CHAT_MESSAGE,
        "properties": {**CHAT_MESSAGE["properties"], "role": {"const": "assistant"}},
    },
}
TRL_PREFERENCE_LINE = {
    "type": "object",
    "required": ["prompt", "chosen", "rejected"],
    "properties": {
        "prompt": {"type": "array", "minItems": 1, "items": CHAT_MESSAGE},
        "chosen": ASSISTANT_TURN,
        "rejected": ASSISTANT_TURN,
    },
    "additionalProperties": False,
}


def validate(instance, schema) -> None:
    jsonschema.Draft202012Validator(schema).validate(instance)


# OpenAI preference fine-tuning (platform.openai.com/docs/guides/direct-preference-optimization,
# "Data format"; the API reference's FineTunePreferenceRequestInput): ``input`` with
# ``messages`` (chat messages as for chat fine-tuning, no weights) and optional ``tools``
# and ``parallel_tool_calls``; ``preferred_output`` and ``non_preferred_output`` each one
# assistant message with text content.
OPENAI_INPUT_MESSAGE = {
    **MESSAGE,
    "required": ["role"],
    "properties": {k: v for k, v in MESSAGE["properties"].items() if k != "weight"},
}
OPENAI_OUTPUT = {
    "type": "array",
    "minItems": 1,
    "maxItems": 1,
    "items": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"const": "assistant"},
            "content": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    },
}
OPENAI_PREFERENCE_LINE = {
    "type": "object",
    "required": ["input", "preferred_output", "non_preferred_output"],
    "properties": {
        "input": {
            "type": "object",
            "required": ["messages"],
            "properties": {
                "messages": {"type": "array", "minItems": 1, "items": OPENAI_INPUT_MESSAGE},
                "tools": {"type": "array", "minItems": 1},
                "parallel_tool_calls": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "preferred_output": OPENAI_OUTPUT,
        "non_preferred_output": OPENAI_OUTPUT,
    },
    "additionalProperties": False,
}

# TRL unpaired preference (huggingface.co/docs/trl/dataset_formats, "Unpaired preference",
# conversational; what KTOTrainer takes): ``prompt`` a list of messages, ``completion`` a
# list of assistant messages, ``label`` a boolean.
TRL_UNPAIRED_LINE = {
    "type": "object",
    "required": ["prompt", "completion", "label"],
    "properties": {
        "prompt": {"type": "array", "minItems": 1, "items": CHAT_MESSAGE},
        "completion": ASSISTANT_TURN,
        "label": {"type": "boolean"},
    },
    "additionalProperties": False,
}
