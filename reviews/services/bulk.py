"""Bulk inserts for ingest: new items, their history rows and their check results.

On PostgreSQL the rows go in with COPY, ids taken from the table's sequence
first; this is what lets one request store 1,000 checked items with their
history in well under a second. A single item goes in with one statement
instead (``item_insert_one``: the item, its history row and its check results
in one INSERT with data-modifying CTEs). Elsewhere (the SQLite demo) the same
rows go through the ORM (``bulk_create_with_history``). All paths write the
same rows; on PostgreSQL also one ``SearchPending`` row per item, for the
search indexer (``reviews.services.search``), which they enqueue after commit.
"""

import functools
import operator
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, models
from simple_history.utils import bulk_create_with_history

from reviews.checks import Outcome
from reviews.jsontext import json_bytes
from reviews.models import CheckResult, ReviewItem, SearchPending
from reviews.services.search import search_index_soon, search_pending_add

HISTORY_EXTRA = ("history_date", "history_change_reason", "history_type", "history_user_id")
CHECK_RESULT_COLUMNS = (
    "item_id",
    "rule_id",
    "name",
    "kind",
    "severity",
    "passed",
    "message",
    "created_at",
)


def _columns(model: type[models.Model], *, skip: Iterable[str] = ()) -> list[models.Field]:
    skipped = set(skip)
    return [f for f in model._meta.concrete_fields if f.attname not in skipped]


def rows_copy(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]):
    """COPY ``rows`` (values in ``columns`` order, by attname) into ``model``'s table.

    PostgreSQL only; the one COPY writer of the reviews app (ingest, the outbox).
    """
    quote = connection.ops.quote_name
    opts = model._meta
    sql = "COPY {} ({}) FROM STDIN".format(
        quote(opts.db_table), ", ".join(quote(opts.get_field(c).column) for c in columns)
    )
    # wrap_database_errors turns psycopg's errors into Django's (IntegrityError
    # for a concurrent insert of the same external id), as execute() does.
    began = time.monotonic()
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    if connection.queries_logged:
        # Counted like any statement (CaptureQueriesContext, the query-count tests).
        connection.queries_log.append(
            {"sql": f"{sql} -- rows_copy", "time": f"{time.monotonic() - began:.3f}"}
        )


def _item_row(
    item: ReviewItem, fields: Sequence[models.Field], json_fields: set[str]
) -> dict[str, object]:
    """Column values by attname, JSON serialised once for the item and its history row."""
    row = {}
    for field in fields:
        value = getattr(item, field.attname)
        row[field.attname] = json_bytes(value).decode() if field.attname in json_fields else value
    return row


def _check_result(item: ReviewItem, outcome: Outcome) -> CheckResult:
    rule = outcome.rule
    return CheckResult(
        item_id=item.pk,
        rule_id=rule.pk,
        name=rule.name,
        kind=rule.kind,
        severity=rule.severity,
        passed=outcome.passed,
        message=outcome.message,
        created_at=item.created_at,
    )


class _Stamps(dict):
    """Timestamps as the text COPY sends, each formatted once: psycopg's datetime
    dumper costs several microseconds a value, and a batch's rows share one ``now``."""

    def __missing__(self, value: datetime | None) -> str | None:
        text = self[value] = None if value is None else value.isoformat()
        return text


_COPY_ITEM_FIELDS = _columns(ReviewItem)
_COPY_ITEM_NAMES = [f.attname for f in _COPY_ITEM_FIELDS]
_COPY_ITEM_VALUES = operator.itemgetter(*_COPY_ITEM_NAMES)
_COPY_JSON = [i for i, f in enumerate(_COPY_ITEM_FIELDS) if isinstance(f, models.JSONField)]
_COPY_TIMES = [i for i, f in enumerate(_COPY_ITEM_FIELDS) if isinstance(f, models.DateTimeField)]
# Looked up once: each ``ReviewItem.history`` builds a new manager class (a millisecond).
_HISTORY_MODEL = ReviewItem.history.model
_COPY_HISTORY_FIELDS = _columns(_HISTORY_MODEL, skip=("history_id", *HISTORY_EXTRA))
_COPY_HISTORY_NAMES = [*(f.attname for f in _COPY_HISTORY_FIELDS), *HISTORY_EXTRA]
# The history row's columns taken from the item's COPY row, in their order.
_COPY_HISTORY_FROM_ITEM = operator.itemgetter(
    *(_COPY_ITEM_NAMES.index(f.attname) for f in _COPY_HISTORY_FIELDS)
)


def _copy_row(values: dict[str, object], stamps: _Stamps) -> list:
    """An item's COPY row from its attribute dict: JSON serialised once (the history
    row reuses it), timestamps through ``stamps``."""
    row = list(_COPY_ITEM_VALUES(values))
    for index in _COPY_JSON:
        row[index] = json_bytes(row[index]).decode()
    for index in _COPY_TIMES:
        row[index] = stamps[row[index]]
    return row


def items_insert(
    *,
    items: list[ReviewItem],
    outcomes: list[list[Outcome]],
    user,
    use_copy: bool | None = None,
) -> None:
    """Insert new ``items`` (ids assigned in place), one "+" history row each, and
    their check ``outcomes``. Each item carries ``_change_reason``, ``created_at``
    and ``updated_at``. Call inside the ingest transaction. The items are
    queued for the search index (``SearchPending``, PostgreSQL only).
    """
    if not items:
        return
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    if not use_copy:
        bulk_create_with_history(
            items, ReviewItem, batch_size=1000, default_user=user, default_date=items[0].created_at
        )
        results = [
            _check_result(item, outcome)
            for item, item_outcomes in zip(items, outcomes, strict=True)
            for outcome in item_outcomes
        ]
        CheckResult.objects.bulk_create(results, batch_size=2000)
        search_pending_add(item_ids=[item.pk for item in items])
        return

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [ReviewItem._meta.db_table, len(items)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for item, pk in zip(items, ids, strict=True):
        item.pk = pk
        item._state.adding = False
        item._state.db = connection.alias

    stamps = _Stamps()
    rows = [_copy_row(item.__dict__, stamps) for item in items]
    rows_copy(ReviewItem, _COPY_ITEM_NAMES, rows)
    user_id = getattr(user, "pk", None)
    rows_copy(
        _HISTORY_MODEL,
        _COPY_HISTORY_NAMES,
        (
            (
                *_COPY_HISTORY_FROM_ITEM(row),
                stamps[item.created_at],
                getattr(item, "_change_reason", ""),
                "+",
                user_id,
            )
            for item, row in zip(items, rows, strict=True)
        ),
    )
    rows_copy(
        CheckResult,
        CHECK_RESULT_COLUMNS,
        (
            (
                item.id,
                outcome.rule.id,
                outcome.rule.name,
                outcome.rule.kind,
                outcome.rule.severity,
                outcome.passed,
                outcome.message,
                stamps[item.created_at],
            )
            for item, item_outcomes in zip(items, outcomes, strict=True)
            for outcome in item_outcomes
        ),
    )
    rows_copy(SearchPending, ["item_id"], ((item.id,) for item in items))
    search_index_soon()


def check_results_of(item: ReviewItem, outcomes: list[Outcome]) -> list[CheckResult]:
    """The (unsaved) check result rows ``items_insert`` writes for ``item``'s ``outcomes``."""
    return [_check_result(item, outcome) for outcome in outcomes]


@functools.cache
def _insert_one_sql() -> str:
    """The INSERT of ``item_insert_one``.

    Only identifiers from the models' metadata are spliced in; every value is a
    parameter: the item's columns, then the history row's date, reason and
    user, then the check results as six arrays (one element per result), so
    the statement and its parameter count are the same whatever the checks:
    psycopg caches its parsing of a query of at most 50 parameters
    (``MAX_CACHED_STATEMENT_PARAMS``), and parsing this one afresh cost a
    fifth of the INSERT's CPU. The item's ``SearchPending`` row rides along
    (no extra statement).
    """
    quote = connection.ops.quote_name
    item_columns = [quote(f.column) for f in _columns(ReviewItem, skip=("id",))]
    history_model = ReviewItem.history.model
    history_columns = [
        quote(f.column) for f in _columns(history_model, skip=("history_id", *HISTORY_EXTRA))
    ]
    return (
        f"WITH item AS (INSERT INTO {quote(ReviewItem._meta.db_table)} "  # noqa: S608
        f"({', '.join(item_columns)}) VALUES ({', '.join(['%s'] * len(item_columns))}) "
        "ON CONFLICT ON CONSTRAINT unique_item_external_id DO NOTHING RETURNING *), "
        f"history AS (INSERT INTO {quote(history_model._meta.db_table)} "
        f"({', '.join([*history_columns, *HISTORY_EXTRA])}) "
        f"SELECT {', '.join(f'item.{c}' for c in history_columns)}, "
        "%s::timestamptz, %s::text, '+', %s::bigint FROM item), "
        f"pending AS (INSERT INTO {quote(SearchPending._meta.db_table)} (item_id) "
        "SELECT id FROM item), "
        f"checks AS (INSERT INTO {quote(CheckResult._meta.db_table)} "
        f"({', '.join(CHECK_RESULT_COLUMNS)}) "
        "SELECT item.id, c.rule_id, c.name, c.kind, c.severity, c.passed, c.message, "
        "item.created_at FROM item, unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], "
        "%s::boolean[], %s::text[]) WITH ORDINALITY "
        "AS c (rule_id, name, kind, severity, passed, message, n) ORDER BY c.n) "
        "SELECT id FROM item"
    )


_ITEM_FIELDS = _columns(ReviewItem, skip=("id",))
_ITEM_JSON_FIELDS = {f.attname for f in _ITEM_FIELDS if isinstance(f, models.JSONField)}


def item_insert_one(*, item: ReviewItem, outcomes: list[Outcome], user) -> bool:
    """Insert ``item`` (id assigned in place), its "+" history row and its check
    ``outcomes`` in one statement, unless its external id is taken; whether it was.

    PostgreSQL only; the single-item form of ``items_insert`` (same rows). The
    item's INSERT skips on the external id's unique constraint (``ON CONFLICT DO
    NOTHING``, waiting for a concurrent insert of the same id to commit or roll
    back), and the history and check rows are inserted from its RETURNING, so
    a skipped item writes nothing. Call inside the ingest transaction; the
    search indexer is enqueued after it commits.
    """
    params = list(_item_row(item, _ITEM_FIELDS, _ITEM_JSON_FIELDS).values())
    params += [item.created_at, getattr(item, "_change_reason", ""), getattr(user, "pk", None)]
    rules = [outcome.rule for outcome in outcomes]
    params += [
        [rule.pk for rule in rules],
        [rule.name for rule in rules],
        [rule.kind for rule in rules],
        [rule.severity for rule in rules],
        [outcome.passed for outcome in outcomes],
        [outcome.message for outcome in outcomes],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_one_sql(), params)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    search_index_soon()
    item.pk = inserted[0]
    item._state.adding = False
    item._state.db = connection.alias
    return True
