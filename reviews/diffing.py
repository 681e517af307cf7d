"""Differences between a model output and its correction.

Two views of one correction: a word-level diff for people (the review page
shows it live while the reviewer edits, and the timeline shows it afterwards),
and entity-attribute-value triplets for training data: JSON pointer paths when
both texts are JSON, character spans of the original otherwise.
"""

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

# Words and the whitespace after them stay together, so a diff re-joins into
# the exact texts it came from.
_TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]")
_MISSING = object()


@dataclass(frozen=True)
class DiffOp:
    """One run of a word diff: ``equal``, ``insert`` or ``delete`` and its text."""

    op: str
    text: str


@dataclass(frozen=True)
class Triplet:
    """One changed attribute: where (JSON pointer or ``chars a-b``), old and new value."""

    attribute: str
    old_value: str
    new_value: str


def tokenize(text: str) -> list[str]:
    """Split into words, single punctuation marks and whitespace runs."""
    return _TOKEN_RE.findall(text)


def word_diff(old: str, new: str) -> list[DiffOp]:
    """The word-level diff of two texts; joining ``equal``+``delete`` gives ``old``."""
    a, b = tokenize(old), tokenize(new)
    ops: list[DiffOp] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(DiffOp("equal", "".join(a[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            ops.append(DiffOp("delete", "".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            ops.append(DiffOp("insert", "".join(b[j1:j2])))
    return ops


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when ``text`` is a JSON object or array, else (False, None)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return False, None
    try:
        return True, json.loads(stripped)
    except ValueError:
        return False, None


def pretty_json(text: str) -> str | None:
    """``text`` re-indented when it is a JSON object or array, else None."""
    ok, value = parse_json(text)
    if not ok:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


def _pointer_token(key: str | int) -> str:
    # RFC 6901: "~" is written "~0" and "/" is written "~1".
    return str(key).replace("~", "~0").replace("/", "~1")


def _encode(value: Any) -> str:
    if value is _MISSING:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_triplets(old: Any, new: Any, pointer: str, out: list[Triplet]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _json_triplets(
                old.get(key, _MISSING),
                new.get(key, _MISSING),
                f"{pointer}/{_pointer_token(key)}",
                out,
            )
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            _json_triplets(
                old[index] if index < len(old) else _MISSING,
                new[index] if index < len(new) else _MISSING,
                f"{pointer}/{index}",
                out,
            )
        return
    # Leaves, or a value whose type changed: compare as JSON (so 1 != true).
    if old is _MISSING or new is _MISSING or _encode(old) != _encode(new):
        out.append(Triplet(pointer, _encode(old), _encode(new)))


def _text_triplets(old: str, new: str) -> list[Triplet]:
    a, b = tokenize(old), tokenize(new)
    offsets = [0]
    for token in a:
        offsets.append(offsets[-1] + len(token))
    triplets = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start, end = offsets[i1], offsets[i2]
        triplets.append(Triplet(f"chars {start}-{end}", "".join(a[i1:i2]), "".join(b[j1:j2])))
    return triplets


def correction_triplets(old: str, new: str) -> list[Triplet]:
    """What a correction changed, as (attribute, old value, new value) triplets.

    Both texts JSON: one triplet per changed leaf, addressed by JSON pointer
    (RFC 6901), values JSON-encoded ("" for an added or removed member).
    Otherwise: one triplet per changed run of words, addressed by the span of
    the original text it replaces (``chars 12-18``; an insertion is an empty
    span such as ``chars 12-12``).
    """
    old_is_json, old_value = parse_json(old)
    new_is_json, new_value = parse_json(new)
    if old_is_json and new_is_json:
        triplets: list[Triplet] = []
        _json_triplets(old_value, new_value, "", triplets)
        return triplets
    return _text_triplets(old, new)
