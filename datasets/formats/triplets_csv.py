"""Correction triplets CSV: a header, then one quoted, neutralised row per triplet.

Cells are CSV-quoted, and a cell a spreadsheet would evaluate as a formula
gets a leading quote. Rows are encoded a chunk at a time, by one csv writer.
"""

import csv
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from datasets.formats import ExportFormatSpec, Row, register
from datasets.formats.triplets import DEFAULT_STATUSES, STATUSES, TRIPLET_COLUMNS, rows

CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_csv_cell(value: Any) -> str:
    """Text a spreadsheet will not evaluate: a leading = + - @ (or tab/CR) gets a quote."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(CSV_FORMULA_PREFIXES):
        return "'" + text
    return text


def _csv_bytes(records) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(records)
    return buffer.getvalue().encode()


def csv_header() -> bytes:
    return _csv_bytes([TRIPLET_COLUMNS])


def triplet_csv_lines(records: list[Sequence[Any]]) -> bytes:
    """Triplet rows (without the history id) as CSV bytes."""
    return _csv_bytes([[neutralise_csv_cell(value) for value in row] for row in records])


def _without_history(row: Row) -> Row:
    return row[:-1]


def encoder(chunk: list[Row]) -> Callable[[Row], Row]:
    # The lines stay rows until ``join`` writes a chunk of them at once.
    return _without_history


SPEC = register(
    ExportFormatSpec(
        key="triplets_csv",
        label="Correction triplets CSV",
        statuses=STATUSES,
        default_statuses=DEFAULT_STATUSES,
        extension="csv",
        content_type="text/csv; charset=utf-8",
        rows=rows,
        encoder=encoder,
        join=triplet_csv_lines,
        header=csv_header(),
    )
)
