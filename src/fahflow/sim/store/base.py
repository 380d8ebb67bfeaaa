"""The plumbing every part of the simulator's state shares: one SQLite connection, one lock.

Every state change happens in one transaction under the lock and then notifies
:attr:`StoreBase.changed`, which is what ``Simulator.wait_for_job`` and the long-polling
volunteers wait on. Because the state lives in SQLite (``ROOT/sim.sqlite``), a restarted
simulator carries on where the previous one stopped. The tables themselves belong to the
modules beside this one (``jobs``, ``assignments``, ``as_data``), each with its own schema.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fahflow.errors import ConfigError
from fahflow.sim.clock import SimClock

META_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1_000_000)


def from_us(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


class StoreBase:
    """Connection, lock, transactions, the simulated clock and strictly increasing stamps."""

    SCHEMA = META_SCHEMA
    """The tables to create; :class:`~fahflow.sim.store.Store` joins those of every part."""

    def __init__(
        self,
        path: Path,
        clock_scale: float = 1.0,
        log: Callable[..., None] = lambda event, **f: None,
        server_id: int = 1,
        readonly: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.log = log
        self.server_id = server_id
        self.readonly = readonly
        if readonly:  # `fahflow sim status` beside a running simulator: never write
            if not path.is_file():
                raise ConfigError(
                    f"{path}: no simulator state here (is --root the directory given to "
                    "`fahflow sim serve --root`?)"
                )
            uri = f"{path.absolute().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if not readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            # Survives a killed process (what a rehearsal needs); a power cut may lose the last
            # commits. FULL would fsync every API call (~5 ms each).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(self.SCHEMA)
        lead = self._meta("clock_lead_s")
        self.clock = SimClock(clock_scale, float(lead) if lead else 0.0)
        self._last_us = 0

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; waiters are woken after it commits."""
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.changed.notify_all()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row["value"] if row else None

    def _stamp(self) -> int:
        """Strictly increasing microseconds, so no two changes share a ``last``."""
        self._last_us = max(int(time.time() * 1_000_000), self._last_us + 1)
        return self._last_us

    def save_clock(self) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('clock_lead_s', ?)", (str(self.clock.lead_s),)
            )

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.save_clock()

    def close(self) -> None:
        with self.lock:
            if not self.readonly:
                self.save_clock()
            self._db.close()
