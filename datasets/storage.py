"""Where export files live, and the writer that makes them appear all at once."""

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

# Buffered writes: one syscall per megabyte rather than per line.
WRITE_BUFFER = 1024 * 1024


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def export_dir() -> Path:
    return Path(settings.HITL_EXPORT_DIR)


def export_path(name: str) -> Path:
    return export_dir() / name


class PendingFile:
    """A file written under a temporary name in its final directory.

    ``publish()`` renames it into place (atomic on one file system), so readers
    see either no file or the whole file; ``discard()`` removes whatever exists.
    """

    def __init__(self, final: Path, *, hashed: bool = True) -> None:
        self.final = final
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        self.tmp = Path(tmp)
        self.handle: BinaryIO = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
        self._sha = hashlib.sha256() if hashed else None
        self.size = 0
        self.published = False

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest() if self._sha is not None else ""

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
