"""Building an export: stream the rows, write the files, record what went in.

The rows stream from one snapshot through server-side cursors, each split is
written to a pending file of the export storage (a hidden local file, or an
S3 multipart upload), and the files are published only when everything
succeeded, in the transaction that marks the export built. The same filters on
the same data give byte-identical files, on any storage.
"""

import hashlib
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.functions import Now
from django.utils import timezone

from datasets import formats
from datasets.formats import SkipRow
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus, Split
from datasets.selectors import export_source_rows, latest_history_ids, withheld_by_quarantine
from datasets.services.exports import export_fail
from datasets.services.pipeline import EntryCopier, Prefetch, SerialSource, batches
from datasets.services.repeats import SeenKeys
from datasets.storage import LocalPendingFile, PendingFile, pending_file, scratch_file
from hitlplatform.metrics.instruments import export_build_observed

logger = logging.getLogger(__name__)

SPLIT_METHOD = "blake2b-64 of '<seed>:<item id>' / 2**64 < validation_ratio -> validation"
ENTRY_COLUMNS = ("item_id", "history_id", "split")

ProgressCallback = Callable[[int, int], None]


class ExportBuildError(Exception):
    """The export cannot be built as requested."""


def split_of(*, seed: int, item_id: int, validation_ratio: float) -> str:
    """The item's split: a hash of seed and item id, so it never moves as data grows."""
    if validation_ratio <= 0.0:
        return Split.TRAIN.value
    digest = hashlib.blake2b(f"{seed}:{item_id}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2**64
    return Split.VALIDATION.value if draw < validation_ratio else Split.TRAIN.value


def export_build(*, export_id: int, on_progress: ProgressCallback | None = None) -> DatasetExport:
    """Build an export's files, manifest and item list; a built export is returned as is.

    The rows are read in one REPEATABLE READ transaction (one snapshot of the
    items and their history) through server-side cursors, and each split is
    written to a pending file of the export storage (``datasets.storage``); on
    PostgreSQL the exported items are COPYed meanwhile on a second connection
    (see ``pipeline``) and committed when all rows are written. A last
    transaction records the manifest and marks the export built, publishing the
    files just before it commits. Progress and a heartbeat go through a
    separate connection so the API, the admin and the sweep see them while the
    build runs; a build whose export was meanwhile failed by the sweep (or
    taken over by a newer attempt) stops at its next chunk. On any error the
    files are removed, the export is marked failed with the error, and the
    exception propagates (so the RQ job fails too). ``on_progress(rows_done,
    rows_total)`` is called after every chunk.
    """
    export = _export_start(export_id)
    if export.status == ExportStatus.SUCCEEDED:
        return export
    build = None
    try:
        with (
            _Progress(export.pk, export.build_id, on_progress) as progress,
            export_build_observed(format=export.format),
        ):
            outermost = not connection.in_atomic_block
            with transaction.atomic():
                snapshot = _begin_snapshot(isolate=outermost)
                export.rows_total = export_source_rows(export).count()
                progress(0, export.rows_total)
                postgres = connection.vendor == "postgresql"
                build = _Build(
                    export,
                    prefetch=postgres,
                    snapshot=snapshot,
                    copy_entries=postgres and outermost,
                )
                build.stream(progress)
                progress.settle()
            if build.copier is not None:
                # Committed before the export is marked built; until then (and if
                # the build fails after all) nothing shows these entries.
                build.copier.commit()
            return _export_finish(export, build)
    except Exception as exc:
        if build is not None:
            build.discard()
        export_fail(
            export_id=export_id, error=f"{type(exc).__name__}: {exc}", build_id=export.build_id
        )
        raise


def _export_start(export_id: int) -> DatasetExport:
    with transaction.atomic():
        export = DatasetExport.objects.select_for_update().get(pk=export_id)
        if export.status == ExportStatus.SUCCEEDED:
            return export
        export.status = ExportStatus.RUNNING
        export.started_at = timezone.now()
        # The database's clock, as every later beat and the sweep use: a worker
        # whose clock runs behind must not look silent from its first second.
        export.heartbeat_at = Now()
        export.build_id = uuid.uuid4().hex
        export.progress = 0.0
        export.rows_done = 0
        export.error = ""
        export.save(
            update_fields=[
                "status",
                "started_at",
                "heartbeat_at",
                "build_id",
                "progress",
                "rows_done",
                "error",
            ]
        )
        export.refresh_from_db(fields=["heartbeat_at"])
    return export


def _begin_snapshot(*, isolate: bool) -> str | None:
    """Read everything from one snapshot, without PostgreSQL's JIT (it costs more than
    it saves on one long sequential read). Call first thing in the read transaction;
    ``isolate`` is False inside an enclosing transaction, whose isolation level stays.

    Returns the exported snapshot's id when isolated, so the row source can read
    the very same snapshot on a connection of its own (``pipeline.Prefetch``).
    Inside an enclosing transaction there is none: another connection would not
    see that transaction's own writes.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        if isolate:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SET LOCAL jit = off")
        if not isolate:
            return None
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


class _Progress:
    """Writes an export's progress and heartbeat on its own autocommit connection.

    The build's transaction stays open until the end, so progress written
    through it would be invisible to everyone else until it no longer matters.
    A helper thread does the writing: it writes the latest progress as soon as
    a chunk reports it (the build does not wait for the database; reports that
    come faster than it writes are folded into the next write), and beats
    every ``HITL_EXPORT_HEARTBEAT_SECONDS`` between them (the count, the
    manifest and publishing can take a while): the sweep fails a running
    export whose heartbeat is older than ``HITL_EXPORT_HEARTBEAT_TIMEOUT``.
    Every write names the build attempt, so a build whose export is no longer
    its own (failed by the sweep, or retried meanwhile) finds out and stops:
    at the next chunk after the write that saw it, and at the latest at
    ``settle()``, which writes the final count and waits for it.
    """

    def __init__(self, export_id: int, build_id: str, callback: ProgressCallback | None) -> None:
        self.export_id = export_id
        self.build_id = build_id
        self.callback = callback
        self.connection = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.pending: tuple[int, int] | None = None
        self.pending_lock = threading.Lock()
        self.lost = False
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "_Progress":
        # SQLite (the embedded default, jobs inline) allows no writer beside an open
        # read transaction; nobody polls there, so the row is updated at the end only.
        # Inside an enclosing transaction nobody else sees the running export at all.
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
            self.connection.inc_thread_sharing()  # used under self.lock by both threads
            self.thread = threading.Thread(
                target=self._beat, name=f"export-{self.export_id}-heartbeat", daemon=True
            )
            self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join()
        if self.connection is not None:
            self.connection.dec_thread_sharing()
            self.connection.close()

    def __call__(self, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(done, total)
        if self.connection is None:
            return
        self.check()
        with self.pending_lock:
            self.pending = (done, total)
        self.wake.set()

    def settle(self) -> None:
        """Write the last reported progress now, and raise if the export was taken."""
        if self.connection is not None:
            self._write_pending()
        self.check()

    def check(self) -> None:
        """Raise if this build no longer owns its export (see the class docstring)."""
        if self.lost:
            raise ExportBuildError(
                f"Export {self.export_id} was taken from this build (the sweep saw no "
                "heartbeat, or a newer attempt started)."
            )

    def _beat(self) -> None:
        while not self.stop.is_set():
            woken = self.wake.wait(settings.HITL_EXPORT_HEARTBEAT_SECONDS)
            self.wake.clear()
            if self.stop.is_set():
                return
            try:
                if woken:
                    self._write_pending()
                else:
                    self._write("", [])
            except Exception:  # the next write raises it in the build (settle)
                logger.exception("Export %s: heartbeat failed", self.export_id)

    def _write_pending(self) -> None:
        with self.pending_lock:
            pending, self.pending = self.pending, None
        if pending is None:
            self._write("", [])
            return
        done, total = pending
        progress = min(done / total, 1.0) if total else 0.0
        self._write("rows_done = %s, rows_total = %s, progress = %s", [done, total, progress])

    def _write(self, assignments: str, params: list) -> None:
        table = DatasetExport._meta.db_table
        sets = f"{assignments}, heartbeat_at = now()" if assignments else "heartbeat_at = now()"
        with self.lock, self.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {sets} "  # noqa: S608
                "WHERE id = %s AND status = %s AND build_id = %s",
                [*params, self.export_id, ExportStatus.RUNNING.value, self.build_id],
            )
            if cursor.rowcount == 0:
                self.lost = True


class _Build:
    """The state of one build: pending files, counters and the de-duplication set.

    What to read and how to write it is the format's (``datasets.formats``).
    """

    def __init__(
        self,
        export: DatasetExport,
        *,
        prefetch: bool,
        snapshot: str | None = None,
        copy_entries: bool,
    ) -> None:
        """``prefetch``: fetch rows in a helper thread (PostgreSQL), on a connection of
        its own reading the exported ``snapshot`` when there is one (else on the
        build's). ``copy_entries``: COPY the exported items on a connection of their
        own, in a helper thread (only when the build is not inside an enclosing
        transaction, which could not see them).
        """
        self.export = export
        self.spec = formats.get(export.format)
        self.prefetch = prefetch
        self.snapshot = snapshot
        self.copier: EntryCopier | None = None
        build_id = export.build_id
        splits = [Split.TRAIN.value]
        if export.validation_ratio > 0:
            splits.append(Split.VALIDATION.value)
        self.files: dict[str, PendingFile] = {}
        self.entries: LocalPendingFile | None = None
        self.manifest_items: LocalPendingFile | None = None
        self.manifest: PendingFile | None = None
        try:
            for split in splits:
                self.files[split] = pending_file(
                    export.file_name(split), build_id=build_id, content_type=export.content_type
                )
            # The exported items as JSON array elements of the manifest's item
            # list, and as COPY text rows for the database (sent at once to the
            # copier, or kept in a local scratch file and inserted at the end).
            self.manifest_items = scratch_file(
                f"{export.file_stem}-manifest-items", build_id=build_id
            )
            if copy_entries:
                self.copier = EntryCopier(export.pk)
            else:
                self.entries = scratch_file(f"{export.file_stem}-items", build_id=build_id)
        except Exception:
            self.discard()
            raise
        self.rows: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.duplicates = 0
        self.item_count = 0
        self._seen = SeenKeys()
        self._last_item: int | None = None
        if self.spec.header:
            for pending in self.files.values():
                pending.write(self.spec.header)

    def discard(self) -> None:
        if self.copier is not None:
            self.copier.abort()
        for pending in [*self.files.values(), self.entries, self.manifest_items, self.manifest]:
            if pending is not None:
                pending.discard()

    def stream(self, progress: ProgressCallback) -> None:
        export = self.export
        join = self.spec.join
        chunk = settings.HITL_EXPORT_CHUNK_SIZE
        total = export.rows_total or 0
        done = 0
        rows, history = export_source_rows(export), latest_history_ids(export)
        if self.prefetch:
            source = Prefetch(
                rows, history, chunk=chunk, name=f"export_{export.pk}", snapshot=self.snapshot
            )
        else:
            source = SerialSource(rows, history, chunk=chunk)
        with source:
            for batch in source:
                lines: dict[str, list] = {split: [] for split in self.files}
                entries: list[tuple[int, int | None, str]] = []
                self._encode(batch, lines, entries)
                for split, split_rows in lines.items():
                    if split_rows:
                        self.files[split].write(join(split_rows))
                        self.rows[split] += len(split_rows)
                self._record(entries)
                done += len(batch)
                progress(done, max(total, done))

    def _record(self, entries: list[tuple[int, int | None, str]]) -> None:
        """The chunk's new items: COPY text rows for the database (NULL is \\N) and
        elements of the manifest's item list (NULL is null)."""
        if not entries:
            return
        copy_prefix = f"{self.export.pk}\t"
        if self._splitter() is None:
            # One split: each item formatted once, the rest done on the whole chunk.
            pairs = "\n".join([f"{item}\t{history}" for item, history, _split in entries])
            split = entries[0][2]
            row_end = f"\t{split}\n"
            copy_rows = copy_prefix + pairs.replace("\n", row_end + copy_prefix) + row_end
            item_end = f',"{split}"]'
            items = pairs.replace("\t", ",").replace("\n", item_end + ",\n    [")
            items = "\n    [" + items + item_end
        else:
            copy_rows = "".join(
                [f"{copy_prefix}{item}\t{history}\t{split}\n" for item, history, split in entries]
            )
            items = ",".join(
                [f'\n    [{item},{history},"{split}"]' for item, history, split in entries]
            )
        if "\tNone\t" in copy_rows:  # an item without a history row
            copy_rows = copy_rows.replace("\tNone\t", "\t\\N\t")
            items = items.replace(",None,", ",null,")
        if self.copier is not None:
            self.copier.write(copy_rows.encode())
        else:
            self.entries.write(copy_rows.encode())
        self.manifest_items.write(("," if self.item_count else "").encode() + items.encode())
        self.item_count += len(entries)

    def _splitter(self) -> Callable[[int], str] | None:
        """The split of an item id; None when every item goes to train."""
        seed, ratio = self.export.seed, self.export.validation_ratio
        if ratio <= 0:
            return None
        return lambda item_id: split_of(seed=seed, item_id=item_id, validation_ratio=ratio)

    def _encode(self, batch, lines, entries) -> None:
        """One chunk: each row's line into its item's split, each new item into ``entries``.

        Rows come ordered by item id, so an item is entered once, with its first
        written line (triplet formats write several lines per item). With
        deduplication on, a row whose repeat key was written before is dropped.
        This loop runs once per exported row, so it keeps to local names.
        """
        encode = self.spec.encoder(batch)
        skipped = self.skipped
        splitter = self._splitter()
        train = Split.TRAIN.value  # read once: an enum's .value is a property
        split = train
        train_lines = lines[train]
        last_item = self._last_item
        duplicates = 0
        # Each row with its repeat key and whether that key was written in an earlier chunk.
        repeat_key = self.spec.dedupe_key if self.export.deduplicate else None
        if repeat_key is None:
            keyed = zip(batch, repeat(None), repeat(False))
        else:
            keys = [repeat_key(row) for row in batch]
            keyed = zip(batch, keys, self._seen.contains(keys), strict=True)
        written: set[bytes] = set()  # the keys written in this chunk
        for row, key, earlier in keyed:
            if key is not None and (earlier or key in written):
                duplicates += 1
                continue
            try:
                line = encode(row)
            except SkipRow as skip:
                skipped[skip.reason] += 1
                continue
            if key is not None:
                written.add(key)
            item_id = row[0]
            if splitter is None:
                train_lines.append(line)
            else:
                split = splitter(item_id)
                lines[split].append(line)
            if item_id != last_item:
                entries.append((item_id, row[-1], split))
                last_item = item_id
        self._last_item = last_item
        self.duplicates += duplicates
        self._seen.add(list(written))

    def counts(self) -> dict[str, Any]:
        return {
            "rows": {split: self.rows[split] for split in self.files},
            "source_rows": self.export.rows_total,
            "items": self.item_count,
            "duplicates": self.duplicates,
            "skipped": dict(sorted(self.skipped.items())),
        }

    def write_manifest(self, summary: dict[str, Any]) -> None:
        """The manifest file: the summary, then every exported item, in constant memory."""
        self.manifest_items.close()
        self.manifest = pending_file(
            self.export.manifest_name,
            build_id=self.export.build_id,
            content_type="application/json",
        )
        head = orjson.dumps(summary, option=orjson.OPT_INDENT_2)
        # Splice the item list in as the last key of the summary object.
        self.manifest.write(head[:-2] + b',\n  "items": [')
        for block in self.manifest_items.read_back():
            self.manifest.write(block)
        self.manifest.write(b"\n  ]\n}\n")

    def publish(self) -> None:
        for pending in [*self.files.values(), self.manifest]:
            pending.publish()


def _insert_entries(path: Path) -> None:
    """Record the exported items from the COPY text file ``path`` (constant memory)."""
    table = DatasetExportItem._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, path.open("rb") as source:
            sql = f"COPY {table} (export_id, item_id, history_id, split) FROM STDIN"
            with cursor.copy(sql) as copy:
                while block := source.read(1024 * 1024):
                    copy.write(block)
        return
    with path.open("r", encoding="utf-8") as source:
        rows = (line.rstrip("\n").split("\t") for line in source)
        for batch in batches(rows, 5000):
            DatasetExportItem.objects.bulk_create(
                DatasetExportItem(
                    export_id=int(export_id),
                    item_id=int(item_id),
                    history_id=None if history == "\\N" else int(history),
                    split=split,
                )
                for export_id, item_id, history, split in batch
            )


def _export_finish(export: DatasetExport, build: _Build) -> DatasetExport:
    with transaction.atomic():
        locked = DatasetExport.objects.select_for_update().get(pk=export.pk)
        if locked.status != ExportStatus.RUNNING or locked.build_id != export.build_id:
            raise ExportBuildError(
                f"Export {export.pk} is {locked.status} and no longer this build's."
            )
        for pending in build.files.values():
            pending.close()
        files = {
            split: {
                "name": pending.name,
                "rows": build.rows[split],
                "bytes": pending.size,
                "sha256": pending.sha256,
            }
            for split, pending in build.files.items()
        }
        counts = build.counts()
        counts["withheld"] = {"quarantined": withheld_by_quarantine(export)}
        built_at = timezone.now()
        summary = {
            "export_id": export.pk,
            "name": export.name,
            "format": build.spec.key,
            "filters": export.filters,
            "split": {
                "seed": export.seed,
                "validation_ratio": export.validation_ratio,
                "method": SPLIT_METHOD,
            },
            "deduplicate": export.deduplicate,
            "counts": counts,
            "files": files,
            "created_by": export.created_by.get_username() if export.created_by else None,
            "created_via": export.created_via,
            "created_at": export.created_at.isoformat(),
            "built_at": built_at.isoformat(),
            "item_columns": list(ENTRY_COLUMNS),
        }
        build.write_manifest(summary)
        if build.entries is not None:
            build.entries.close()
            _insert_entries(build.entries.tmp)
            build.entries.discard()
        build.publish()
        build.manifest_items.discard()
        locked.status = ExportStatus.SUCCEEDED
        locked.progress = 1.0
        locked.files = files
        locked.counts = counts
        locked.row_count = sum(build.rows.values())
        locked.item_count = build.item_count
        locked.manifest = summary
        locked.finished_at = built_at
        locked.save(
            update_fields=[
                "status",
                "progress",
                "files",
                "counts",
                "row_count",
                "item_count",
                "manifest",
                "finished_at",
            ]
        )
    return locked
