"""JSON text: fast bytes for hashing and bulk writes, and what a stored value may hold.

``json_bytes`` uses orjson, with the standard library for the values orjson
refuses (integers beyond 64 bits). ``text_error`` and ``json_value_error`` are
the one rule for submitted text and JSON values: the validators of every write
endpoint ask them, so what they accept can always be hashed, stored in
PostgreSQL and sent on in a webhook.
"""

import json
import math
import re
from typing import Any

import orjson

NUL = "Must not contain NUL characters."
SURROGATE = "Must not contain lone surrogate characters."
NOT_FINITE = "Must be a finite number, not NaN or infinity."

# A lone surrogate decodes from a JSON escape ("\ud800") but has no UTF-8 form:
# it made hashing, the database write and the error page fail alike.
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def too_deep(limit: int) -> str:
    return f"Nested deeper than {limit} levels."


def json_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON of ``value``; the same value always gives the same bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        return json.dumps(
            value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False
        ).encode()


def text_error(value: str) -> str | None:
    """Why ``value`` cannot be stored as text: NUL (PostgreSQL refuses it) or a lone
    surrogate (not UTF-8); None when it can."""
    if "\x00" in value:
        return NUL
    if not value.isascii() and _SURROGATE.search(value):
        return SURROGATE
    return None


def without_surrogates(value: str) -> str:
    """``value`` with each lone surrogate replaced by U+FFFD, for echoing input back."""
    return _SURROGATE.sub("\ufffd", value)


def json_value_error(value: Any, *, max_depth: int) -> str | None:
    """The first reason ``value`` cannot be stored as JSON, or None.

    Refused: lists and objects nested more than ``max_depth`` levels, text (keys
    included) that ``text_error`` refuses, and NaN or infinite floats (orjson
    writes them as null, PostgreSQL's jsonb refuses them). The walk keeps its
    own stack, so a value nested thousands of levels deep is refused at level
    ``max_depth + 1`` instead of exhausting Python's recursion limit.
    """
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        kind = type(node)
        if kind is str or kind is int or kind is bool or node is None:
            # The common leaves, told by their exact type (subclasses take the long way).
            if kind is str and ("\x00" in node or not node.isascii()):
                error = text_error(node)
                if error:
                    return error
            continue
        if isinstance(node, str):
            error = text_error(node)
            if error:
                return error
        elif isinstance(node, float):
            if not math.isfinite(node):
                return NOT_FINITE
        elif isinstance(node, dict | list | tuple):
            if depth == max_depth:
                return too_deep(max_depth)
            if isinstance(node, dict):
                for key in node:
                    error = text_error(key) if isinstance(key, str) else None
                    if error:
                        return error
                children = node.values()
            else:
                children = node
            stack.extend((child, depth + 1) for child in children)
    return None
