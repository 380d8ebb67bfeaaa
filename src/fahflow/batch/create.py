"""Step 4: create each staged WU's job on the work server, exactly once.

The ledger records the intent before the call and the confirmation after it. A WU found with
an intent but no confirmation (a batch died in between, or the call timed out) is checked on
the WS first: if the job exists it is confirmed, otherwise created. PRCG ids are never reused,
so a fresh intent needs no check: no job with those ids can exist yet.

A job created by this call is seen by the WS's ``jobs?since=`` from its birth, since the poll
cursor predates the call. A job *found* on the WS may have changed state before the cursor
(it could even be FINISHED already), so it is confirmed as unseen and the next poll asks the WS
for it by name (``seen_at`` in the ledger): a lost create answer never strands its Task.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.errors import Conflict, LedgerError, NotFound, OutcomeUnknown
from fahflow.failpoints import failpoint
from fahflow.ledger import WorkUnitRow
from fahflow.states import WU_UNCONFIRMED, TaskState, WuState

logger = logging.getLogger(__name__)


def create(ctx: BatchContext, task_id: str, out: Path) -> dict[str, Any]:
    """Create the jobs of ``task_id`` (resuming interrupted creates) and write ``out``."""
    task = ctx.ledger.task(task_id)
    if task.state != TaskState.STAGED:
        # Failed at stage (nothing went to the WS), or created by a run killed before it wrote
        # this record (the Task may have finished since): nothing to create, only the record.
        jobs = {w.prcg: "already created" for w in ctx.ledger.wus(task_id)}
        record: dict[str, Any] = {"task_id": task_id, "jobs": jobs}
        if task.state == TaskState.FAILED:
            record["failed"] = task.reason
        write_json(out, record)
        return record
    outcomes: dict[str, str] = {}
    for wu in ctx.ledger.wus(task_id):
        if wu.state == WuState.ALLOCATED:
            if not ctx.ledger.advance_wu(wu, WuState.CREATE_INTENT):
                outcomes[wu.prcg] = "taken by another process"
                continue
            failpoint("create.after_intent")
            outcomes[wu.prcg] = _create(ctx, wu, check_first=False)
        elif wu.state == WuState.CREATE_INTENT:
            outcomes[wu.prcg] = _create(ctx, wu, check_first=True)
        else:
            outcomes[wu.prcg] = "already created"
    pending = [w.prcg for w in ctx.ledger.wus(task_id) if w.state in WU_UNCONFIRMED]
    if pending:
        raise LedgerError(f"Task {task_id}: WUs {pending} not confirmed yet; the next batch checks")
    ctx.ledger.advance_task(task_id, TaskState.CREATED)
    failpoint("create.before_record")
    record = {"task_id": task_id, "jobs": outcomes}
    write_json(out, record)
    return record


def _create(ctx: BatchContext, wu: WorkUnitRow, *, check_first: bool) -> str:
    ws = ctx.ws
    if check_first:
        try:
            job = ws.get_job(wu.project, wu.run, wu.clone)
        except NotFound:
            pass
        else:
            logger.info("%s already on the WS (%s): confirming", wu.prcg, job.state)
            ctx.ledger.advance_wu(wu, WuState.CREATED, ws_state=job.state, seen=False)
            return "found on the WS"
    try:
        ws.create_clone(wu.project, wu.run, wu.clone)
        failpoint("create.after_call")
    except OutcomeUnknown as exc:
        # The create may or may not have reached the WS: the intent stays, and the next batch
        # looks for the job before trying again (check_first).
        logger.warning("%s: %s; the next batch checks the WS", wu.prcg, exc)
        return "outcome unknown: the next batch checks the WS"
    except Conflict:
        # The job exists: a create we could not confirm did reach the WS after all.
        job = ws.get_job(wu.project, wu.run, wu.clone)
        ctx.ledger.advance_wu(wu, WuState.CREATED, ws_state=job.state, seen=False)
        return "found on the WS"
    ctx.ledger.advance_wu(wu, WuState.CREATED, seen=True)
    return "created"
