"""The item search: reviewers' notes copied onto the item, and the search documents.

An item's full-text document (``ItemSearch``) is built off the ingest path:
each write that stores an item or changes its search text adds the item's id
to ``SearchPending`` in its own transaction (one tiny row), and after commit
enqueues the indexer unless one is already waiting. ``search_index_pending``
turns pending rows into documents; the cron sweep runs it every minute so a
lost job never leaves items unsearchable for long. PostgreSQL only: the SQLite
demo searches the item's columns directly and queues nothing.
"""

import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Concat
from redis.exceptions import RedisError

from hitlplatform.degraded import degraded_record
from hitlplatform.queues import get_queue
from reviews.models import ItemSearch, ReviewItem, SearchPending
from reviews.models.items import SearchDocument

logger = logging.getLogger(__name__)

SEARCH_QUEUE = "default"
SEARCH_INDEX_JOB = "reviews.search.jobs.search_index_job"
# Set while an indexer job waits in the queue (cleared when it starts): at most one waits.
# Expires in case that job is lost; the sweep indexes meanwhile.
SEARCH_QUEUED_KEY = "hitl:search-index:queued"
SEARCH_QUEUED_TTL = 120

_INDEX_SQL = (
    "WITH taken AS ("  # noqa: S608
    f"DELETE FROM {SearchPending._meta.db_table} WHERE item_id IN ("
    f"SELECT item_id FROM {SearchPending._meta.db_table} "
    "ORDER BY item_id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING item_id), "
    f"indexed AS (INSERT INTO {ItemSearch._meta.db_table} (item_id, document) "
    f"SELECT i.id, {SearchDocument.sql('i.')} FROM {ReviewItem._meta.db_table} i "
    "JOIN taken t ON t.item_id = i.id "
    "ON CONFLICT (item_id) DO UPDATE SET document = EXCLUDED.document RETURNING 1) "
    "SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM indexed)"
)
_PENDING_SQL = (
    f"INSERT INTO {SearchPending._meta.db_table} (item_id) "
    "SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING"
)


def search_enabled() -> bool:
    """Whether items go through ``ItemSearch`` (PostgreSQL) or are searched in place."""
    return connection.vendor == "postgresql"


def search_pending_add(*, item_ids: list[int]) -> None:
    """Queue ``item_ids`` for (re)indexing, in the caller's transaction, and the
    indexer after commit (``search_index_soon``).

    For writes that go through the ORM (controls, notes); the ingest paths
    write their pending rows in their own statements (``reviews.services.bulk``)
    and call ``search_index_soon`` themselves.
    """
    if not item_ids or not search_enabled():
        return
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_SQL, [list(item_ids)])
    search_index_soon()


def search_index_soon() -> None:
    """Once the current transaction commits, enqueue the indexer job unless one
    already waits in the queue (the Redis flag ``SEARCH_QUEUED_KEY``).

    The flag is cleared by the job as it starts, before it reads the pending
    rows: a row committed after that is either seen by that run or enqueues a
    new job. Redis down: logged and counted, never raised (the rows wait in the
    database; the sweep indexes them). Inline queues (``make run``) index at once.
    ``HITL_SEARCH_INDEX_ON_COMMIT`` off leaves the indexing to the sweep.
    """
    if search_enabled() and settings.HITL_SEARCH_INDEX_ON_COMMIT:
        transaction.on_commit(_search_index_enqueue)


def _search_index_enqueue() -> None:
    try:
        queue = get_queue(SEARCH_QUEUE)
        if queue.connection.set(SEARCH_QUEUED_KEY, b"1", nx=True, ex=SEARCH_QUEUED_TTL):
            queue.enqueue(SEARCH_INDEX_JOB, job_timeout=3600, result_ttl=60)
    except RedisError as exc:
        logger.warning("Could not enqueue the search indexer: %s", exc)
        degraded_record(
            kind="enqueue",
            message=f"search indexer not enqueued ({exc}); the sweep indexes the items",
        )


def search_index_queued_run() -> int:
    """Run by the indexer job: clear the "queued" flag, then ``search_index_pending``."""
    get_queue(SEARCH_QUEUE).connection.delete(SEARCH_QUEUED_KEY)
    return search_index_pending()


def search_index_pending(*, limit: int = 5000) -> int:
    """Build the search documents of the pending items; the number indexed.

    One statement per ``limit`` rows, each its own transaction: it deletes up
    to ``limit`` pending rows, skipping rows another indexer holds (``FOR UPDATE
    SKIP LOCKED``: concurrent indexers share the queue, none waits, none
    builds a row twice), and upserts their documents. A pending row of a
    deleted item is dropped. Repeats until a statement takes fewer than ``limit``.
    """
    indexed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_INDEX_SQL, [limit])
            taken, done = cursor.fetchone()
        indexed += done
        if taken < limit:
            return indexed


def item_notes_append(*, item: ReviewItem, note: str) -> None:
    """Add a reviewer's ``note`` to ``item.review_notes`` (one note a line), for the search.

    Called by the review service, in its transaction, holding the item's row
    lock, once the note may be seen (blind review: when every required review
    is in, or for an audit review at once); the in-memory item follows so a later save of
    it keeps the note, and the item is queued for the search index. No history
    row: the note's own (``Review``) has one.
    """
    note = note.strip()
    if not note:
        return
    separator = "\n" if item.review_notes else ""
    ReviewItem.objects.filter(pk=item.pk).update(
        review_notes=Concat("review_notes", Value(separator + note))
    )
    item.review_notes = f"{item.review_notes}{separator}{note}"
    search_pending_add(item_ids=[item.pk])
