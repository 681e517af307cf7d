"""The API's JSON parser: DRF's, without the inputs that made it fail.

DRF's parser recurses once per level of nesting, so a body nested a few hundred
levels deep raised RecursionError (a 500), and it turned ``1e999`` into
infinity, which the hash stored as null and the webhook outbox could not write.
This parser measures the nesting without recursing before it parses, and
refuses NaN, infinities and integers too long to convert; each refusal names
the field the way the validators do, beside the usual ``detail``.
"""

import json
import math
import re
from itertools import accumulate
from json.decoder import scanstring
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from reviews.jsontext import NOT_FINITE, too_deep

# Room for what wraps a field: a batch object, its items list, one item. A field
# at the limit inside a batch still parses; the validator then judges it.
ENVELOPE_DEPTH = 3
TOO_LONG_INTEGER = "Integer has too many digits."

# Every byte but a quote and the four brackets, for bytes.translate to delete.
_NOT_MARK = bytes(set(range(256)) - set(b'"[]{}'))
_STRUCTURE = re.compile(r'[\[\]{}",]')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}

Path = list[str | int | None]


class _Refused:
    """Stands in for a refused number until the parse is over and its place can be named."""

    __slots__ = ("message", "summary")

    def __init__(self, summary: str, message: str) -> None:
        self.summary = summary
        self.message = message


class _Numbers:
    """The number hooks of one parse: a refused number becomes a ``_Refused``, noted."""

    def __init__(self) -> None:
        self.refused: _Refused | None = None

    def parse_float(self, literal: str) -> float | _Refused:
        # Also given NaN, Infinity and -Infinity, as parse_constant.
        value = float(literal)
        if math.isfinite(value):
            return value
        return self._refuse("NaN, Infinity and 1e999 are not JSON numbers.", NOT_FINITE)

    def parse_int(self, literal: str) -> int | _Refused:
        try:
            return int(literal)
        except ValueError:
            # More digits than sys.get_int_max_str_digits() (4,300 by default).
            return self._refuse("an integer has too many digits.", TOO_LONG_INTEGER)

    def _refuse(self, summary: str, message: str) -> _Refused:
        # One marker for every refused number: the first in the document is reported.
        self.refused = self.refused or _Refused(summary, message)
        return self.refused


def _max_depth(text: str) -> int:
    """The deepest nesting of lists and objects in ``text``, brackets in strings aside.

    Without escaped backslashes and escaped quotes, every quote left opens or
    closes a string, so every other piece between quotes is structure. Exact for
    valid JSON and for the valid start of invalid JSON, which is as far as the
    parser gets before it stops. Done on the UTF-8 bytes (a backslash, a quote
    or a bracket is one byte there, never part of another character), keeping
    only quotes and brackets before the split, in C: splitting a 1,000-item
    batch at every quote was half of its parse.
    """
    data = text.encode("utf-8", "surrogatepass")
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # A pair of adjacent quotes encloses no bracket of the structure: dropping it
    # keeps every other quote's parity, and leaves almost nothing to split.
    marks = data.translate(None, _NOT_MARK).replace(b'""', b"")
    brackets = b"".join(marks.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _path_beyond(text: str, limit: int) -> Path | None:
    """The keys and indices leading to the first list or object nested deeper than ``limit``.

    Slower than ``_max_depth`` (one step per string and comma), so only asked once
    that has found the document too deep. Raises ValueError on a malformed string.
    """
    # Per open list or object: [is_object, current key (None until read) or index].
    stack: list[list[Any]] = []
    pos = 0
    while match := _STRUCTURE.search(text, pos):
        char, pos = match.group(), match.end()
        if char == '"':
            string, pos = scanstring(text, pos)
            if stack and stack[-1][0] and stack[-1][1] is None:
                stack[-1][1] = string
        elif char in "[{":
            if len(stack) == limit:
                return [frame[1] for frame in stack]
            stack.append([char == "{", None if char == "{" else 0])
        elif char == ",":
            if stack:
                frame = stack[-1]
                frame[1] = None if frame[0] else frame[1] + 1
        elif stack:
            stack.pop()
    return None


def _path_to_refused(data: Any) -> tuple[Path, _Refused] | None:
    """The keys and indices of the first ``_Refused`` in ``data``, in document order."""
    stack: list[tuple[Any, Path]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Refused):
            return path, node
        if isinstance(node, dict):
            stack.extend((child, [*path, key]) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend(
                (child, [*path, index]) for index, child in reversed(list(enumerate(node)))
            )
    return None


def _field_errors(path: Path, message: str) -> dict[str, Any]:
    """``message`` keyed as the validators key theirs: by top-level field and, inside
    a list of objects (a batch's items, an item's messages), by index and field."""
    if not path or not isinstance(path[0], str):
        return {}
    if len(path) > 2 and isinstance(path[1], int) and isinstance(path[2], str):
        return {path[0]: {str(path[1]): {path[2]: [message]}}}
    return {path[0]: [message]}


def _refusal(summary: str, path: Path, message: str) -> ParseError:
    return ParseError({"detail": f"JSON parse error - {summary}", **_field_errors(path, message)})


class JSONParser(parsers.JSONParser):
    """JSON bodies nested at most ``HITL_MAX_JSON_DEPTH`` (plus the envelope) levels,
    with finite numbers only."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            limit = settings.HITL_MAX_JSON_DEPTH + ENVELOPE_DEPTH
            path = _path_beyond(text, limit) if _max_depth(text) > limit else None
            if path is not None:
                raise _refusal(
                    f"nested deeper than {limit} levels.",
                    path,
                    too_deep(settings.HITL_MAX_JSON_DEPTH),
                )
            numbers = _Numbers()
            data = json.loads(
                text,
                parse_float=numbers.parse_float,
                parse_int=numbers.parse_int,
                parse_constant=numbers.parse_float,
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if numbers.refused is not None:
            # The first refused number in the document, or (its key repeated and
            # overridden) no place at all.
            path, marker = _path_to_refused(data) or ([], numbers.refused)
            raise _refusal(marker.summary, path, marker.message)
        return data
