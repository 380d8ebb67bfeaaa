"""The embedded Task queue: a SQLite file that plays alchemiscale's part for one operator.

``fahflow submit SPEC.yaml`` enqueues Tasks; batches claim them; outcomes come back here and
``fahflow results`` reads them. Claims and pushes are single statements guarded by the Task's
status, so repeating one (after a batch was killed) changes nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from pathlib import Path

from fahflow.errors import LedgerError
from fahflow.outcome import Outcome
from fahflow.sqlite import connect, now, transaction
from fahflow.tasks.base import ClaimedTask, safe_id, task_id_for

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transformations (
    transformation_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'spec'
);
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY,
    transformation_id TEXT NOT NULL REFERENCES transformations,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'claimed', 'complete', 'error')),
    claimed_by TEXT,
    claimed_at TEXT,
    result_json TEXT,
    error TEXT,
    finished_at TEXT,
    pushes INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, claimed_by);
"""


def transformation_id_for(name: str, payload: str) -> str:
    """Same payload text → same Transformation; the name keeps it readable."""
    digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
    return f"{safe_id(name, max_len=40)}-{digest}"


class LocalQueue:
    """The local queue in the SQLite file at ``path``."""

    name = "local"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._upgrade()
        self._conn.executescript(_SCHEMA)

    def _upgrade(self) -> None:
        """A queue written before Tasks had kinds: its payload column was ``spec_yaml``."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(transformations)")}
        if "spec_yaml" in columns:
            with transaction(self._conn) as db:
                db.execute("ALTER TABLE transformations RENAME COLUMN spec_yaml TO payload")
                db.execute(
                    "ALTER TABLE transformations ADD COLUMN kind TEXT NOT NULL DEFAULT 'spec'"
                )

    def close(self) -> None:
        self._conn.close()

    def submit(self, name: str, payload: str, n_tasks: int, *, kind: str = "spec") -> list[str]:
        """Enqueue ``n_tasks`` new Tasks of the Transformation ``payload`` (read by ``kind``,
        :mod:`fahflow.kinds`); returns their keys."""
        if n_tasks < 1:
            raise ValueError(f"number of Tasks must be at least 1, got {n_tasks}")
        tf = transformation_id_for(name, payload)
        keys = [f"{tf[:24]}-{uuid.uuid4().hex[:12]}" for _ in range(n_tasks)]
        stamp = now()
        with transaction(self._conn) as db:
            db.execute(
                "INSERT OR IGNORE INTO transformations (transformation_id, name, payload, "
                "submitted_at, kind) VALUES (?, ?, ?, ?, ?)",
                (tf, name, payload, stamp, kind),
            )
            db.executemany(
                "INSERT INTO tasks (key, transformation_id, status, submitted_at) "
                "VALUES (?, ?, 'waiting', ?)",
                [(key, tf, stamp) for key in keys],
            )
        return keys

    def _task(self, row: sqlite3.Row) -> ClaimedTask:
        return ClaimedTask(
            key=row["key"],
            task_id=task_id_for(row["key"]),
            transformation_id=row["transformation_id"],
            name=row["name"],
            payload=row["payload"],
            kind=row["kind"],
        )

    _SELECT = (
        "SELECT t.key, t.transformation_id, f.name, f.payload, f.kind FROM tasks t "
        "JOIN transformations f USING (transformation_id) "
    )

    def claim(self, service_id: str, count: int) -> list[ClaimedTask]:
        if count <= 0:
            return []
        stamp = now()
        rows = self._conn.execute(
            "UPDATE tasks SET status = 'claimed', claimed_by = ?, claimed_at = ? WHERE key IN "
            "(SELECT key FROM tasks WHERE status = 'waiting' ORDER BY submitted_at, key LIMIT ?) "
            "RETURNING key",
            (service_id, stamp, count),
        ).fetchall()
        return [self.get(row["key"]) for row in rows]

    def claimed_keys(self, service_id: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT key FROM tasks WHERE status = 'claimed' AND claimed_by = ?", (service_id,)
        )
        return {row[0] for row in rows}

    def get(self, key: str) -> ClaimedTask:
        row = self._conn.execute(self._SELECT + "WHERE t.key = ?", (key,)).fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: no Task {key!r} in the local queue")
        return self._task(row)

    def push(self, key: str, outcome: Outcome) -> bool:
        if outcome.ok:
            return self._finish(key, "complete", result_json=outcome.to_json())
        return self._finish(key, "error", error=outcome.reason)

    def outcome(self, row: sqlite3.Row) -> Outcome | None:
        """The outcome a completed Task of :meth:`rows` was pushed with (None for the others)."""
        if not row["result_json"]:
            return None
        return Outcome.model_validate_json(row["result_json"])

    def _finish(
        self, key: str, status: str, *, result_json: str | None = None, error: str | None = None
    ) -> bool:
        self.get(key)  # an unknown key is an error, not a silent no-op
        with transaction(self._conn) as db:
            # Every call is counted, so tests can assert the workflow pushed each outcome once.
            db.execute("UPDATE tasks SET pushes = pushes + 1 WHERE key = ?", (key,))
            changed = db.execute(
                "UPDATE tasks SET status = ?, result_json = ?, error = ?, finished_at = ? "
                "WHERE key = ? AND status IN ('waiting', 'claimed')",
                (status, result_json, error, now(), key),
            ).rowcount
        return changed == 1

    def has_outcome(self, key: str) -> bool:
        row = self._conn.execute("SELECT status FROM tasks WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: no Task {key!r} in the local queue")
        return row[0] in ("complete", "error")

    # --- reading, for `fahflow status` and `fahflow results` ---------------------------------

    def rows(self) -> list[sqlite3.Row]:
        """Every Task with its Transformation's name, oldest first."""
        return self._conn.execute(
            "SELECT t.*, f.name FROM tasks t JOIN transformations f USING (transformation_id) "
            "ORDER BY t.submitted_at, t.key"
        ).fetchall()

    def transformations(self) -> list[sqlite3.Row]:
        return self._conn.execute(
            "SELECT * FROM transformations ORDER BY submitted_at, transformation_id"
        ).fetchall()
