"""Atomic file writes: write a temporary file beside the target, fsync, rename.

Every file that matters (ledger exports, staged work units, results, certificates) goes through
here, so a process killed at any line leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


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
    for an instant.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, perms)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, perms: int = 0o644) -> Path:
    """Atomically replace ``path`` with ``data``."""
    with atomic_open(path, "wb", perms) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, perms: int = 0o644) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    return write_bytes(path, text.encode("utf-8"), perms)
