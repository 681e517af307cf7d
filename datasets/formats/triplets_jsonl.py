"""Correction triplets JSONL: one JSON object per triplet (see ``triplets``)."""

from collections.abc import Callable

from orjson import dumps

from datasets.formats import ExportFormatSpec, Row, register
from datasets.formats.triplets import DEFAULT_STATUSES, STATUSES, rows, triplet_record


def triplet_jsonl_line(row: Row) -> bytes:
    return dumps(triplet_record(row[:-1])) + b"\n"


def encoder(chunk: list[Row]) -> Callable[[Row], bytes]:
    return triplet_jsonl_line


SPEC = register(
    ExportFormatSpec(
        key="triplets_jsonl",
        label="Correction triplets JSONL",
        statuses=STATUSES,
        default_statuses=DEFAULT_STATUSES,
        extension="jsonl",
        content_type="application/jsonl",
        rows=rows,
        encoder=encoder,
    )
)
