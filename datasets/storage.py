"""Where export files live, and the writers that make them appear all at once.

Export files go through Django's storage API, the ``exports`` alias of
``settings.STORAGES``: a local directory (``ExportFileSystemStorage`` at
``HITL_EXPORT_DIR``, the embedded default) or S3-compatible object storage
(django-storages' ``S3Storage``). Either way a file is written under a name
nobody reads and published whole:

- local: a hidden temporary file in the final directory, renamed into place
  (atomic on one file system);
- S3: a multipart upload to the final key, its parts sent by a helper thread
  while the build goes on; the object exists only once the upload is
  completed, in one request.

Temporary names carry the export id and the build id, so the sweep can tell
the leftovers of a killed build from the files of a live one.
"""

import contextlib
import hashlib
import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.utils import clean_name

# Buffered writes: one syscall per megabyte rather than per line.
WRITE_BUFFER = 1024 * 1024
STORAGE_ALIAS = "exports"

# ".<final name>.<build id>.<mkstemp's random part>.tmp", in the export directory.
TEMP_NAME = re.compile(
    r"^\.(?P<final>export-(?P<export>\d+)-[^/]*?)(?:\.(?P<build>[0-9a-f]{32}))?\.[^./]+\.tmp$"
)
FINAL_NAME = re.compile(r"^export-(?P<export>\d+)-")


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


class ExportFileSystemStorage(FileSystemStorage):
    """``FileSystemStorage`` whose default location is ``HITL_EXPORT_DIR``, read when used."""

    @property
    def base_location(self):
        return self._value_or_setting(self._location, settings.HITL_EXPORT_DIR)

    @property
    def location(self):
        return os.path.abspath(self.base_location)


def export_storage() -> Storage:
    """The storage export files are written to and served from."""
    return storages[STORAGE_ALIAS]


def is_local(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def scratch_dir() -> Path:
    """This machine's directory for temporary files: ``HITL_EXPORT_DIR``.

    With local storage the exports themselves live there too; with object
    storage it holds only a build's scratch files (never served).
    """
    return Path(settings.HITL_EXPORT_DIR)


def export_path(name: str) -> Path | None:
    """The local path of a stored export file, or None when storage is remote."""
    storage = export_storage()
    return Path(storage.path(name)) if is_local(storage) else None


def export_location(name: str) -> str:
    """Where a stored file is, for people: a path, or ``s3://bucket/key``."""
    storage = export_storage()
    if is_local(storage):
        return storage.path(name)
    return f"s3://{storage.bucket_name}/{_key(storage, name)}"


def _key(storage: Storage, name: str) -> str:
    return storage._normalize_name(clean_name(name))


def _client(storage: Storage):
    """The boto3 client of an ``S3Storage`` (thread-safe, unlike its resources)."""
    return storage.connection.meta.client


class PendingFile:
    """A file being written that nobody sees until ``publish()``.

    ``write()`` appends (and hashes, when ``hashed``), ``publish()`` makes it
    appear whole under its final name, ``discard()`` removes whatever exists.
    """

    def __init__(self, *, hashed: bool) -> None:
        self._sha = hashlib.sha256() if hashed else None
        self.size = 0
        self.published = False

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest() if self._sha is not None else ""

    def write(self, data: bytes) -> None:
        self._write(data)
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish writing (everything written is durable, nothing is visible yet)."""

    def publish(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class LocalPendingFile(PendingFile):
    """A hidden temporary file in its final directory, renamed into place by ``publish()``."""

    def __init__(self, final: Path, *, build_id: str, hashed: bool = True) -> None:
        super().__init__(hashed=hashed)
        self.final = final
        self.name = final.name
        final.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{final.name}.{build_id}." if build_id else f".{final.name}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=final.parent)
        self.tmp = Path(tmp)
        self.handle: BinaryIO = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)

    def _write(self, data: bytes) -> None:
        self.handle.write(data)

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()

    def publish(self) -> None:
        self.close()
        # mkstemp creates 0600 files; web processes and workers may be different users.
        os.chmod(self.tmp, FILE_MODE)
        os.replace(self.tmp, self.final)
        self.published = True

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        for path in (self.tmp, self.final if self.published else None):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def read_back(self) -> Iterator[bytes]:
        """What was written, in blocks (the file must be closed)."""
        with self.tmp.open("rb") as source:
            while block := source.read(WRITE_BUFFER):
                yield block


_DONE = object()


class MultipartPendingFile(PendingFile):
    """A multipart upload to the final key of an ``S3Storage``.

    Writes fill parts of ``HITL_EXPORT_PART_MB`` (one more of it every 1,000
    parts, so S3's 10,000 parts reach past 250 GB); a helper thread sends each
    full part while the build fills the next. Two part buffers are reused
    (double buffering), so memory stays at two parts per file and nothing is
    copied on the way. ``publish()`` completes the upload: the object appears
    whole, in one request. ``discard()`` aborts it (or deletes the object once
    published). A killed build leaves an incomplete upload, which the sweep
    aborts.
    """

    BUFFERS = 2
    PARTS_PER_STEP = 1000

    def __init__(self, storage: Storage, name: str, *, content_type: str) -> None:
        super().__init__(hashed=True)
        self.storage = storage
        self.name = name
        self.key = _key(storage, name)
        self.client = _client(storage)
        self.part_size = settings.HITL_EXPORT_PART_MB * 1024 * 1024
        params = storage._get_write_parameters(self.key)
        params["ContentType"] = content_type
        upload = self.client.create_multipart_upload(
            Bucket=storage.bucket_name, Key=self.key, **params
        )
        self.upload_id = upload["UploadId"]
        self.parts: list[dict] = []
        self.current: bytearray | None = None
        self.used = 0
        self.handed = 0
        self.allocated = 0
        self.error: BaseException | None = None
        self.outbox: queue.Queue = queue.Queue()
        self.returned: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._send, name=f"upload-{name}", daemon=True)
        self.thread.start()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.current is None:
                self.current = self._free_buffer()
                self.used = 0
            piece = view[: self._part_size() - self.used]
            end = self.used + len(piece)
            if len(self.current) == self.used:  # a new buffer grows
                self.current += piece
            else:  # a returned one is overwritten in place (growing past its end if need be)
                self.current[self.used : end] = piece
            self.used = end
            view = view[len(piece) :]
            if self.used == self._part_size():
                self._hand_over()

    def _part_size(self) -> int:
        return self.part_size * (1 + self.handed // self.PARTS_PER_STEP)

    def _free_buffer(self) -> bytearray:
        if self.allocated < self.BUFFERS:
            self.allocated += 1
            return bytearray()
        buffer = self.returned.get()
        if self.error is not None:
            raise self.error
        return buffer

    def _hand_over(self) -> None:
        if self.error is not None:
            raise self.error
        buffer = self.current if self.current is not None else bytearray()
        del buffer[self.used :]  # the last part may be shorter
        self.current = None
        self.handed += 1
        self.outbox.put((self.handed, buffer))

    def _send(self) -> None:
        while (task := self.outbox.get()) is not _DONE:
            number, buffer = task
            if self.error is None:
                try:
                    answer = self.client.upload_part(
                        Bucket=self.storage.bucket_name,
                        Key=self.key,
                        UploadId=self.upload_id,
                        PartNumber=number,
                        Body=buffer,
                    )
                    self.parts.append({"ETag": answer["ETag"], "PartNumber": number})
                except BaseException as exc:  # handed to the build thread
                    self.error = exc
            self.returned.put(buffer)

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        # The last part may be small; an empty file is one empty part.
        if self.used or not self.handed:
            self._hand_over()
        self.outbox.put(_DONE)
        self.thread.join()
        self.current = None
        self.returned = queue.Queue()  # let the buffers go
        if self.error is not None:
            raise self.error

    def publish(self) -> None:
        self.close()
        self.client.complete_multipart_upload(
            Bucket=self.storage.bucket_name,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )
        self.published = True

    def discard(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or RuntimeError("discarded")
            self.outbox.put(_DONE)
            self.thread.join()
        bucket = self.storage.bucket_name
        with contextlib.suppress(Exception):  # best effort; the sweep aborts what is left
            if self.published:
                self.client.delete_object(Bucket=bucket, Key=self.key)
            else:
                self.client.abort_multipart_upload(
                    Bucket=bucket, Key=self.key, UploadId=self.upload_id
                )


def pending_file(name: str, *, build_id: str, content_type: str) -> PendingFile:
    """A file to publish under ``name`` in the export storage."""
    storage = export_storage()
    if is_local(storage):
        return LocalPendingFile(Path(storage.path(name)), build_id=build_id)
    return MultipartPendingFile(storage, name, content_type=content_type)


def scratch_file(name: str, *, build_id: str) -> LocalPendingFile:
    """A local temporary file of a build, never published (read back, then discarded)."""
    return LocalPendingFile(scratch_dir() / name, build_id=build_id, hashed=False)


def export_open(name: str) -> tuple[BinaryIO, int]:
    """Open a stored export file for streaming: ``(readable, size in bytes)``.

    ``FileNotFoundError`` when it is missing. Nothing is read ahead: from S3
    the object's body streams as the caller reads (``S3Storage.open`` would
    download the whole object first).
    """
    storage = export_storage()
    if is_local(storage):
        handle = Path(storage.path(name)).open("rb")  # noqa: SIM115 (the caller closes it)
        return handle, os.fstat(handle.fileno()).st_size
    try:
        answer = _client(storage).get_object(Bucket=storage.bucket_name, Key=_key(storage, name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(name) from exc
        raise
    return answer["Body"], answer["ContentLength"]


def export_url(name: str, *, filename: str, content_type: str) -> str | None:
    """A short-lived presigned download URL, when storage is S3 and they are enabled."""
    storage = export_storage()
    if is_local(storage) or not settings.HITL_S3_PRESIGNED_DOWNLOADS:
        return None
    return storage.url(
        name,
        parameters={
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": content_type,
        },
        expire=settings.HITL_S3_PRESIGNED_EXPIRY,
    )


def export_files_delete(names: list[str]) -> None:
    """Delete stored export files; missing ones are no error."""
    storage = export_storage()
    for name in names:
        storage.delete(name)


@dataclass
class TempEntry:
    """A leftover of a build: a local temporary file or an incomplete S3 upload."""

    export_id: int
    build_id: str | None
    remove: Callable[[], None]


def temp_entries() -> list[TempEntry]:
    """Every temporary file and incomplete upload of export builds on this machine's
    scratch directory, the local export directory and the S3 bucket's prefix.
    """
    found: list[TempEntry] = []
    storage = export_storage()
    directories = {scratch_dir()}
    if is_local(storage):
        directories.add(Path(storage.location))
    for directory in directories:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(directory):
                match = TEMP_NAME.match(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    found.append(
                        TempEntry(
                            export_id=int(match["export"]),
                            build_id=match["build"],
                            remove=_unlinker(Path(entry.path)),
                        )
                    )
    if not is_local(storage):
        found.extend(_incomplete_uploads(storage))
    return found


def _unlinker(path: Path):
    return lambda: path.unlink(missing_ok=True)


def _incomplete_uploads(storage: Storage) -> Iterator[TempEntry]:
    client = _client(storage)
    prefix = storage.location.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=prefix):
        for upload in page.get("Uploads", []):
            match = FINAL_NAME.match(upload["Key"][len(prefix) :])
            if match is None:
                continue
            yield TempEntry(
                export_id=int(match["export"]),
                build_id=None,
                remove=_aborter(client, storage.bucket_name, upload["Key"], upload["UploadId"]),
            )


def _aborter(client, bucket: str, key: str, upload_id: str):
    def abort() -> None:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise

    return abort
