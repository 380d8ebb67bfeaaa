"""Atomic file writes: write a temporary file beside the target, fsync, rename.

Every file that matters (ledger exports, staged work units, results, certificates) goes through
here, so a process killed at any line leaves either the old file or the new one, never half of one.

Because every such write passes here, this is also where a full disk or a read-only folder becomes
a :class:`~fahflow.errors.StorageError` naming the file being written and what to do (the bare
``OSError`` of ``write()`` names no file at all).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fahflow.errors import StorageError

# Errors of a write into the temporary file: raised inside the caller's ``with`` body, where an
# OSError may also come from the caller's own reads, so only these are taken as ours.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", perms: int = 0o644) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit fsync it and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. ``perms`` is
    applied before any byte is written, so a private key is never readable by others, not even
    for an instant. A failure of the file system (full, read-only, permission denied) raises
    :class:`~fahflow.errors.StorageError` naming ``path``.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError.from_os_error(exc, target, action="write") from exc
    try:
        os.fchmod(fd, perms)
        with os.fdopen(fd, mode) as handle:
            try:
                yield handle
            except OSError as exc:
                if exc.errno in _WRITE_ERRNOS and exc.filename is None:
                    raise StorageError.from_os_error(exc, target, action="write") from exc
                raise _Foreign(exc) from None
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, _Foreign):
            raise exc.error from None  # the caller's own error, untouched
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError.from_os_error(exc, target, action="write") from exc
        raise


class _Foreign(Exception):
    """Carries an OSError of the caller's ``with`` body past our own OSError translation."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def write_bytes(path: str | os.PathLike[str], data: bytes, perms: int = 0o644) -> Path:
    """Atomically replace ``path`` with ``data``."""
    with atomic_open(path, "wb", perms) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, perms: int = 0o644) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    return write_bytes(path, text.encode("utf-8"), perms)
