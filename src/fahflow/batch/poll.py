"""Step 5: ask the WS, once per PROJECT, which jobs changed; act on finished and failed ones.

One ``GET /api/projects/{p}/jobs?since=`` per PROJECT with WUs in flight, however many Tasks
are running. FINISHED WUs are recorded; FAILED ones are restarted up to ``batch.max_restarts``
times (intent recorded first, like create), after which their Task fails with the reason.
Jobs still running are not failures: the batch moves on and the next one polls again.

``jobs?since=`` only reports changes after the cursor, so a WU whose changes it cannot have
reported is asked for by name (``get_job``): one confirmed from a job found on the WS (never
seen), one whose restart answer was lost, and one quiet for longer than
``batch.check_unseen_after_s`` (oldest first, ``batch.check_unseen_max`` per PROJECT). A failing
call is isolated to its PROJECT or WU: it is logged and listed under ``errors`` in the record,
which the batch's audit turns into a non-zero exit; every other Task still progresses.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.errors import WorkServerError
from fahflow.failpoints import failpoint
from fahflow.ledger import WorkUnitRow
from fahflow.states import WU_IN_FLIGHT, TaskState, WuState
from fahflow.ws.models import JobData, JobState

logger = logging.getLogger(__name__)


def poll(ctx: BatchContext, out: Path) -> dict[str, Any]:
    """Poll every PROJECT with WUs in flight; update the ledger; write the summary to ``out``."""
    summary: dict[str, Any] = {"projects": {}, "errors": []}
    for project in ctx.ledger.projects_in_flight():
        try:
            summary["projects"][str(project)] = _poll_project(ctx, project, summary["errors"])
        except WorkServerError as exc:
            logger.error("PROJECT %d: poll failed, the next batch polls again: %s", project, exc)
            summary["errors"].append(f"PROJECT {project}: {exc}")
    for task_id in ctx.ledger.tasks_to_settle():
        _settle_task(ctx, task_id)
    write_json(out, summary)
    return summary


def _poll_project(ctx: BatchContext, project: int, errors: list[str]) -> dict[str, int]:
    ledger, ws = ctx.ledger, ctx.ws
    since_text = ledger.poll_since(project)
    since = None
    if since_text:
        since = datetime.fromisoformat(since_text) - timedelta(seconds=ctx.config.ws.poll_overlap_s)
    answer = ws.jobs_since(project, since)
    failpoint("poll.after_jobs")
    in_flight = {(w.run, w.clone): w for w in ledger.wus_in(project, WU_IN_FLIGHT)}
    counts = {"changed": len(answer.jobs), "finished": 0, "restarted": 0, "failed": 0, "asked": 0}
    reported: list[tuple[WorkUnitRow, str]] = []  # jobs that merely moved on: one transaction
    for job in answer.jobs:
        wu = in_flight.pop((job.run, job.clone), None)
        if wu is not None:
            _record(ctx, wu, job, counts, reported, errors)
    ledger.set_ws_states(reported)
    reported = []
    for wu in _to_ask_by_name(ctx, in_flight.values()):
        counts["asked"] += 1
        try:
            job = ws.get_job(wu.project, wu.run, wu.clone)
        except WorkServerError as exc:
            logger.error("%s: cannot ask the WS for its job: %s", wu.prcg, exc)
            errors.append(f"{wu.prcg}: {exc}")
            continue
        _record(ctx, wu, job, counts, reported, errors)
    ledger.set_ws_states(reported)
    ledger.set_poll_since(project, answer.ts.isoformat())
    failpoint("poll.after_cursor")
    return counts


def _to_ask_by_name(ctx: BatchContext, unreported: Any) -> list[WorkUnitRow]:
    """WUs ``jobs?since=`` did not report on and may never: see the module docstring."""
    batch = ctx.config.batch
    cutoff = (datetime.now(UTC) - timedelta(seconds=batch.check_unseen_after_s)).isoformat()
    intents = [w for w in unreported if w.state == WuState.RESTART_INTENT]
    quiet = [w for w in unreported if w.state == WuState.CREATED and (w.seen_at or "") < cutoff]
    quiet.sort(key=lambda w: w.seen_at or "")  # never seen first, then the longest unseen
    return intents + quiet[: batch.check_unseen_max]


def _record(
    ctx: BatchContext,
    wu: WorkUnitRow,
    job: JobData,
    counts: dict[str, int],
    reported: list[tuple[WorkUnitRow, str]],
    errors: list[str],
) -> None:
    """Act on what the WS said about one WU's job."""
    if wu.state == WuState.CREATED and not job.state.is_terminal:
        reported.append((wu, job.state))
        return
    try:
        _handle(ctx, wu, job, counts)
    except WorkServerError as exc:
        logger.error("%s: %s", wu.prcg, exc)
        errors.append(f"{wu.prcg}: {exc}")


def _handle(ctx: BatchContext, wu: WorkUnitRow, job: JobData, counts: dict[str, int]) -> None:
    ledger = ctx.ledger
    if job.state == JobState.FINISHED:
        ledger.advance_wu(wu, WuState.FINISHED, ws_state=job.state, seen=True)
        counts["finished"] += 1
    elif job.state == JobState.FAILED:
        # Every restart call counts when it is about to be sent, a re-sent one too (its first
        # answer was lost, so the WS may have had it): the WS never gets more than the limit.
        if wu.restarts < ctx.config.batch.max_restarts:
            ledger.advance_wu(wu, WuState.RESTART_INTENT, restarted=True, seen=True)
            failpoint("poll.after_restart_intent")
            ctx.ws.restart_job(wu.project, wu.run, wu.clone)
            failpoint("poll.after_restart_call")
            ledger.advance_wu(wu, WuState.CREATED, ws_state=JobState.READY)
            logger.warning("%s FAILED on the WS: restarted (%d)", wu.prcg, wu.restarts + 1)
            counts["restarted"] += 1
        else:
            ledger.advance_wu(wu, WuState.FAILED, ws_state=job.state, seen=True)
            counts["failed"] += 1
    else:
        # The restart reached the WS before the batch died: the job is back in play.
        ledger.advance_wu(wu, WuState.CREATED, ws_state=job.state, seen=True)


def _settle_task(ctx: BatchContext, task_id: str) -> None:
    """A Task is finished when all its WUs are, failed as soon as one WU is out of restarts."""
    wus = ctx.ledger.wus(task_id)
    failed = [w for w in wus if w.state == WuState.FAILED]
    if failed:
        limit = ctx.config.batch.max_restarts
        reason = "; ".join(
            f"WU {w.prcg} FAILED on the work server after {w.restarts} restart(s) "
            f"(batch.max_restarts = {limit})"
            for w in failed
        )
        ctx.ledger.advance_task(task_id, TaskState.FAILED, reason=reason)
    elif all(w.state == WuState.FINISHED for w in wus):
        ctx.ledger.advance_task(task_id, TaskState.FINISHED)
