"""OpenAPI shapes of conversations: OpenAI chat messages and tool definitions.

The rules themselves (roles, tool_call_id matching, arguments as JSON text)
are ``reviews.transcripts``'; these schemas document the stored shape, and the
input accepts Anthropic content blocks on top of it.
"""

TEXT_BLOCK = {
    "type": "object",
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    "required": ["type", "text"],
}
TOOL_USE_BLOCK = {
    "type": "object",
    "description": "Anthropic: becomes a tool call of the assistant turn.",
    "properties": {
        "type": {"const": "tool_use"},
        "id": {"type": "string"},
        "name": {"type": "string"},
        "input": {"type": "object", "additionalProperties": True},
    },
    "required": ["type", "id", "name", "input"],
}
TOOL_RESULT_BLOCK = {
    "type": "object",
    "description": "Anthropic: in a user turn, becomes a tool message.",
    "properties": {
        "type": {"const": "tool_result"},
        "tool_use_id": {"type": "string"},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": TEXT_BLOCK}]},
        "is_error": {"type": "boolean"},
    },
    "required": ["type", "tool_use_id"],
}
TOOL_CALL = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 255},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "arguments": {
                    "type": "string",
                    "description": "The JSON text of an object (an object is accepted and "
                    "written as JSON text).",
                },
            },
            "required": ["name", "arguments"],
        },
    },
    "required": ["id", "function"],
}
MESSAGE = {
    "type": "object",
    "description": "An OpenAI chat message. tool messages answer a call of the assistant "
    "turn right before them; every call of an earlier assistant turn needs its result.",
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "oneOf": [
                {"type": "string"},
                {"type": "null"},
                {
                    "type": "array",
                    "items": {"oneOf": [TEXT_BLOCK, TOOL_USE_BLOCK, TOOL_RESULT_BLOCK]},
                },
            ]
        },
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": TOOL_CALL},
        "tool_call_id": {"type": "string", "maxLength": 255},
        "timestamp": {"type": "string", "format": "date-time", "description": "When said."},
        "model": {"type": "string", "maxLength": 200, "description": "The model that said it."},
    },
    "required": ["role"],
    "additionalProperties": False,
}
MESSAGES_SCHEMA = {"type": "array", "items": MESSAGE}
TOOL = {
    "type": "object",
    "description": 'OpenAI {"type": "function", "function": {name, description, parameters}}'
    " or Anthropic {name, description, input_schema}.",
    "properties": {
        "type": {"type": "string"},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "parameters": {"type": "object", "additionalProperties": True},
                "strict": {"type": "boolean"},
            },
            "required": ["name"],
        },
        "name": {"type": "string"},
        "description": {"type": "string"},
        "input_schema": {"type": "object", "additionalProperties": True},
    },
}
TOOLS_SCHEMA = {"type": "array", "items": TOOL}
