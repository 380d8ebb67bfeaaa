"""What the simulated WS holds about projects and jobs, and the rules of a job's life.

Job life (FAH semantics, DESIGN §1)::

    create -> NEW -> READY -> ASSIGNED -> (next GEN: READY) ... -> FINISHED
                         ^        |  faulty return: retries+1 -> READY, or FAILED at max_retries
                         +--------+  timeout (volunteer vanished) -> READY
    fail -> FAILED; stop -> STOPPED; restart (FAILED/STOPPED/HELD) -> READY; reset -> READY at GEN 0

The operator's side of it (create, actions, ``jobs?since=``) is here; the volunteers' side
(assign, return, fault, timeout) is in :mod:`fahflow.sim.store.assignments`.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from fahflow.sim.errors import conflict, not_found
from fahflow.sim.records import Job, JobAction, JobsAnswer, JobState, Project
from fahflow.sim.store.base import StoreBase, from_us, to_us

JOBS_SCHEMA = """
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
"""

JOB_COLUMNS = (
    "project, run, clone, gen, state, last_us, retries, assigns, progress, deadline, "
    "(SELECT json_extract(data, '$.core_id') FROM projects WHERE id=jobs.project) AS core_id"
)
"""Job fields plus the project's core (one query for a whole ``jobs?since=`` answer)."""


class JobTables(StoreBase):
    """The ``projects`` and ``jobs`` tables. Methods raise :class:`HttpError` 404/409 as the WS
    answers."""

    # -- projects ---------------------------------------------------------------------------

    def list_projects(self) -> list[int]:
        with self.lock:
            return [r["id"] for r in self._db.execute("SELECT id FROM projects ORDER BY id")]

    def get_project(self, project: int) -> Project:
        with self.lock:
            row = self._db.execute("SELECT data FROM projects WHERE id=?", (project,)).fetchone()
        if row is None:
            raise not_found(f"Project {project} not found")
        return Project.from_json(json.loads(row["data"]))

    def put_project(self, project: int, data: Project) -> Project:
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

    def _job(self, row: sqlite3.Row) -> Job:
        core = row["core_id"]
        return Job(
            server=self.server_id,
            core=int(core, 16) if isinstance(core, str) else core,
            project=row["project"],
            run=row["run"],
            clone=row["clone"],
            gen=row["gen"],
            state=JobState(row["state"]),
            last=from_us(row["last_us"]),
            retries=row["retries"],
            assigns=row["assigns"],
            progress=row["progress"],
        )

    def get_job(self, project: int, run: int, clone: int) -> Job:
        with self.lock:
            row = self._job_row(project, run, clone)
            if row is None:
                raise not_found(f"Job {project}:{run}:{clone} not found")
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
    ) -> tuple[Job, bool]:
        """Create a job (NEW, then READY, or FAILED when ``missing`` names absent send files).

        An existing job is never re-created: its create count goes up and it is returned with
        ``False`` (``exist_ok``) or refused with a 409.
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
                raise conflict(f"Job {project}:{run}:{clone} already exists")
            return existing, False
        self.log("job.state", **prcg, gen=0, state="NEW")
        if missing:
            self.log("job.state", **prcg, gen=0, state="FAILED", reason=reason)
        else:
            self.log("job.state", **prcg, gen=0, state="READY")
        return self.get_job(project, run, clone), True

    def _set(self, db: sqlite3.Connection, job: Job, reason: str = "", **fields: Any) -> None:
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

    def _after_action(self, db: sqlite3.Connection, job: Job) -> None:
        """Called in the transaction of every job action; the assignments part revokes the
        job's outstanding assignment here."""

    def job_action(self, project: int, run: int, clone: int, action: JobAction) -> Job:
        """fail/reset/stop/restart; a transition that makes no sense is a 409."""
        with self._tx() as db:
            job = self.get_job(project, run, clone)
            bad = conflict(
                f"Job {project}:{run}:{clone} is {job.state.value}: cannot {action.value}"
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
            self._after_action(db, job)
        return self.get_job(project, run, clone)

    def jobs_since(self, project: int, since: datetime | None) -> JobsAnswer:
        """Jobs whose ``last`` is at or after ``since``; ``ts`` is the ``since`` for next time.

        At-least-once: a job changed in the same microsecond as ``ts`` comes again next poll.
        """
        self.get_project(project)
        with self.lock:
            ts = self._stamp()
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE project=? AND last_us>=? ORDER BY last_us",
                (project, to_us(since) if since else 0),
            ).fetchall()
            return JobsAnswer(jobs=[self._job(r) for r in rows], ts=from_us(ts))

    def counts(self) -> dict[int, dict[str, int]]:
        """Jobs per state per project (for ``fahflow sim status``)."""
        with self.lock:
            out: dict[int, dict[str, int]] = {p: {} for p in self.list_projects()}
            for row in self._db.execute(
                "SELECT project, state, COUNT(*) AS n FROM jobs GROUP BY project, state"
            ):
                out.setdefault(row["project"], {})[row["state"]] = row["n"]
            return out
