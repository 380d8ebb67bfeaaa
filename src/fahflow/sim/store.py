"""The simulator's state in SQLite (``ROOT/sim.sqlite``): projects, jobs, assignments, AS data.

One connection, one lock. Every state change happens in one transaction under the lock and then
notifies :attr:`Store.changed`, which is what ``Simulator.wait_for_job`` and the long-polling
volunteers wait on. Because the state lives in SQLite, a restarted simulator carries on where
the previous one stopped (assigned jobs time out and are reassigned as on a real WS).

Job life (FAH semantics, DESIGN §1)::

    create -> NEW -> READY -> ASSIGNED -> (next GEN: READY) ... -> FINISHED
                         ^        |  faulty return: retries+1 -> READY, or FAILED at max_retries
                         +--------+  timeout (volunteer vanished) -> READY
    fail -> FAILED; stop -> STOPPED; restart (FAILED/STOPPED/HELD) -> READY; reset -> READY at GEN 0
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fahflow.errors import Conflict, NotFound
from fahflow.sim.clock import SimClock
from fahflow.ws.models import (
    ASProjectData,
    ASWorkServerData,
    JobAction,
    JobData,
    JobResults,
    JobState,
    ProjectData,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    project INTEGER NOT NULL, run INTEGER NOT NULL, clone INTEGER NOT NULL,
    gen INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, last_us INTEGER NOT NULL,
    retries INTEGER NOT NULL DEFAULT 0, assigns INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0, deadline REAL, creates INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project, run, clone)
);
CREATE INDEX IF NOT EXISTS jobs_last ON jobs (project, last_us);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, last_us);
CREATE TABLE IF NOT EXISTS assignments (
    token TEXT PRIMARY KEY, project INTEGER NOT NULL, run INTEGER NOT NULL,
    clone INTEGER NOT NULL, gen INTEGER NOT NULL, volunteer TEXT NOT NULL,
    deadline REAL NOT NULL, status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assignments_job ON assignments (project, run, clone, status);
CREATE TABLE IF NOT EXISTS as_ws (ip TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS as_projects (
    ip TEXT NOT NULL, project INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (ip, project)
);
"""

JOB_COLUMNS = (
    "project, run, clone, gen, state, last_us, retries, assigns, progress, deadline, "
    "(SELECT json_extract(data, '$.core_id') FROM projects WHERE id=jobs.project) AS core_id"
)
"""Job fields plus the project's core (one query for a whole ``jobs?since=`` answer)."""


@dataclass(frozen=True)
class Assignment:
    """A WU handed to a volunteer. ``token`` names it in the return."""

    token: str
    project: int
    run: int
    clone: int
    gen: int
    assigns: int
    deadline: float
    project_data: ProjectData


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1_000_000)


def _from_us(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


class Store:
    """Persistent WS state. Methods raise :class:`NotFound` / :class:`Conflict` like the WS."""

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
                raise NotFound(f"{path}: no simulator state here")
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
            self._db.executescript(SCHEMA)
        lead = self._meta("clock_lead_s")
        self.clock = SimClock(clock_scale, float(lead) if lead else 0.0)
        self._last_us = 0

    # -- plumbing ---------------------------------------------------------------------------

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

    # -- projects ---------------------------------------------------------------------------

    def list_projects(self) -> list[int]:
        with self.lock:
            return [r["id"] for r in self._db.execute("SELECT id FROM projects ORDER BY id")]

    def get_project(self, project: int) -> ProjectData:
        with self.lock:
            row = self._db.execute("SELECT data FROM projects WHERE id=?", (project,)).fetchone()
        if row is None:
            raise NotFound(f"Project {project} not found", status=404)
        return ProjectData.model_validate_json(row["data"])

    def put_project(self, project: int, data: ProjectData) -> ProjectData:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO projects VALUES (?, ?)",
                (project, json.dumps(data.to_json())),
            )
        self.log("project.put", project=project, **data.to_json())
        return data

    def delete_project(self, project: int) -> None:
        """Forget the project and its jobs; its files stay on disk (ids are never reused)."""
        self.get_project(project)
        with self._tx() as db:
            db.execute("DELETE FROM projects WHERE id=?", (project,))
            db.execute("DELETE FROM jobs WHERE project=?", (project,))
        self.log("project.delete", project=project)

    # -- jobs -------------------------------------------------------------------------------

    def _job_row(self, project: int, run: int, clone: int) -> sqlite3.Row | None:
        return self._db.execute(
            f"SELECT {JOB_COLUMNS}, creates, reason FROM jobs "
            "WHERE project=? AND run=? AND clone=?",
            (project, run, clone),
        ).fetchone()

    def _job(self, row: sqlite3.Row) -> JobData:
        return JobData(
            server=self.server_id,
            core=row["core_id"],
            project=row["project"],
            run=row["run"],
            clone=row["clone"],
            gen=row["gen"],
            state=JobState(row["state"]),
            last=_from_us(row["last_us"]),
            retries=row["retries"],
            assigns=row["assigns"],
            progress=row["progress"],
        )

    def get_job(self, project: int, run: int, clone: int) -> JobData:
        with self.lock:
            row = self._job_row(project, run, clone)
            if row is None:
                raise NotFound(f"Job {project}:{run}:{clone} not found", status=404)
            return self._job(row)

    def job_reason(self, project: int, run: int, clone: int) -> str:
        with self.lock:
            row = self._job_row(project, run, clone)
            return row["reason"] if row else ""

    def create_count(self, project: int, run: int, clone: int) -> int:
        with self.lock:
            row = self._job_row(project, run, clone)
            return row["creates"] if row else 0

    def create_job(
        self, project: int, run: int, clone: int, missing: list[str], *, exist_ok: bool
    ) -> tuple[JobData, bool]:
        """Create a job (NEW, then READY, or FAILED when ``missing`` names absent send files).

        An existing job is never re-created: its create count goes up and it is returned with
        ``False`` (``exist_ok``) or refused with :class:`Conflict`.
        """
        self.get_project(project)
        with self._tx() as db:
            row = self._job_row(project, run, clone)
            if row is not None:
                db.execute(
                    "UPDATE jobs SET creates=creates+1 WHERE project=? AND run=? AND clone=?",
                    (project, run, clone),
                )
                existing = self._job(row)
            else:
                state = JobState.FAILED if missing else JobState.READY
                reason = f"missing send files: {', '.join(missing)}" if missing else ""
                db.execute(
                    "INSERT INTO jobs (project, run, clone, state, last_us, creates, reason) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?)",
                    (project, run, clone, state.value, self._stamp(), reason),
                )
        prcg = {"project": project, "run": run, "clone": clone}
        if row is not None:
            self.log("job.create.exists", **prcg)
            if not exist_ok:
                raise Conflict(f"Job {project}:{run}:{clone} already exists", status=409)
            return existing, False
        self.log("job.state", **prcg, gen=0, state="NEW")
        if missing:
            self.log("job.state", **prcg, gen=0, state="FAILED", reason=reason)
        else:
            self.log("job.state", **prcg, gen=0, state="READY")
        return self.get_job(project, run, clone), True

    def _set(self, db: sqlite3.Connection, job: JobData, reason: str = "", **fields: Any) -> None:
        fields["last_us"] = self._stamp()
        fields.setdefault("reason", reason)
        sets = ", ".join(f"{k}=?" for k in fields)
        db.execute(
            f"UPDATE jobs SET {sets} WHERE project=? AND run=? AND clone=?",
            (*fields.values(), job.project, job.run, job.clone),
        )
        if "state" in fields:
            self.log(
                "job.state",
                project=job.project,
                run=job.run,
                clone=job.clone,
                gen=fields.get("gen", job.gen),
                state=fields["state"],
                reason=reason,
            )

    def _revoke(self, db: sqlite3.Connection, job: JobData, status: str = "revoked") -> None:
        db.execute(
            "UPDATE assignments SET status=? WHERE project=? AND run=? AND clone=? "
            "AND status IN ('open', 'expired')",
            (status, job.project, job.run, job.clone),
        )

    def job_action(self, project: int, run: int, clone: int, action: JobAction) -> JobData:
        """fail/reset/stop/restart; a transition that makes no sense is a :class:`Conflict`."""
        with self._tx() as db:
            job = self.get_job(project, run, clone)
            bad = Conflict(
                f"Job {project}:{run}:{clone} is {job.state.value}: cannot {action.value}",
                status=409,
            )
            if action is JobAction.FAIL:
                if job.state is JobState.FINISHED:
                    raise bad
                self._set(db, job, "fail requested", state=JobState.FAILED.value)
            elif action is JobAction.STOP:
                if job.state.is_terminal:
                    raise bad
                self._set(db, job, "stop requested", state=JobState.STOPPED.value)
            elif action is JobAction.RESTART:
                if job.state in (JobState.FINISHED, JobState.ASSIGNED):
                    raise bad
                self._set(db, job, "restart requested", state=JobState.READY.value, retries=0)
            elif action is JobAction.RESET:
                self._set(
                    db,
                    job,
                    "reset requested",
                    state=JobState.READY.value,
                    gen=0,
                    retries=0,
                    progress=0.0,
                )
            self._revoke(db, job)
        return self.get_job(project, run, clone)

    def jobs_since(self, project: int, since: datetime | None) -> JobResults:
        """Jobs whose ``last`` is at or after ``since``; ``ts`` is the ``since`` for next time.

        At-least-once: a job changed in the same microsecond as ``ts`` comes again next poll.
        """
        self.get_project(project)
        with self.lock:
            ts = self._stamp()
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE project=? AND last_us>=? ORDER BY last_us",
                (project, _to_us(since) if since else 0),
            ).fetchall()
            return JobResults(jobs=[self._job(r) for r in rows], ts=_from_us(ts))

    def counts(self) -> dict[int, dict[str, int]]:
        """Jobs per state per project (for ``fahflow sim status``)."""
        with self.lock:
            out: dict[int, dict[str, int]] = {p: {} for p in self.list_projects()}
            for row in self._db.execute(
                "SELECT project, state, COUNT(*) AS n FROM jobs GROUP BY project, state"
            ):
                out.setdefault(row["project"], {})[row["state"]] = row["n"]
            return out

    def busy_volunteers(self) -> dict[str, str]:
        """Volunteer name -> PRCG of its open assignment."""
        with self.lock:
            rows = self._db.execute(
                "SELECT volunteer, project, run, clone, gen FROM assignments WHERE status='open'"
            ).fetchall()
        return {
            r["volunteer"]: f"P{r['project']} R{r['run']} C{r['clone']} G{r['gen']}" for r in rows
        }

    # -- volunteers -------------------------------------------------------------------------

    def assign(self, volunteer: str) -> Assignment | None:
        """Hand the longest-waiting READY job to ``volunteer``, or ``None`` when there is none."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state='READY' ORDER BY last_us LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            job = self._job(row)
            project = self.get_project(job.project)
            deadline = self.clock.now() + project.timeout
            token = secrets.token_hex(16)
            db.execute(
                "INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?, ?, 'open')",
                (token, job.project, job.run, job.clone, job.gen, volunteer, deadline),
            )
            self._set(
                db,
                job,
                f"assigned to {volunteer}",
                state=JobState.ASSIGNED.value,
                assigns=job.assigns + 1,
                deadline=deadline,
            )
        return Assignment(
            token, job.project, job.run, job.clone, job.gen, job.assigns + 1, deadline, project
        )

    def _open_assignment(self, token: str) -> tuple[sqlite3.Row, JobData]:
        row = self._db.execute("SELECT * FROM assignments WHERE token=?", (token,)).fetchone()
        if row is None:
            raise NotFound("unknown assignment", status=404)
        job = self.get_job(row["project"], row["run"], row["clone"])
        fresh = row["status"] in ("open", "expired") and job.gen == row["gen"]
        if not fresh or job.state not in (JobState.ASSIGNED, JobState.READY):
            raise Conflict(
                f"assignment for {job.project}:{job.run}:{job.clone} gen {row['gen']} is stale "
                f"(job {job.state.value} at gen {job.gen})",
                status=409,
            )
        return row, job

    def finish(self, token: str, gens: int, write_results: Callable[[JobData], None]) -> JobData:
        """Accept a return: the first valid return of a GEN wins (as on FAH), later ones are
        stale. ``write_results`` stores the files before the state says FINISHED."""
        with self._tx() as db:
            row, job = self._open_assignment(token)
            write_results(job)
            db.execute(
                "UPDATE assignments SET status='superseded' WHERE project=? AND run=? AND "
                "clone=? AND status IN ('open', 'expired')",
                (job.project, job.run, job.clone),
            )
            db.execute("UPDATE assignments SET status='returned' WHERE token=?", (token,))
            who = f"returned by {row['volunteer']}"
            if job.gen + 1 < gens:
                self._set(db, job, who, state=JobState.READY.value, gen=job.gen + 1, progress=0)
            else:
                self._set(db, job, who, state=JobState.FINISHED.value, progress=1.0)
        return self.get_job(job.project, job.run, job.clone)

    def fault(self, token: str, reason: str, max_retries: int) -> JobData:
        """A faulty return: back to READY, or FAILED once ``max_retries`` faults accumulated."""
        with self._tx() as db:
            row, job = self._open_assignment(token)
            db.execute("UPDATE assignments SET status='faulty' WHERE token=?", (token,))
            if row["status"] == "expired":  # late: the WU is someone else's now, leave it be
                self.log("job.fault.late", project=job.project, run=job.run, clone=job.clone)
                return job
            retries = job.retries + 1
            state = JobState.FAILED if retries >= max_retries else JobState.READY
            self._set(db, job, f"faulty return: {reason}", state=state.value, retries=retries)
        return self.get_job(job.project, job.run, job.clone)

    def expire(self) -> int:
        """Put ASSIGNED jobs whose deadline passed back to READY (the volunteer vanished)."""
        now = self.clock.now()
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state='ASSIGNED' AND deadline<?", (now,)
            ).fetchall()
            for row in rows:
                job = self._job(row)
                db.execute(
                    "UPDATE assignments SET status='expired' WHERE project=? AND run=? AND "
                    "clone=? AND status='open'",
                    (job.project, job.run, job.clone),
                )
                self._set(db, job, "timeout: reassigning", state=JobState.READY.value)
        return len(rows)

    def next_deadline(self) -> float | None:
        with self.lock:
            row = self._db.execute(
                "SELECT MIN(deadline) AS d FROM jobs WHERE state='ASSIGNED'"
            ).fetchone()
        return row["d"] if row else None

    # -- assignment server ------------------------------------------------------------------

    def get_as_ws(self, ip: str) -> ASWorkServerData:
        with self.lock:
            row = self._db.execute("SELECT data FROM as_ws WHERE ip=?", (ip,)).fetchone()
        if row is None:
            raise NotFound(f"work server {ip} not known to the AS", status=404)
        return ASWorkServerData.model_validate_json(row["data"])

    def put_as_ws(self, ip: str, data: ASWorkServerData) -> ASWorkServerData:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO as_ws VALUES (?, ?)", (ip, data.model_dump_json()))
        self.log("as.ws.put", ip=ip, **data.model_dump(mode="json"))
        return data

    def get_as_project(self, ip: str, project: int) -> ASProjectData:
        with self.lock:
            row = self._db.execute(
                "SELECT data FROM as_projects WHERE ip=? AND project=?", (ip, project)
            ).fetchone()
        if row is None:
            raise NotFound(f"project {project} on {ip} not known to the AS", status=404)
        return ASProjectData.model_validate_json(row["data"])

    def put_as_project(self, ip: str, project: int, data: ASProjectData) -> ASProjectData:
        data = data.model_copy(update={"ws": data.ws or ip})
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO as_projects VALUES (?, ?, ?)",
                (ip, project, data.model_dump_json()),
            )
        self.log("as.project.put", ip=ip, project=project, **data.model_dump(mode="json"))
        return data
