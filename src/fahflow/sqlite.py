"""SQLite files as fahflow uses them: the ledger and the local Task queue share these helpers.

Both files are written by overlapping processes (cron batches, ``fahflow submit``) and must say
which file failed when the disk does, so they open connections the same way (:func:`connect`),
take the write lock the same way (:func:`transaction`) and stamp rows with the same clock
(:func:`now`). Neither depends on the other: this module knows nothing about Tasks or WUs.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fahflow.errors import StorageError


def now() -> str:
    """The current UTC time as stored in fahflow's SQLite files (ISO 8601, microseconds), so
    that timestamps from any writer sort as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


# SQLite result codes (low byte) that are about the file itself rather than about a statement:
# PERM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB.
_STORAGE_CODES = frozenset({3, 8, 10, 11, 13, 14, 26})


class _FileConnection(sqlite3.Connection):
    """A connection that turns failures of its file into :class:`StorageError` naming the file.

    sqlite3's own messages ("file is not a database", "disk I/O error") never say which file;
    an operator with a ledger and a queue needs to know. Statement errors (constraints, a busy
    database) pass through unchanged, as callers rely on them.
    """

    path: Path = Path()

    def _translate(self, exc: sqlite3.DatabaseError) -> BaseException:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _STORAGE_CODES:
            return StorageError.from_sqlite_error(exc, self.path)
        return exc

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc

    def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc

    def executescript(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        try:
            return super().executescript(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A SQLite connection as fahflow's files use them: autocommit (explicit BEGIN IMMEDIATE for
    writes), WAL, full fsync, a 60 s busy wait, rows by name.

    The file is read once here (its header), so a folder, a corrupt file or a file that is not
    SQLite is a :class:`StorageError` naming ``path`` at open time, not a bare sqlite3 error
    deep inside a batch step; later failures of the file (full disk) are translated the same way.
    """
    path = Path(path)
    if path.is_dir():
        raise StorageError(
            f"database {path} is a directory, not a SQLite file: point the config "
            "(ledger.path, tasks.local.path) at a file, or move the directory away",
            path=path,
        )
    try:
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError.from_os_error(exc, path, action="create the database") from exc
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, factory=_FileConnection
            )
        else:
            conn = sqlite3.connect(
                path, isolation_level=None, timeout=60.0, factory=_FileConnection
            )
    except sqlite3.Error as exc:
        raise StorageError.from_sqlite_error(exc, path) from exc
    conn.path = path
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA schema_version")  # reads the header: a foreign file fails here
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception): writers serialize on
    the database's write lock instead of interleaving."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
