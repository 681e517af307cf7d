"""Overlapping database work with encoding during a build (PostgreSQL).

Reading rows and recording the exported items are PostgreSQL work, encoding
lines is Python work; done one after the other they add up. Two helper threads
let them overlap: ``Prefetch`` fetches the next chunk from the build's
server-side cursors while the current one is encoded, and ``EntryCopier``
COPYs the exported items on a connection of its own. psycopg releases the GIL
while it waits for the server, so the threads cost little Python time.
"""

import itertools
import operator
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import QuerySet
from psycopg import sql

from datasets.models import DatasetExportItem

_DONE = object()


def batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class HistoryIds:
    """Each row's latest history id, from a stream of ``(item id, history id)`` rows.

    Both streams are ordered by item id; ``attach(batch)`` returns the batch's
    rows, each with its item's history id appended (None when it has none).
    ``fetch(n)`` returns up to ``n`` more history rows (none at the end).
    """

    def __init__(self, fetch: Callable[[int], list[tuple]], size: int) -> None:
        self.fetch = fetch
        self.size = size
        self.buffer: list[tuple] = []
        self.pos = 0
        self.exhausted = False

    def _ensure(self, count: int) -> None:
        """At least ``count`` unread history rows in the buffer, unless the stream ended."""
        if len(self.buffer) - self.pos >= count or self.exhausted:
            return
        rest = self.buffer[self.pos :]
        while len(rest) < count and not self.exhausted:
            more = self.fetch(max(self.size, count - len(rest)))
            self.exhausted = not more
            rest.extend(more)
        self.buffer, self.pos = rest, 0

    def attach(self, batch: list[tuple]) -> list[tuple]:
        if not batch:
            return []
        self._latest(batch[0][0])  # past the items before this batch
        count = len(batch)
        self._ensure(count)
        window = self.buffer[self.pos : self.pos + count]
        # Item formats read one row per item, and every item has history: the
        # next ``count`` history rows are the batch's items, in order.
        if len(window) == count and [h[0] for h in window] == [row[0] for row in batch]:
            self.pos += count - 1  # the last stays: the next batch may go on with its item
            return list(map(operator.add, batch, [(h[1],) for h in window]))
        return [(*row, self._latest(row[0])) for row in batch]

    def _latest(self, item_id: int) -> int | None:
        while True:
            if self.pos == len(self.buffer):
                self._ensure(1)
                if self.pos == len(self.buffer):
                    return None
            found, latest = self.buffer[self.pos]
            if found == item_id:
                return latest  # not consumed: the item's next row (triplets) takes it too
            if found > item_id:
                return None
            self.pos += 1


class Prefetch:
    """Batches of rows with their history ids (``HistoryIds``), fetched one chunk ahead
    in a thread.

    Uses two named (server-side) cursors, so the rows come from the build's
    snapshot: with ``snapshot`` (the id of the build's exported snapshot) on a
    connection of its own that imports it, so the build's own queries per chunk
    (a format's marks or reviews) never wait behind a fetch; without, on the
    build's psycopg connection, inside its open transaction.
    Use as a context manager: leaving it stops the thread and closes the cursors.
    """

    def __init__(
        self, rows: QuerySet, history: QuerySet, *, chunk: int, name: str, snapshot: str | None
    ) -> None:
        self.queries = [rows.query.sql_with_params(), history.query.sql_with_params()]
        self.snapshot = snapshot
        self.own = None
        if snapshot is not None:
            self.own = connections.create_connection(DEFAULT_DB_ALIAS)
            self.own.inc_thread_sharing()  # opened here, used by the thread, closed here
            self.own.ensure_connection()
            self.raw = self.own.connection
        else:
            connection.ensure_connection()
            # The calling thread's psycopg connection: ``django.db.connection`` is
            # per thread, and the cursors must live in the caller's transaction.
            self.raw = connection.connection
        self.chunk = chunk
        self.name = name
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"{name}-prefetch", daemon=True)

    def __enter__(self) -> "Prefetch":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
        self.thread.join()
        if self.own is not None:
            self.own.dec_thread_sharing()
            self.own.close()

    def __iter__(self) -> Iterator[list]:
        while (batch := self.queue.get()) is not _DONE:
            yield batch
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            if self.snapshot is not None:
                # The build's snapshot, read only, without JIT (see build._begin_snapshot).
                self.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                self.raw.execute(
                    sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot))
                )
                self.raw.execute("SET LOCAL jit = off")
            cursors = [self.raw.cursor(name=f"{self.name}_{n}") for n in range(2)]
            try:
                for cursor, (query, params) in zip(cursors, self.queries, strict=True):
                    cursor.itersize = self.chunk
                    cursor.execute(query, params)
                rows, history = cursors
                attached = HistoryIds(history.fetchmany, self.chunk)
                while batch := rows.fetchmany(self.chunk):
                    if self.stop.is_set():
                        return
                    self.queue.put(attached.attach(batch))
            finally:
                for cursor in cursors:
                    cursor.close()
        except BaseException as exc:  # handed to the consuming thread
            self.error = exc
        finally:
            self.queue.put(_DONE)


class EntryCopier:
    """COPYs the exported items (COPY text rows) on its own connection, in a thread.

    Everything goes in one transaction, committed by ``commit()`` once the
    build has written every row; ``abort()`` (or an error) rolls it back.
    """

    def __init__(self, export_id: int) -> None:
        self.export_id = export_id
        self.queue: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.commit_requested = False
        self.thread = threading.Thread(target=self._run, name=f"export-{export_id}-entries")
        self.thread.start()

    def write(self, data: bytes) -> None:
        self._raise()
        self.queue.put(data)

    def commit(self) -> None:
        self.commit_requested = True
        self.queue.put(_DONE)
        self.thread.join()
        self._raise()

    def abort(self) -> None:
        if self.thread.is_alive():
            self.queue.put(_DONE)
            self.thread.join()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        own = connections.create_connection(DEFAULT_DB_ALIAS)
        table = DatasetExportItem._meta.db_table
        try:
            own.set_autocommit(False)
            with own.cursor() as cursor:
                # Entries of an earlier, failed attempt at this export go first.
                cursor.execute(f"DELETE FROM {table} WHERE export_id = %s", [self.export_id])  # noqa: S608
                sql = f"COPY {table} (export_id, item_id, history_id, split) FROM STDIN"
                with cursor.copy(sql) as copy:
                    while (data := self.queue.get()) is not _DONE:
                        copy.write(data)
            if self.commit_requested:
                own.commit()
            else:
                own.rollback()
        except BaseException as exc:  # handed to the build thread
            self.error = exc
            while self.queue.get() is not _DONE:
                pass
        finally:
            own.close()


class SerialSource:
    """The same batches as ``Prefetch``, read in the calling thread (any database)."""

    def __init__(self, rows: QuerySet, history: QuerySet, *, chunk: int) -> None:
        self.rows = rows.iterator(chunk_size=chunk)
        self.history = history.iterator(chunk_size=chunk)
        self.chunk = chunk

    def __enter__(self) -> "SerialSource":
        return self

    def __exit__(self, *exc_info) -> None:
        # Close the server-side cursors while their transaction is still open.
        self.rows.close()
        self.history.close()

    def __iter__(self) -> Iterator[list]:
        history = self.history
        attached = HistoryIds(lambda n: list(itertools.islice(history, n)), self.chunk)
        for batch in batches(self.rows, self.chunk):
            yield attached.attach(batch)
