"""Bulk inserts for ingest: new items, their history rows and their check results.

On PostgreSQL the rows go in with COPY, ids taken from the table's sequence
first; this is what lets one request store 1,000 checked items with their
history in well under a second. Elsewhere (the SQLite demo) the same rows go
through the ORM (``bulk_create_with_history``). Both paths write the same rows.
"""

from collections.abc import Iterable, Sequence

from django.db import connection, models
from simple_history.utils import bulk_create_with_history

from reviews.checks import Outcome
from reviews.jsontext import json_bytes
from reviews.models import CheckResult, ReviewItem

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
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
            copy.write_row(row)


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


def items_insert(
    *,
    items: list[ReviewItem],
    outcomes: list[list[Outcome]],
    user,
    use_copy: bool | None = None,
) -> None:
    """Insert new ``items`` (ids assigned in place), one "+" history row each, and
    their check ``outcomes``. Each item carries ``_change_reason``, ``created_at``
    and ``updated_at``. Call inside the ingest transaction.
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

    item_fields = _columns(ReviewItem)
    json_fields = {f.attname for f in item_fields if isinstance(f, models.JSONField)}
    rows = [_item_row(item, item_fields, json_fields) for item in items]
    rows_copy(ReviewItem, [f.attname for f in item_fields], (list(row.values()) for row in rows))

    history_model = ReviewItem.history.model
    history_fields = _columns(history_model, skip=("history_id", *HISTORY_EXTRA))
    names = [f.attname for f in history_fields]
    user_id = getattr(user, "pk", None)
    rows_copy(
        history_model,
        [*names, *HISTORY_EXTRA],
        (
            [
                *(row[name] for name in names),
                item.created_at,
                getattr(item, "_change_reason", ""),
                "+",
                user_id,
            ]
            for item, row in zip(items, rows, strict=True)
        ),
    )

    rows_copy(
        CheckResult,
        CHECK_RESULT_COLUMNS,
        (
            (
                item.pk,
                outcome.rule.pk,
                outcome.rule.name,
                outcome.rule.kind,
                outcome.rule.severity,
                outcome.passed,
                outcome.message,
                item.created_at,
            )
            for item, item_outcomes in zip(items, outcomes, strict=True)
            for outcome in item_outcomes
        ),
    )
