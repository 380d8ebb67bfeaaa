"""What the simulated WS holds about WUs handed to volunteers: assignments, returns, timeouts.

An assignment is one GEN of one job given to one volunteer, named by a random token. Its
``status`` goes ``open`` → ``returned`` | ``faulty`` | ``expired`` (deadline passed; a late
return is still accepted while the GEN is open) | ``superseded`` (another return of the GEN won)
| ``revoked`` (a job action). The job's side of each step is written in the same transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from fahflow.sim.errors import conflict, not_found
from fahflow.sim.records import Job, JobState, Project
from fahflow.sim.store.jobs import JOB_COLUMNS, JobTables

ASSIGNMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS assignments (
    token TEXT PRIMARY KEY, project INTEGER NOT NULL, run INTEGER NOT NULL,
    clone INTEGER NOT NULL, gen INTEGER NOT NULL, volunteer TEXT NOT NULL,
    deadline REAL NOT NULL, status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assignments_job ON assignments (project, run, clone, status);
"""


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
    project_data: Project


class AssignmentTables(JobTables):
    """The ``assignments`` table, and the job transitions volunteers cause."""

    def _after_action(self, db: sqlite3.Connection, job: Job) -> None:
        self._revoke(db, job)

    def _revoke(self, db: sqlite3.Connection, job: Job, status: str = "revoked") -> None:
        db.execute(
            "UPDATE assignments SET status=? WHERE project=? AND run=? AND clone=? "
            "AND status IN ('open', 'expired')",
            (status, job.project, job.run, job.clone),
        )

    def busy_volunteers(self) -> dict[str, str]:
        """Volunteer name -> PRCG of its open assignment."""
        with self.lock:
            rows = self._db.execute(
                "SELECT volunteer, project, run, clone, gen FROM assignments WHERE status='open'"
            ).fetchall()
        return {
            r["volunteer"]: f"P{r['project']} R{r['run']} C{r['clone']} G{r['gen']}" for r in rows
        }

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

    def _open_assignment(self, token: str) -> tuple[sqlite3.Row, Job]:
        row = self._db.execute("SELECT * FROM assignments WHERE token=?", (token,)).fetchone()
        if row is None:
            raise not_found("unknown assignment")
        job = self.get_job(row["project"], row["run"], row["clone"])
        fresh = row["status"] in ("open", "expired") and job.gen == row["gen"]
        if not fresh or job.state not in (JobState.ASSIGNED, JobState.READY):
            raise conflict(
                f"assignment for {job.project}:{job.run}:{job.clone} gen {row['gen']} is stale "
                f"(job {job.state.value} at gen {job.gen})"
            )
        return row, job

    def finish(self, token: str, gens: int, write_results: Callable[[Job], None]) -> Job:
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

    def fault(self, token: str, reason: str, max_retries: int) -> Job:
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
