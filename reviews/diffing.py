"""Differences between a model output and its correction.

Two views of one correction: a diff for people (the review page shows it live
while the reviewer edits, the timeline and the adjudication case page show it
afterwards), and entity-attribute-value triplets for training data. Both
address JSON by path when both texts are JSON documents; otherwise the people's
view is the word diff cut to the changed hunks with a little context, and the
triplets address character spans of the original.
static/reviews/diff.js computes the same hunks and paths in the browser.
"""

import bisect
import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

# Words and the whitespace after them stay together, so a diff re-joins into
# the exact texts it came from.
_TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]")
_MISSING = object()
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Unchanged words shown on each side of a change; longer unchanged runs are
# elided ("… 4,210 unchanged words …"), so a change at the end of a long text
# is on screen at once.
CONTEXT_WORDS = 12
# Token pairs a word-by-word match may cost; longer texts are aligned by
# chunks first (``_opcodes``).
MAX_WORD_CELLS = 250_000


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


def _matched(a: list[str], b: list[str], a0: int, b0: int) -> list[tuple]:
    """Word-by-word opcodes of ``a`` and ``b`` (offset by ``a0``, ``b0``), or one replace."""
    if len(a) * len(b) > MAX_WORD_CELLS:
        return [("replace", a0, a0 + len(a), b0, b0 + len(b))]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [
        (tag, a0 + i1, a0 + i2, b0 + j1, b0 + j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _anchors(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Patience anchors: words found once in each text, kept in an order both share."""
    seen_a, seen_b = Counter(a), Counter(b)
    where_b = {token: j for j, token in enumerate(b) if seen_b[token] == 1}
    pairs = [
        (i, where_b[token])
        for i, token in enumerate(a)
        if seen_a[token] == 1 and token in where_b and not token.isspace()
    ]
    # The longest run of pairs increasing in b too (patience sorting).
    tails: list[int] = []
    tail_at: list[int] = []
    previous = [-1] * len(pairs)
    for index, (_, j) in enumerate(pairs):
        pile = bisect.bisect_left(tails, j)
        previous[index] = tail_at[pile - 1] if pile else -1
        if pile == len(tails):
            tails.append(j)
            tail_at.append(index)
        else:
            tails[pile], tail_at[pile] = j, index
    chain = []
    index = tail_at[-1] if tail_at else -1
    while index != -1:
        chain.append(pairs[index])
        index = previous[index]
    return chain[::-1]


def _aligned(a: list[str], b: list[str], a0: int, b0: int) -> list[tuple]:
    """Opcodes of two long token runs: anchored on their unique words, matched between."""
    if len(a) * len(b) <= MAX_WORD_CELLS:
        return _matched(a, b, a0, b0)
    anchors = _anchors(a, b)
    if not anchors:
        return _matched(a, b, a0, b0)
    codes: list[tuple] = []
    i, j = 0, 0
    for anchor_i, anchor_j in anchors:
        codes.extend(_aligned(a[i:anchor_i], b[j:anchor_j], a0 + i, b0 + j))
        codes.append(("equal", a0 + anchor_i, a0 + anchor_i + 1, b0 + anchor_j, b0 + anchor_j + 1))
        i, j = anchor_i + 1, anchor_j + 1
    codes.extend(_aligned(a[i:], b[j:], a0 + i, b0 + j))
    return codes


def _opcodes(a: list[str], b: list[str]) -> list[tuple]:
    """SequenceMatcher opcodes of two token lists, in time that suits long texts.

    Matching every token of two long texts is quadratic in their frequent
    tokens (spaces, "the"): one changed word of 5,000 took 5 s. Long texts are
    trimmed of their common ends, then anchored on the words each holds once
    (as patience diff does) and matched word by word between anchors; a long
    stretch with no anchor at all is shown replaced whole.
    """
    if len(a) * len(b) <= MAX_WORD_CELLS:
        return _matched(a, b, 0, 0)
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    codes = [
        ("equal", 0, start, 0, start),
        *_aligned(a[start:end_a], b[start:end_b], start, start),
        ("equal", end_a, len(a), end_b, len(b)),
    ]
    merged: list[tuple] = []
    for code in codes:
        if code[1] == code[2] and code[3] == code[4]:
            continue
        if merged and merged[-1][0] == code[0] == "equal":
            merged[-1] = ("equal", merged[-1][1], code[2], merged[-1][3], code[4])
        else:
            merged.append(code)
    return merged


def word_diff(old: str, new: str) -> list[DiffOp]:
    """The word-level diff of two texts; joining ``equal``+``delete`` gives ``old``."""
    a, b = tokenize(old), tokenize(new)
    ops: list[DiffOp] = []
    for tag, i1, i2, j1, j2 in _opcodes(a, b):
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


def _pointer(path: tuple) -> str:
    # RFC 6901: "~" is written "~0" and "/" is written "~1".
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in path)


def json_path(path: tuple) -> str:
    """A path as people read it: ``$.items[0].price``, ``$["odd key"]``."""
    parts = ["$"]
    for key in path:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif _IDENTIFIER.fullmatch(key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts)


def _encode(value: Any) -> str:
    if value is _MISSING:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_changes(old: Any, new: Any, path: tuple, out: list[tuple[tuple, Any, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _json_changes(old.get(key, _MISSING), new.get(key, _MISSING), (*path, key), out)
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            _json_changes(
                old[index] if index < len(old) else _MISSING,
                new[index] if index < len(new) else _MISSING,
                (*path, index),
                out,
            )
        return
    # Leaves, or a value whose type changed: compare as JSON (so 1 != true).
    if old is _MISSING or new is _MISSING or _encode(old) != _encode(new):
        out.append((path, old, new))


def _text_triplets(old: str, new: str) -> list[Triplet]:
    a, b = tokenize(old), tokenize(new)
    offsets = [0]
    for token in a:
        offsets.append(offsets[-1] + len(token))
    triplets = []
    for tag, i1, i2, j1, j2 in _opcodes(a, b):
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
        changes: list[tuple[tuple, Any, Any]] = []
        _json_changes(old_value, new_value, (), changes)
        return [Triplet(_pointer(path), _encode(a), _encode(b)) for path, a, b in changes]
    return _text_triplets(old, new)


def json_same_value(old: str, new: str) -> bool:
    """Both texts are JSON documents holding the same value (layout aside)."""
    old_is_json, old_value = parse_json(old)
    new_is_json, new_value = parse_json(new)
    return old_is_json and new_is_json and _encode(old_value) == _encode(new_value)


def json_in_layout_of(original: str, edited: str) -> str:
    """``edited`` re-written in ``original``'s JSON layout when both are JSON documents.

    Reviewers edit a JSON output pretty-printed; the correction is stored laid
    out like the model's own output (compact stays compact, one line stays one
    line), so training data teaches the values, not a new formatting. A
    multi-line original of some other layout keeps the reviewer's text.
    Anything that is not two JSON documents comes back unchanged.
    """
    old_is_json, old_value = parse_json(original)
    new_is_json, new_value = parse_json(edited)
    if not (old_is_json and new_is_json):
        return edited
    shown = original.strip()
    layouts = (
        {"separators": (",", ":")},
        {"separators": (", ", ": ")},
        {"indent": 2},
        {"indent": 4},
    )
    for layout in layouts:
        if json.dumps(old_value, ensure_ascii=False, **layout) == shown:
            return json.dumps(new_value, ensure_ascii=False, **layout)
    if "\n" not in shown:
        return json.dumps(new_value, ensure_ascii=False)
    return edited


@dataclass(frozen=True)
class PathChange:
    """One changed JSON value: its path (``$.price``) and the JSON text before and after."""

    path: str
    old: str
    new: str

    @property
    def kind(self) -> str:
        return "added" if not self.old else "removed" if not self.new else "changed"


@dataclass(frozen=True)
class Hunk:
    """A run of changes with up to ``CONTEXT_WORDS`` unchanged words either side."""

    skipped_before: int
    """Unchanged words elided between the previous hunk (or the start) and this one."""
    ops: list[DiffOp]


@dataclass(frozen=True)
class CorrectionDiff:
    """What a person needs to see of a correction: changed paths, or changed hunks."""

    paths: list[PathChange] | None
    """JSON on both sides: one entry per changed value; else None."""
    hunks: list[Hunk]
    skipped_after: int
    added_words: int
    removed_words: int

    @property
    def changed(self) -> bool:
        return bool(self.paths or self.hunks)

    @property
    def size(self) -> int:
        return len(self.paths) if self.paths is not None else len(self.hunks)


def _words(text: str) -> list[str]:
    return [token for token in tokenize(text) if not token.isspace()]


def _head(text: str, words: int) -> tuple[str, int]:
    """The first ``words`` words of ``text`` (with their whitespace) and how many were cut."""
    tokens = tokenize(text)
    kept, seen = [], 0
    for token in tokens:
        if not token.isspace():
            if seen == words:
                break
            seen += 1
        kept.append(token)
    return "".join(kept), len(_words(text)) - seen


def _tail(text: str, words: int) -> tuple[str, int]:
    tokens = tokenize(text)
    kept, seen = [], 0
    for token in reversed(tokens):
        if not token.isspace():
            if seen == words:
                break
            seen += 1
        kept.append(token)
    return "".join(reversed(kept)), len(_words(text)) - seen


def hunks(ops: list[DiffOp], context: int = CONTEXT_WORDS) -> tuple[list[Hunk], int]:
    """Cut a word diff into hunks; returns them and the unchanged words elided at the end.

    Changes closer than ``2 * context`` words share a hunk.
    """
    result: list[Hunk] = []
    current: list[DiffOp] = []
    skipped = 0
    for index, op in enumerate(ops):
        if op.op != "equal":
            current.append(op)
            continue
        first, final = index == 0, index == len(ops) - 1
        if first and final:
            return [], 0
        if first:
            tail, skipped = _tail(op.text, context)
            current = [DiffOp("equal", tail)]
        elif final:
            head, cut = _head(op.text, context)
            result.append(Hunk(skipped_before=skipped, ops=[*current, DiffOp("equal", head)]))
            return result, cut
        elif len(_words(op.text)) <= 2 * context:
            current.append(op)
        else:
            head, _ = _head(op.text, context)
            tail, _ = _tail(op.text, context)
            result.append(Hunk(skipped_before=skipped, ops=[*current, DiffOp("equal", head)]))
            skipped = len(_words(op.text)) - 2 * context
            current = [DiffOp("equal", tail)]
    if current:
        result.append(Hunk(skipped_before=skipped, ops=current))
    return result, 0


def correction_diff(old: str, new: str, context: int = CONTEXT_WORDS) -> CorrectionDiff:
    """The diff people read: JSON paths when both texts are JSON, else word hunks.

    JSON documents are compared by value, leaf by leaf, as the triplets are
    (``$.price: 1299.0 → 999.99``); any other pair of texts word by word, cut to
    the changed hunks with ``context`` unchanged words either side.
    """
    old_is_json, old_value = parse_json(old)
    new_is_json, new_value = parse_json(new)
    if old_is_json and new_is_json:
        changes: list[tuple[tuple, Any, Any]] = []
        _json_changes(old_value, new_value, (), changes)
        paths = [PathChange(json_path(path), _encode(a), _encode(b)) for path, a, b in changes]
        return CorrectionDiff(
            paths=paths, hunks=[], skipped_after=0, added_words=0, removed_words=0
        )
    ops = word_diff(old, new)
    cut, skipped_after = hunks(ops, context)
    return CorrectionDiff(
        paths=None,
        hunks=cut,
        skipped_after=skipped_after,
        added_words=sum(len(_words(op.text)) for op in ops if op.op == "insert"),
        removed_words=sum(len(_words(op.text)) for op in ops if op.op == "delete"),
    )
