"""The alchemiscale source's own ledger: its compute-service registration, its claims, its pushes.

alchemiscale's compute API can neither list the Tasks a service holds nor say whether a result
arrived, so every call that changes the server's state is written here first (the *intent*) and
settled after its answer:

* **registration**: the compute-service id (``<name>-<uuid4 hex>``), when it was registered and
  when it last beat; kept across batches so one fahflow is one compute service;
* **claim**: ``claim_started_at`` is set before ``POST /claim`` and cleared, together with the
  claimed keys, when the answer is written. Still set on the next batch means an answer was lost
  and Tasks may be held by the registration without fahflow knowing them: the source then
  replaces the registration, which gives them back to ``waiting``;
* **push**: ``push_started_at`` and the ProtocolDAGResult's key before ``set_task_result``,
  ``pushed_at`` and the result's ScopedKey after. Started but not finished means the push's
  answer was lost: it may have arrived, and a second push would be a second result.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fahflow.sqlite import connect, now, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registration (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    service_id TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    claim_started_at TEXT
);
CREATE TABLE IF NOT EXISTS registrations_past (
    service_id TEXT PRIMARY KEY,
    registered_at TEXT NOT NULL,
    replaced_at TEXT NOT NULL,
    why TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    transformation TEXT,
    extends TEXT,
    push_started_at TEXT,
    pdr_key TEXT,
    pushed_at TEXT,
    result_key TEXT,
    settled TEXT
);
"""


@dataclass(frozen=True)
class Registration:
    service_id: str
    registered_at: str
    heartbeat_at: str
    claim_started_at: str | None


@dataclass(frozen=True)
class Claim:
    key: str
    claimed_by: str
    transformation: str | None
    extends: str | None
    push_started_at: str | None
    pdr_key: str | None
    pushed_at: str | None
    result_key: str | None

    @property
    def push_unknown(self) -> bool:
        """A push was sent and its answer never written down."""
        return self.push_started_at is not None and self.pushed_at is None


class SourceLedger:
    """The SQLite file at ``path`` (WAL; each write one transaction)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # --- registration ------------------------------------------------------------------------

    def registration(self) -> Registration | None:
        row = self._conn.execute("SELECT * FROM registration").fetchone()
        if row is None:
            return None
        return Registration(
            row["service_id"], row["registered_at"], row["heartbeat_at"], row["claim_started_at"]
        )

    def set_registration(self, service_id: str, *, why: str) -> None:
        """The registration is now ``service_id``; the one it replaces is kept, with why."""
        stamp = now()
        with transaction(self._conn) as db:
            old = db.execute("SELECT * FROM registration").fetchone()
            if old is not None:
                db.execute(
                    "INSERT OR REPLACE INTO registrations_past VALUES (?, ?, ?, ?)",
                    (old["service_id"], old["registered_at"], stamp, why),
                )
            db.execute(
                "INSERT OR REPLACE INTO registration VALUES (1, ?, ?, ?, NULL)",
                (service_id, stamp, stamp),
            )

    def forget_registration(self, *, why: str) -> None:
        """No registration any more (deregistered): the next batch registers anew."""
        with transaction(self._conn) as db:
            old = db.execute("SELECT * FROM registration").fetchone()
            if old is not None:
                db.execute(
                    "INSERT OR REPLACE INTO registrations_past VALUES (?, ?, ?, ?)",
                    (old["service_id"], old["registered_at"], now(), why),
                )
            db.execute("DELETE FROM registration")

    def beat(self) -> None:
        with transaction(self._conn) as db:
            db.execute("UPDATE registration SET heartbeat_at = ?", (now(),))

    def past_registrations(self) -> list[sqlite3.Row]:
        return self._conn.execute(
            "SELECT * FROM registrations_past ORDER BY replaced_at"
        ).fetchall()

    # --- claims ------------------------------------------------------------------------------

    def claim_started(self) -> None:
        with transaction(self._conn) as db:
            db.execute("UPDATE registration SET claim_started_at = ?", (now(),))

    def claim_answered(self, keys: list[str], service_id: str) -> None:
        """The claim's answer: its keys recorded and the intent cleared, in one transaction."""
        stamp = now()
        with transaction(self._conn) as db:
            db.executemany(
                "INSERT OR IGNORE INTO claims (key, claimed_by, claimed_at) VALUES (?, ?, ?)",
                [(key, service_id, stamp) for key in keys],
            )
            db.execute("UPDATE registration SET claim_started_at = NULL")

    def set_payload(self, key: str, transformation: str, extends: str | None) -> None:
        with transaction(self._conn) as db:
            db.execute(
                "UPDATE claims SET transformation = ?, extends = ? WHERE key = ?",
                (transformation, extends, key),
            )

    def claim(self, key: str) -> Claim | None:
        row = self._conn.execute("SELECT * FROM claims WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Claim(
            row["key"], row["claimed_by"], row["transformation"], row["extends"],
            row["push_started_at"], row["pdr_key"], row["pushed_at"], row["result_key"],
        )  # fmt: skip

    def open_keys(self) -> set[str]:
        """Claimed Tasks whose outcome has not been pushed."""
        rows = self._conn.execute("SELECT key FROM claims WHERE pushed_at IS NULL")
        return {row["key"] for row in rows}

    def unknown_pushes(self) -> list[Claim]:
        keys = self._conn.execute(
            "SELECT key FROM claims WHERE push_started_at IS NOT NULL AND pushed_at IS NULL"
        ).fetchall()
        return [c for c in (self.claim(row["key"]) for row in keys) if c is not None]

    # --- pushes ------------------------------------------------------------------------------

    def push_started(self, key: str, pdr_key: str) -> None:
        with transaction(self._conn) as db:
            db.execute(
                "INSERT OR IGNORE INTO claims (key, claimed_by, claimed_at) VALUES (?, '', ?)",
                (key, now()),
            )
            db.execute(
                "UPDATE claims SET push_started_at = ?, pdr_key = ? WHERE key = ?",
                (now(), pdr_key, key),
            )

    def push_not_sent(self, key: str) -> None:
        """The push certainly did not arrive (refused before it was read, or never sent)."""
        with transaction(self._conn) as db:
            db.execute(
                "UPDATE claims SET push_started_at = NULL, pdr_key = NULL WHERE key = ?", (key,)
            )

    def pushed(self, key: str, result_key: str, *, settled: str = "answer") -> None:
        """The push arrived: from its answer, or settled later (``settled`` says how)."""
        with transaction(self._conn) as db:
            db.execute(
                "UPDATE claims SET pushed_at = ?, result_key = ?, settled = ? WHERE key = ?",
                (now(), result_key, settled, key),
            )
