"""Step 5: ask the WS, once per PROJECT, which jobs changed; act on finished and failed ones.

One ``GET /api/projects/{p}/jobs?since=`` per PROJECT with WUs in flight, however many Tasks
are running. FINISHED WUs are recorded; FAILED ones are restarted up to ``batch.max_restarts``
times (intent recorded first, like create), after which their Task fails with the reason.
Jobs still running are not failures: the batch moves on and the next one polls again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.failpoints import failpoint
from fahflow.ledger import WorkUnitRow
from fahflow.ws.models import JobData, JobState

logger = logging.getLogger(__name__)

IN_FLIGHT = ("created", "restart_intent")


def poll(ctx: BatchContext, out: Path) -> dict[str, Any]:
    """Poll every PROJECT with WUs in flight; update the ledger; write the summary to ``out``."""
    summary: dict[str, Any] = {}
    for project in ctx.ledger.projects_in_flight():
        summary[str(project)] = _poll_project(ctx, project)
    for task_id in ctx.ledger.tasks_to_settle():
        _settle_task(ctx, task_id)
    write_json(out, summary)
    return summary


def _poll_project(ctx: BatchContext, project: int) -> dict[str, int]:
    ledger, ws = ctx.ledger, ctx.ws
    since_text = ledger.poll_since(project)
    since = None
    if since_text:
        since = datetime.fromisoformat(since_text) - timedelta(seconds=ctx.config.ws.poll_overlap_s)
    answer = ws.jobs_since(project, since)
    failpoint("poll.after_jobs")
    in_flight = {(w.run, w.clone): w for w in ledger.wus_in(project, IN_FLIGHT)}
    counts = {"changed": len(answer.jobs), "finished": 0, "restarted": 0, "failed": 0}
    progress: list[tuple[WorkUnitRow, str]] = []  # jobs that merely moved on: one transaction
    for job in answer.jobs:
        wu = in_flight.pop((job.run, job.clone), None)
        if wu is None:
            continue
        if wu.state == "created" and not job.state.is_terminal:
            if job.state != wu.ws_state:
                progress.append((wu, job.state))
            continue
        _handle(ctx, wu, job, counts)
    ledger.set_ws_states(progress)
    # A restart whose outcome we never recorded (batch killed mid-call): ask for that job.
    for wu in [w for w in in_flight.values() if w.state == "restart_intent"]:
        _handle(ctx, wu, ws.get_job(wu.project, wu.run, wu.clone), counts)
    ledger.set_poll_since(project, answer.ts.isoformat())
    failpoint("poll.after_cursor")
    return counts


def _handle(ctx: BatchContext, wu: WorkUnitRow, job: JobData, counts: dict[str, int]) -> None:
    ledger = ctx.ledger
    if job.state == JobState.FINISHED:
        ledger.set_wu(wu, "finished", frm=IN_FLIGHT, ws_state=job.state)
        counts["finished"] += 1
    elif job.state == JobState.FAILED:
        if wu.state == "restart_intent" or wu.restarts < ctx.config.batch.max_restarts:
            if wu.state == "created":
                ledger.set_wu(wu, "restart_intent", frm=("created",), restarted=True)
                failpoint("poll.after_restart_intent")
            ctx.ws.restart_job(wu.project, wu.run, wu.clone)
            failpoint("poll.after_restart_call")
            ledger.set_wu(wu, "created", frm=("restart_intent",), ws_state=JobState.READY)
            logger.warning("%s FAILED on the WS: restarted (%d)", wu.prcg, wu.restarts + 1)
            counts["restarted"] += 1
        else:
            ledger.set_wu(wu, "failed", frm=IN_FLIGHT, ws_state=job.state)
            counts["failed"] += 1
    else:
        # The restart reached the WS before the batch died: the job is back in play.
        ledger.set_wu(wu, "created", frm=("restart_intent",), ws_state=job.state)


def _settle_task(ctx: BatchContext, task_id: str) -> None:
    """A Task is finished when all its WUs are, failed as soon as one WU is out of restarts."""
    wus = ctx.ledger.wus(task_id)
    failed = [w for w in wus if w.state == "failed"]
    if failed:
        limit = ctx.config.batch.max_restarts
        reason = "; ".join(
            f"WU {w.prcg} FAILED on the work server after {w.restarts} restart(s) "
            f"(batch.max_restarts = {limit})"
            for w in failed
        )
        ctx.ledger.set_task_state(task_id, "failed", reason=reason, frm=("created",))
    elif all(w.state == "finished" for w in wus):
        ctx.ledger.set_task_state(task_id, "finished", frm=("created",))
