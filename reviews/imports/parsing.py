"""Reading an uploaded file into rows, and a row into an item the API's validator checks.

JSON Lines: one object a line, values used as they are. CSV: a header row,
then one item a row; cells are text, so confidence is parsed as a number and
``messages`` / ``metadata`` as JSON, and a ``context`` cell that is not JSON is
one retrieved document. Every cell is stored as the text it holds: a cell such
as ``=HYPERLINK(...)`` is an ordinary string here, never evaluated or altered.
"""

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings

from reviews.jsontext import text_error
from reviews.models import ImportFormat
from reviews.services.ingest import INGEST_FIELDS

TARGET_FIELDS = INGEST_FIELDS
REQUIRED_TARGETS = ("external_id", "prompt", "output", "model_name", "model_version")
# Fields a fixed value may stand in for, when the file has no column for them.
DEFAULTABLE = ("model_name", "model_version")
JSON_FIELDS = ("messages", "context", "metadata")
# Column names a mapping is suggested from, beyond the field's own name.
ALIASES = {
    "external_id": ("id", "external id", "externalid", "uid", "key"),
    "prompt": ("input", "question", "query", "user_prompt"),
    "output": ("response", "answer", "completion", "model_output"),
    "model_name": ("model",),
    "model_version": ("version", "model version"),
    "confidence": ("score", "probability"),
    "context": ("documents", "retrieved", "sources"),
    "metadata": ("meta", "extra"),
    "messages": ("history", "chat_history"),
}
EXTENSIONS = {".jsonl": ImportFormat.JSONL, ".ndjson": ImportFormat.JSONL, ".csv": ImportFormat.CSV}
# An item has a dozen fields; a file with hundreds of columns is not a file of items,
# and every page that maps or previews it would grow with them.
MAX_COLUMNS = 200


class FileUnreadable(Exception):
    """The file as a whole cannot be read (not UTF-8, broken CSV quoting, no header)."""


@dataclass
class Row:
    number: int
    """1 for the first data row: a JSONL file's first line, a CSV's first row after the header."""
    values: dict[str, Any] | None
    error: str = ""
    """Why the row could not be read at all (JSONL: not JSON, not an object)."""


def format_for(filename: str) -> str | None:
    lowered = filename.lower()
    for extension, fmt in EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    return None


def _csv_limit() -> int:
    # A cell may hold a whole prompt; the validator refuses what is too long.
    return settings.HITL_MAX_TEXT_CHARS * 4 + 1


def _line_limit() -> int:
    # One line is one item: no larger than the API accepts in a whole request.
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # HITL_MAX_REQUEST_BYTES


def _lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(number, line) for each line; None for a line longer than ``_line_limit()``,
    whose rest is skipped in bounded reads (never joined in memory)."""
    limit = _line_limit()
    number = 0
    while line := handle.readline(limit + 1):
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := handle.readline(limit + 1)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, line


def _key_error(value: dict) -> str:
    if len(value) > MAX_COLUMNS:
        return f"The object has {len(value)} keys; at most {MAX_COLUMNS} are read."
    for key in value:
        if (problem := text_error(key)) is not None:
            return f"A key {problem}."
    return ""


def _jsonl_rows(handle: BinaryIO) -> Iterator[Row]:
    for number, line in _lines(handle):
        if line is None:
            yield Row(number, None, f"The line is longer than {_line_limit()} bytes.")
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            yield Row(number, None, "The line is not UTF-8 text.")
            continue
        except RecursionError:
            yield Row(number, None, "The line is not valid JSON (nested too deeply).")
            continue
        except ValueError as exc:
            yield Row(number, None, f"The line is not valid JSON ({exc.args[0][:100]}).")
            continue
        if not isinstance(value, dict):
            yield Row(number, None, "Expected a JSON object with the item's fields.")
            continue
        if problem := _key_error(value):
            yield Row(number, None, problem)
            continue
        yield Row(number, value)


def _csv_rows(handle: BinaryIO) -> Iterator[Row]:
    text = codecs.getreader("utf-8-sig")(handle, errors="strict")
    csv.field_size_limit(_csv_limit())
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise FileUnreadable("The CSV file has no header row.")
        names = [name.strip() for name in header]
        if len(names) > MAX_COLUMNS:
            raise FileUnreadable(f"The CSV header has {len(names)} columns; at most {MAX_COLUMNS}.")
        if any(text_error(name) is not None for name in names):
            raise FileUnreadable("A CSV column name holds a NUL character or invalid text.")
        if len(set(names)) != len(names):
            raise FileUnreadable("The CSV header names a column twice.")
        for number, cells in enumerate(reader, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(names):
                yield Row(number, None, f"The row has {len(cells)} cells, the header {len(names)}.")
                continue
            yield Row(number, dict(zip(names, cells, strict=False)))
    except UnicodeDecodeError as exc:
        raise FileUnreadable("The file is not UTF-8 text.") from exc
    except csv.Error as exc:
        message = f"The CSV file is malformed near line {reader.line_num}: {exc}"
        raise FileUnreadable(message) from exc


def read_rows(handle: BinaryIO, fmt: str) -> Iterator[Row]:
    """The file's rows in order; raises ``FileUnreadable`` for a file-level problem."""
    if fmt == ImportFormat.JSONL:
        return _jsonl_rows(handle)
    if fmt == ImportFormat.CSV:
        return _csv_rows(handle)
    raise FileUnreadable(f"Unknown format {fmt!r}.")


@dataclass
class Preview:
    columns: list[str]
    rows: list[Row]


def preview(handle: BinaryIO, fmt: str, *, limit: int = 5) -> Preview:
    """The first ``limit`` rows and the columns (CSV header; JSONL: keys seen in them)."""
    rows: list[Row] = []
    columns: dict[str, None] = {}  # ordered, and a constant-time "seen"
    for row in read_rows(handle, fmt):
        rows.append(row)
        columns.update(dict.fromkeys(row.values or {}))
        if len(rows) >= limit:
            break
    return Preview(columns=list(columns), rows=rows)


def suggest_mapping(columns: list[str]) -> dict[str, str]:
    """Field -> column for the columns named like a field (or a common alias of it)."""
    by_name = {column.strip().lower(): column for column in columns}
    mapping = {}
    for target in TARGET_FIELDS:
        for name in (target, *ALIASES.get(target, ())):
            if name in by_name:
                mapping[target] = by_name[name]
                break
    return mapping


def _cell(target: str, value: str) -> tuple[Any, str]:
    """A CSV cell's value for ``target`` (or a message): (value, "") or (None, error)."""
    if target == "confidence":
        try:
            return float(value), ""
        except ValueError:
            return None, "Must be a number between 0 and 1."
    if target in JSON_FIELDS:
        stripped = value.strip()
        if target == "context" and not stripped.startswith(("[", "{")):
            return [value], ""
        try:
            return json.loads(stripped), ""
        except (ValueError, RecursionError):
            return None, "Enter valid JSON."
    return value, ""


def map_row(
    values: dict[str, Any], *, fmt: str, mapping: dict[str, str], defaults: dict[str, str]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The item a row stands for, as the API would receive it, and per-field read errors.

    Unmapped fields are absent (the validator then says which are required);
    an empty CSV cell counts as absent. ``defaults`` fill model name and
    version where the row gives none.
    """
    raw: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for target, column in mapping.items():
        if column not in values:
            continue
        value = values[column]
        if fmt == ImportFormat.CSV:
            if value is None or value == "":
                continue
            value, error = _cell(target, value)
            if error:
                errors[target] = [error]
                continue
        raw[target] = value
    for target in DEFAULTABLE:
        fixed = defaults.get(target) or ""
        current = raw.get(target)
        if fixed and (current is None or (isinstance(current, str) and not current.strip())):
            raw[target] = fixed
    return raw, errors


def flatten_errors(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The validator's nested messages as (field path, message): ``context[0].text``."""
    if isinstance(errors, dict):
        found = []
        for key, value in errors.items():
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            found.extend(flatten_errors(value, path))
        return found
    if isinstance(errors, list):
        found = []
        for value in errors:
            found.extend(flatten_errors(value, prefix) if not isinstance(value, str) else [])
            if isinstance(value, str):
                found.append((prefix, value))
        return found
    return [(prefix, str(errors))]


def csv_preview_text(value: Any, limit: int = 200) -> str:
    """A cell shortened for the preview table (rendered escaped by the template)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
