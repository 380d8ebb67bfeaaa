"""The SQLite helpers shared by the ledger and the local queue (fahflow.sqlite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import fahflow.ledger
import fahflow.tasks.local
from fahflow.errors import StorageError
from fahflow.sqlite import connect, now, transaction


def test_ledger_and_queue_share_one_set_of_helpers() -> None:
    """Neither file format borrows the other's private code: both use fahflow.sqlite."""
    for module in (fahflow.ledger, fahflow.tasks.local):
        assert module.connect is connect
        assert module.transaction is transaction
        assert module.now is now


def test_connect_sets_wal_and_reads_rows_by_name(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sub" / "db.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("SELECT 1 AS one").fetchone()["one"] == 1
    conn.close()


def test_a_foreign_file_is_named_at_open(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    path.write_bytes(b"not SQLite\n" * 100)
    with pytest.raises(StorageError, match=f"database {path}: file is not a database"):
        connect(path)


def test_a_folder_is_named_with_the_keys_to_fix(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"is a directory.*ledger\.path, tasks\.local\.path"):
        connect(tmp_path)


def test_readonly_connect_does_not_create_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "db.sqlite"
    with pytest.raises(StorageError):
        connect(path, readonly=True)
    assert not path.parent.exists()


def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    conn.execute("CREATE TABLE t (x INTEGER)")
    with transaction(conn) as db:
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), transaction(conn) as db:
        db.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("caller failed")
    assert [row["x"] for row in conn.execute("SELECT x FROM t")] == [1]
    assert not conn.in_transaction
    conn.close()


def test_statement_errors_pass_through_untranslated(tmp_path: Path) -> None:
    """Callers rely on constraint errors being sqlite3's own (INSERT OR IGNORE paths)."""
    conn = connect(tmp_path / "db.sqlite")
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()


def test_now_sorts_as_text() -> None:
    first, second = now(), now()
    assert first <= second and first.endswith("+00:00")
