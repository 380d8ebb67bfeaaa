"""The ledger: fahflow's own record of every Task, PRCG id and work-server call.

One SQLite file in WAL mode. It is the single source of truth for what a batch may do next:

* **PRCG allocation** happens in one ``BEGIN IMMEDIATE`` transaction, from counters that only
  grow, so an id handed out once is never handed out again, even after a crash (FAH credits each
  PROJECT/RUN/CLONE/GEN once; DESIGN §1). RUN and CLONE ids stop at 65535.
* **Intent before, confirmation after** every WS call that is not idempotent (``create``,
  ``restart``): the WU row moves to ``create_intent`` and is committed *before* the call and to
  ``created`` after it. A batch killed in between leaves the intent behind; the next batch asks
  the WS for that job's state before doing anything, so no job is ever created twice.
* **Task and WU states** (:mod:`fahflow.states`) move only along their transition tables,
  through :meth:`Ledger.advance_task` and :meth:`Ledger.advance_wu`: claimed → staged → created
  → finished → analyzed, or failed (with its reason); ``pushed_at`` records that the outcome
  reached the Task's source.
* **Nothing in flight unseen**: ``seen_at`` is when the WS last reported on a WU (a poll's
  ``jobs?since=`` answer or a ``get_job``). A WU confirmed from a job found on the WS has no
  ``seen_at`` (its earlier changes may predate the poll cursor), so the next poll asks for it by
  name; WUs quiet for longer than a configured time are asked for too, and any still unseen
  after ``batch.unseen_alert_s`` fail the batch's audit (:meth:`Ledger.unseen_wus`).

Snakemake reads the ledger at parse time through :func:`actionable_tasks`, read-only, so that
the DAG holds only the Tasks that can progress now, never every Task in flight (DESIGN §5).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fahflow.errors import LedgerError
from fahflow.sqlite import connect, now, transaction
from fahflow.states import (
    TASK_TO_CREATE,
    TASK_TO_PUSH,
    TASK_TRANSITIONS,
    WU_AWAITING_WS,
    WU_IN_FLIGHT,
    WU_TRANSITIONS,
    TaskState,
    WuState,
    allowed,
    successors,
)

MAX_ID = 65535
SCHEMA_VERSION = 3
# Steps from each older schema version to the next, applied in order by Ledger.__init__.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE wus ADD COLUMN seen_at TEXT",),
    2: (
        "ALTER TABLE transformations RENAME COLUMN spec_yaml TO payload",
        "ALTER TABLE transformations ADD COLUMN kind TEXT NOT NULL DEFAULT 'spec'",
    ),  # task_dags is new: CREATE TABLE IF NOT EXISTS makes it
}

TASK_STATES = tuple(state.value for state in TaskState)
WU_STATES = tuple(state.value for state in WuState)


def _state(kind: type[TaskState] | type[WuState], value: str, what: str) -> TaskState | WuState:
    try:
        return kind(value)
    except ValueError:
        raise LedgerError(f"unknown {what} state {value!r}") from None


def _placeholders(values: tuple[str, ...]) -> str:
    return f"({', '.join('?' * len(values))})"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transformations (
    transformation_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    project INTEGER,
    run INTEGER,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'spec'
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    source_key TEXT NOT NULL,
    transformation_id TEXT NOT NULL REFERENCES transformations,
    n_wus INTEGER NOT NULL CHECK (n_wus >= 1),
    state TEXT NOT NULL CHECK (state IN {TASK_STATES!r}),
    reason TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,
    claimed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pushed_at TEXT,
    UNIQUE (source, source_key)
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks (state) WHERE pushed_at IS NULL;
CREATE TABLE IF NOT EXISTS task_dags (
    task_id TEXT PRIMARY KEY REFERENCES tasks,
    dag TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    project INTEGER PRIMARY KEY,
    next_run INTEGER NOT NULL DEFAULT 0,
    ensured INTEGER NOT NULL DEFAULT 0,
    poll_since TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    project INTEGER NOT NULL REFERENCES projects,
    run INTEGER NOT NULL CHECK (run BETWEEN 0 AND {MAX_ID}),
    transformation_id TEXT NOT NULL REFERENCES transformations,
    next_clone INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project, run)
);
CREATE TABLE IF NOT EXISTS wus (
    project INTEGER NOT NULL,
    run INTEGER NOT NULL,
    clone INTEGER NOT NULL CHECK (clone BETWEEN 0 AND {MAX_ID}),
    task_id TEXT NOT NULL REFERENCES tasks,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN {WU_STATES!r}),
    ws_state TEXT,
    gen INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    seen_at TEXT,
    PRIMARY KEY (project, run, clone),
    UNIQUE (task_id, idx),
    FOREIGN KEY (project, run) REFERENCES runs
);
CREATE INDEX IF NOT EXISTS wus_inflight ON wus (project, state);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    task_id TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    source: str
    source_key: str
    transformation_id: str
    n_wus: int
    state: TaskState
    reason: str | None
    restarts: int
    claimed_at: str
    updated_at: str
    pushed_at: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TaskState(self.state))


@dataclass(frozen=True)
class WorkUnitRow:
    project: int
    run: int
    clone: int
    task_id: str
    idx: int
    state: WuState
    ws_state: str | None
    gen: int
    restarts: int
    updated_at: str
    seen_at: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", WuState(self.state))

    @property
    def prcg(self) -> str:
        return f"P{self.project}/R{self.run}/C{self.clone}/G{self.gen}"


@dataclass(frozen=True)
class TransformationRow:
    transformation_id: str
    name: str
    payload: str  # as its kind reads it: a fahflow spec (YAML) or a gufe Transformation (JSON)
    project: int | None
    run: int | None
    created_at: str
    kind: str


class Ledger:
    """The ledger file at ``path``; created with its schema on first use.

    Every public method is one transaction. Methods that change state take ``BEGIN IMMEDIATE``
    so that two overlapping processes serialize on the write lock instead of interleaving.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)  # idempotent: CREATE ... IF NOT EXISTS
        self._migrate()

    def _migrate(self) -> None:
        """Bring an older ledger up to :data:`SCHEMA_VERSION` in one transaction; refuse a newer
        one (written by a later fahflow, whose rows this one would misread)."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            version = int(
                db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            )
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.path}: ledger schema version {version} is newer than this fahflow's "
                    f"({SCHEMA_VERSION}): upgrade fahflow"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn)

    def _event(self, db: sqlite3.Connection, task_id: str | None, kind: str, detail: str) -> None:
        db.execute(
            "INSERT INTO events (at, task_id, kind, detail) VALUES (?, ?, ?, ?)",
            (now(), task_id, kind, detail),
        )

    # --- Tasks -------------------------------------------------------------------------------

    def add_task(
        self,
        *,
        task_id: str,
        source: str,
        source_key: str,
        transformation_id: str,
        name: str,
        payload: str,
        n_wus: int,
        kind: str = "spec",
        dag: str | None = None,
    ) -> bool:
        """Record a claimed Task (and its Transformation). Returns False if already known.

        Idempotent, so a claim that was interrupted after the source handed the Task out but
        before this row was written is repaired by recording it again on the next batch.
        ``payload`` is the Transformation as its ``kind`` reads it (:mod:`fahflow.kinds`);
        ``dag`` the Task's ProtocolDAG (gufe), stored with the Task in the same transaction and
        never replaced: unit keys are random per ``create()``, so a resumed batch must reuse it.

        Raises
        ------
        LedgerError
            When ``task_id`` already belongs to another source key: two Tasks must never merge
            into one (their ids come from :func:`fahflow.tasks.base.task_id_for`, injective
            up to a 64-bit hash, so this is a bug or a hash collision, never silently ignored).
        """
        stamp = now()
        with self._write() as db:
            owner = db.execute(
                "SELECT source, source_key FROM tasks WHERE task_id = ?", (task_id,)
            ).fetchone()
            if owner is not None and (owner["source"], owner["source_key"]) != (source, source_key):
                raise LedgerError(
                    f"{self.path}: Task id {task_id!r} of {source}:{source_key} is already the id "
                    f"of {owner['source']}:{owner['source_key']}; two Tasks would merge into one"
                )
            db.execute(
                "INSERT OR IGNORE INTO transformations (transformation_id, name, payload, "
                "created_at, kind) VALUES (?, ?, ?, ?, ?)",
                (transformation_id, name, payload, stamp, kind),
            )
            cursor = db.execute(
                "INSERT OR IGNORE INTO tasks (task_id, source, source_key, transformation_id, "
                "n_wus, state, claimed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    source,
                    source_key,
                    transformation_id,
                    n_wus,
                    TaskState.CLAIMED,
                    stamp,
                    stamp,
                ),
            )
            inserted = cursor.rowcount == 1
            if inserted:
                if dag is not None:
                    db.execute("INSERT INTO task_dags VALUES (?, ?)", (task_id, dag))
                self._event(db, task_id, "claimed", f"{source}:{source_key}")
        return inserted

    def task_dag(self, task_id: str) -> str | None:
        """The Task's stored ProtocolDAG (keyed-chain JSON), or None for a kind without one."""
        row = self._conn.execute("SELECT dag FROM task_dags WHERE task_id = ?", (task_id,))
        found = row.fetchone()
        return found[0] if found else None

    def task(self, task_id: str) -> TaskRow:
        row = self._conn.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: no Task {task_id!r} in the ledger")
        return TaskRow(**row)

    def tasks(self, *, states: tuple[str, ...] | None = None) -> list[TaskRow]:
        query, args = "SELECT * FROM tasks", ()
        if states:
            query += f" WHERE state IN {_placeholders(states)}"
            args = states
        return [TaskRow(**row) for row in self._conn.execute(query + " ORDER BY claimed_at", args)]

    def source_keys(self, source: str) -> set[str]:
        """The source's keys of every Task the ledger knows from ``source``."""
        rows = self._conn.execute("SELECT source_key FROM tasks WHERE source = ?", (source,))
        return {row[0] for row in rows}

    def transformation(self, transformation_id: str) -> TransformationRow:
        row = self._conn.execute(
            "SELECT * FROM transformations WHERE transformation_id = ?", (transformation_id,)
        ).fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: no Transformation {transformation_id!r}")
        return TransformationRow(**row)

    def advance_task(self, task_id: str, to: TaskState, *, reason: str | None = None) -> bool:
        """Move a Task to ``to`` along :data:`~fahflow.states.TASK_TRANSITIONS`.

        Returns False, changing nothing, when the Task is already in ``to`` (a step re-run after
        a kill). Raises :class:`LedgerError` naming both states for a move the table does not
        allow, so a step acting on a Task in the wrong state fails loudly instead of silently
        doing nothing.
        """
        to = _state(TaskState, to, "Task")
        with self._write() as db:
            row = db.execute("SELECT state FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if row is None:
                raise LedgerError(f"{self.path}: no Task {task_id!r} in the ledger")
            frm = TaskState(row["state"])
            if frm == to:
                return False
            if allowed(TASK_TRANSITIONS, frm, to) is None:
                raise LedgerError(
                    f"Task {task_id}: cannot move from {frm} to {to} (from {frm} only to: "
                    f"{', '.join(successors(TASK_TRANSITIONS, frm)) or 'nothing, it is final'})"
                )
            db.execute(
                "UPDATE tasks SET state = ?, reason = COALESCE(?, reason), updated_at = ? "
                "WHERE task_id = ?",
                (to, reason, now(), task_id),
            )
            self._event(db, task_id, to, reason or "")
        return True

    def mark_pushed(self, task_id: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE tasks SET pushed_at = ?, updated_at = ? WHERE task_id = ? "
                "AND pushed_at IS NULL",
                (now(), now(), task_id),
            )
            self._event(db, task_id, "pushed", "")

    # --- PRCG allocation ---------------------------------------------------------------------

    def allocate(self, task_id: str, project: int) -> list[WorkUnitRow]:
        """Give each WU of the Task a PROJECT/RUN/CLONE, once; later calls return the same ids.

        One RUN per Transformation: a Task's WUs take the next CLONEs of its Transformation's RUN;
        when that RUN's 65,536 CLONEs are used up the Transformation continues in a new RUN.
        Counters only grow, so no id is ever handed out twice.

        Raises
        ------
        LedgerError
            When the PROJECT has used all 65,536 RUNs (add a project for this effort bucket), or
            when the Transformation is already bound to another PROJECT.
        """
        with self._write() as db:
            existing = db.execute(
                "SELECT * FROM wus WHERE task_id = ? ORDER BY idx", (task_id,)
            ).fetchall()
            task = db.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            if task is None:
                raise LedgerError(f"{self.path}: no Task {task_id!r} in the ledger")
            if len(existing) == task["n_wus"]:
                return [WorkUnitRow(**row) for row in existing]
            tf = db.execute(
                "SELECT * FROM transformations WHERE transformation_id = ?",
                (task["transformation_id"],),
            ).fetchone()
            if tf["project"] is not None and tf["project"] != project:
                raise LedgerError(
                    f"Transformation {tf['transformation_id']} runs in PROJECT {tf['project']}, "
                    f"not {project}: a Transformation never changes PROJECT"
                )
            db.execute("INSERT OR IGNORE INTO projects (project) VALUES (?)", (project,))
            run = tf["run"]
            stamp = now()
            for idx in range(len(existing), task["n_wus"]):
                clone = None
                if run is not None:
                    clone = db.execute(
                        "SELECT next_clone FROM runs WHERE project = ? AND run = ?", (project, run)
                    ).fetchone()[0]
                if run is None or clone > MAX_ID:
                    run = self._new_run(db, project, tf["transformation_id"])
                    clone = 0
                db.execute(
                    "UPDATE runs SET next_clone = ? WHERE project = ? AND run = ?",
                    (clone + 1, project, run),
                )
                db.execute(
                    "INSERT INTO wus (project, run, clone, task_id, idx, state, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (project, run, clone, task_id, idx, WuState.ALLOCATED, stamp),
                )
            db.execute(
                "UPDATE transformations SET project = ?, run = ? WHERE transformation_id = ?",
                (project, run, tf["transformation_id"]),
            )
            rows = db.execute(
                "SELECT * FROM wus WHERE task_id = ? ORDER BY idx", (task_id,)
            ).fetchall()
            self._event(
                db,
                task_id,
                "allocated",
                ", ".join(f"{project}/{r['run']}/{r['clone']}" for r in rows),
            )
        return [WorkUnitRow(**row) for row in rows]

    def _new_run(self, db: sqlite3.Connection, project: int, transformation_id: str) -> int:
        run = db.execute("SELECT next_run FROM projects WHERE project = ?", (project,)).fetchone()[
            0
        ]
        if run > MAX_ID:
            raise LedgerError(
                f"PROJECT {project} has used all {MAX_ID + 1} RUNs: add a new project for this "
                f"effort bucket to the config (ids are never reused)"
            )
        db.execute("UPDATE projects SET next_run = ? WHERE project = ?", (run + 1, project))
        db.execute(
            "INSERT INTO runs (project, run, transformation_id) VALUES (?, ?, ?)",
            (project, run, transformation_id),
        )
        return run

    # --- WUs ---------------------------------------------------------------------------------

    def wus(self, task_id: str) -> list[WorkUnitRow]:
        rows = self._conn.execute("SELECT * FROM wus WHERE task_id = ? ORDER BY idx", (task_id,))
        return [WorkUnitRow(**row) for row in rows]

    def wus_in(self, project: int, states: tuple[str, ...]) -> list[WorkUnitRow]:
        rows = self._conn.execute(
            f"SELECT * FROM wus WHERE project = ? AND state IN {_placeholders(states)}",
            (project, *states),
        )
        return [WorkUnitRow(**row) for row in rows]

    def wu_progress(self) -> dict[str, tuple[int, int]]:
        """task_id → (WUs finished, WUs allocated)."""
        rows = self._conn.execute(
            "SELECT task_id, SUM(state = ?), COUNT(*) FROM wus GROUP BY task_id",
            (WuState.FINISHED,),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def tasks_to_settle(self) -> list[str]:
        """Created Tasks whose WUs are all done, or one of which failed for good.

        Derived from the WU rows, not remembered from the poll that changed them, so a poll
        killed between recording its WUs and settling their Tasks is settled by the next one.
        """
        rows = self._conn.execute(
            "SELECT task_id FROM tasks t WHERE state = ? AND ("
            " EXISTS (SELECT 1 FROM wus w WHERE w.task_id = t.task_id AND w.state = ?)"
            " OR NOT EXISTS (SELECT 1 FROM wus w WHERE w.task_id = t.task_id"
            "  AND w.state <> ?)) ORDER BY claimed_at",
            (TaskState.CREATED, WuState.FAILED, WuState.FINISHED),
        )
        return [row[0] for row in rows]

    def projects_in_flight(self) -> list[int]:
        """PROJECTs with WUs whose outcome the WS has not yet told us."""
        rows = self._conn.execute(
            f"SELECT DISTINCT project FROM wus WHERE state IN {_placeholders(WU_IN_FLIGHT)} "
            "ORDER BY project",
            WU_IN_FLIGHT,
        )
        return [row[0] for row in rows]

    def advance_wu(
        self,
        wu: WorkUnitRow,
        to: WuState,
        *,
        ws_state: str | None = None,
        restarted: bool = False,
        seen: bool | None = None,
    ) -> bool:
        """Move one WU to ``to`` along :data:`~fahflow.states.WU_TRANSITIONS`, from the state the
        ledger holds now (not the one ``wu`` was read with).

        Returns False, changing nothing, when the WU is already in ``to`` and the table has no
        self-transition for it; raises :class:`LedgerError` naming both states for a move it
        does not allow. ``restarted`` counts one restart call on the WU and its Task. ``seen``:
        True when the WS just reported ``ws_state`` for this job (``seen_at`` = now); False when
        the WU's history on the WS is unknown (``seen_at`` cleared, so the next poll asks for the
        job by name); None leaves ``seen_at`` as it is.
        """
        to = _state(WuState, to, "WU")
        stamp = now()
        seen_sql = {None: "seen_at", True: "?", False: "NULL"}[seen]
        seen_args = (stamp,) if seen else ()
        key = (wu.project, wu.run, wu.clone)
        with self._write() as db:
            row = db.execute(
                "SELECT state FROM wus WHERE project = ? AND run = ? AND clone = ?", key
            ).fetchone()
            if row is None:
                raise LedgerError(f"{self.path}: no WU {wu.prcg} in the ledger")
            frm = WuState(row["state"])
            if allowed(WU_TRANSITIONS, frm, to) is None:
                if frm == to:
                    return False
                raise LedgerError(
                    f"WU {wu.prcg} of Task {wu.task_id}: cannot move from {frm} to {to} (from "
                    f"{frm} only to: {', '.join(successors(WU_TRANSITIONS, frm)) or 'nothing'})"
                )
            db.execute(
                f"UPDATE wus SET state = ?, ws_state = COALESCE(?, ws_state), "
                f"restarts = restarts + ?, updated_at = ?, seen_at = {seen_sql} "
                f"WHERE project = ? AND run = ? AND clone = ?",
                (to, ws_state, int(restarted), stamp, *seen_args, *key),
            )
            if restarted:
                db.execute(
                    "UPDATE tasks SET restarts = restarts + 1 WHERE task_id = ?", (wu.task_id,)
                )
            self._event(db, wu.task_id, f"wu_{to}", wu.prcg)
        return True

    def set_ws_states(self, updates: list[tuple[WorkUnitRow, str]]) -> None:
        """Record what the WS reported for many WUs in one transaction (a poll may report
        thousands): their job state, and that they were seen now."""
        if not updates:
            return
        stamp = now()
        with self._write() as db:
            db.executemany(
                "UPDATE wus SET ws_state = ?, updated_at = ?, seen_at = ? "
                "WHERE project = ? AND run = ? AND clone = ?",
                [(str(state), stamp, stamp, w.project, w.run, w.clone) for w, state in updates],
            )

    def unseen_wus(self, older_than: str) -> list[WorkUnitRow]:
        """WUs in flight on which the WS has not reported since ``older_than`` (ISO time).

        In flight means the WS has (or may have) the job and fahflow is waiting to hear from
        it: create or restart intents and created WUs. One never seen since its confirmation
        counts from its last change. A batch's audit fails while this list is not empty.
        """
        rows = self._conn.execute(
            f"SELECT * FROM wus WHERE state IN {_placeholders(WU_AWAITING_WS)} "
            "AND COALESCE(seen_at, updated_at) < ? ORDER BY project, run, clone",
            (*WU_AWAITING_WS, older_than),
        )
        return [WorkUnitRow(**row) for row in rows]

    # --- Projects and polling ----------------------------------------------------------------

    def project_ensured(self, project: int) -> bool:
        row = self._conn.execute(
            "SELECT ensured FROM projects WHERE project = ?", (project,)
        ).fetchone()
        return bool(row and row[0])

    def mark_project_ensured(self, project: int) -> None:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO projects (project) VALUES (?)", (project,))
            db.execute("UPDATE projects SET ensured = 1 WHERE project = ?", (project,))

    def poll_since(self, project: int) -> str | None:
        row = self._conn.execute(
            "SELECT poll_since FROM projects WHERE project = ?", (project,)
        ).fetchone()
        return row[0] if row else None

    def set_poll_since(self, project: int, since: str) -> None:
        with self._write() as db:
            db.execute("UPDATE projects SET poll_since = ? WHERE project = ?", (since, project))

    def events(self, task_id: str | None = None) -> list[sqlite3.Row]:
        if task_id is None:
            return self._conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        return self._conn.execute(
            "SELECT * FROM events WHERE task_id = ? ORDER BY id", (task_id,)
        ).fetchall()


@dataclass(frozen=True)
class Actionable:
    """What a batch can do now, per Task, as read at Snakefile parse time."""

    create: list[str]  # claimed or staged: serialize → stage → create
    push: list[str]  # finished, analyzed, or failed and not yet pushed: collect → analyze → push
    transformation_of: dict[str, str]  # task_id → transformation_id of the Tasks above
    failed: frozenset[str]  # the Tasks in `push` that failed (nothing to collect or analyze)


def actionable_tasks(path: str | Path) -> Actionable:
    """Read-only: the Tasks that can progress in this batch (none if the ledger does not exist).

    Tasks whose WUs are still running on FAH, and Tasks already pushed, are left out, so the DAG
    (and the batch's cost) grows with the work that changed, not with the campaign's size.
    """
    path = Path(path)
    if not path.exists():
        return Actionable([], [], {}, frozenset())
    conn = connect(path, readonly=True)
    try:
        wanted = (*TASK_TO_CREATE, *TASK_TO_PUSH)
        rows = conn.execute(
            "SELECT task_id, transformation_id, state FROM tasks WHERE pushed_at IS NULL "
            f"AND state IN {_placeholders(wanted)} ORDER BY claimed_at",
            wanted,
        ).fetchall()
    finally:
        conn.close()
    create = [r["task_id"] for r in rows if r["state"] in TASK_TO_CREATE]
    push = [r["task_id"] for r in rows if r["state"] in TASK_TO_PUSH]
    failed = frozenset(r["task_id"] for r in rows if r["state"] == TaskState.FAILED)
    return Actionable(create, push, {r["task_id"]: r["transformation_id"] for r in rows}, failed)
