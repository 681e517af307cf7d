"""Reviewed data for export tests: items ingested for real, then finalised for real.

Each item goes pending_review -> in_review -> final through the state machine
and ``item_finalize``, with its Review (and correction triplet) rows, under the
item's row lock, as the workspace does.
"""

from django.contrib.auth import get_user_model
from django.db import transaction

from reviews.models import CorrectionTriplet, Review, ReviewItem
from reviews.services.decisions import item_finalize
from reviews.services.transitions import item_transition
from tests.factories import ingest, item_payload


def reviewer_named(username: str):
    user, _created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True}
    )
    return user


def reviewed(
    project,
    *,
    verdict: str = "approve",
    corrected_output: str | None = None,
    reason_code: str = "",
    severity: str = "none",
    reviewer=None,
    adjudicated: bool = False,
    **payload,
) -> ReviewItem:
    """Ingest one item and make ``verdict`` final on it, with its review rows."""
    reviewer = reviewer or reviewer_named("rev-export")
    if verdict != "approve" and not reason_code:
        reason_code = "factual_error"
    (item,) = ingest(project, item_payload(**payload))
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item.pk)
        item_transition(item=item, to_status="in_review", reason="claimed", user=reviewer)
        review = Review.objects.create(
            item=item,
            reviewer=reviewer,
            verdict=verdict,
            corrected_output=corrected_output,
            reason_code=reason_code,
            severity=severity,
            note=f"{verdict} by {reviewer.username}",
            seconds_spent=12.5,
        )
        if verdict == "correct":
            CorrectionTriplet.objects.create(
                review=review,
                item=item,
                attribute=f"chars 0-{len(item.output)}",
                old_value=item.output,
                new_value=corrected_output,
            )
        item_finalize(
            item=item,
            verdict=verdict,
            corrected_output=corrected_output,
            reason_code=reason_code,
            severity=severity,
            user=reviewer,
            reason=f"Reviewed: {verdict}",
            adjudicated=adjudicated,
        )
    return item


def reviewed_many(project, count: int) -> None:
    """``count`` approved items with a history row each, copied in SQL from one real one.

    One item goes through ingest and review for real; the copies differ in
    external id, prompt and gold answer (no duplicates), made by INSERT ...
    SELECT over generate_series, so a large export costs seconds to seed.
    """
    from django.db import connection

    template = reviewed(project)
    table = ReviewItem._meta.db_table
    history = ReviewItem.history.model._meta.db_table
    varied = {
        "external_id": "t.external_id || '-copy-' || g",
        "prompt": "t.prompt || ' (copy ' || g || ')'",
        "final_output": "t.final_output || ' (copy ' || g || ', checked by a pharmacist.)'",
    }
    columns = [f.column for f in ReviewItem._meta.concrete_fields if f.column != "id"]
    select = ", ".join(varied.get(column, f't."{column}"') for column in columns)
    names = ", ".join(f'"{column}"' for column in columns)
    history_columns = {f.column for f in ReviewItem.history.model._meta.concrete_fields}
    shared = ", ".join(
        f'"{f.column}"' for f in ReviewItem._meta.concrete_fields if f.column in history_columns
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{table}" ({names}) SELECT {select} '  # noqa: S608
            f'FROM generate_series(1, %s) AS g, (SELECT * FROM "{table}" WHERE id = %s) AS t',
            [count - 1, template.pk],
        )
        cursor.execute(
            f'INSERT INTO "{history}" ({shared}, history_date, history_change_reason, '  # noqa: S608
            f"history_type) SELECT {shared}, now(), 'Reviewed (copy)', '~' FROM \"{table}\" "
            "WHERE project_id = %s AND id <> %s",
            [project.pk, template.pk],
        )
