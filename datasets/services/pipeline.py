"""Overlapping database work with encoding during a build (PostgreSQL).

Reading rows and recording the exported items are PostgreSQL work, encoding
lines is Python work; done one after the other they add up. Two helper threads
let them overlap: ``Prefetch`` fetches the next chunk from the build's
server-side cursors while the current one is encoded, and ``EntryCopier``
COPYs the exported items on a connection of its own. psycopg releases the GIL
while it waits for the server, so the threads cost little Python time.
"""

import itertools
import queue
import threading
from collections.abc import Iterable, Iterator

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import QuerySet

from datasets.models import DatasetExportItem

_DONE = object()


def batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def with_history(rows: Iterable[tuple], history: Iterable[tuple]) -> Iterator[tuple]:
    """Append each row's latest history id; both streams are ordered by item id."""
    history = iter(history)
    current = next(history, None)
    for row in rows:
        item_id = row[0]
        while current is not None and current[0] < item_id:
            current = next(history, None)
        yield (*row, current[1] if current is not None and current[0] == item_id else None)


def _fetch(cursor, size: int) -> Iterator[tuple]:
    while rows := cursor.fetchmany(size):
        yield from rows


class Prefetch:
    """Batches of ``with_history(rows, history)``, fetched one chunk ahead in a thread.

    Uses two named (server-side) cursors on the build's own psycopg connection,
    inside its open transaction, so the rows come from the build's snapshot.
    Use as a context manager: leaving it stops the thread and closes the cursors.
    """

    def __init__(self, rows: QuerySet, history: QuerySet, *, chunk: int, name: str) -> None:
        self.queries = [rows.query.sql_with_params(), history.query.sql_with_params()]
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

    def __iter__(self) -> Iterator[list]:
        while (batch := self.queue.get()) is not _DONE:
            yield batch
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            cursors = [self.raw.cursor(name=f"{self.name}_{n}") for n in range(2)]
            try:
                for cursor, (sql, params) in zip(cursors, self.queries, strict=True):
                    cursor.itersize = self.chunk
                    cursor.execute(sql, params)
                rows = with_history(_fetch(cursors[0], self.chunk), _fetch(cursors[1], self.chunk))
                for batch in batches(rows, self.chunk):
                    if self.stop.is_set():
                        return
                    self.queue.put(batch)
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
        return batches(with_history(self.rows, self.history), self.chunk)
