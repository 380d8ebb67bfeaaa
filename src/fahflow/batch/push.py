"""Step 8: send each Task's outcome, result or failure, back to its source, exactly once.

The source is asked first whether the Task already has an outcome, so a push that reached the
source before the batch died is recorded in the ledger instead of being sent again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.failpoints import failpoint
from fahflow.outcome import Outcome, ProtocolOutcome


def push(ctx: BatchContext, task_id: str, outcome_path: Path | None, out: Path) -> dict[str, Any]:
    """Push the outcome of ``task_id`` (``outcome_path``, or the ledger's failure reason)."""
    task = ctx.ledger.task(task_id)
    if outcome_path is not None:
        outcome = Outcome.model_validate_json(outcome_path.read_text())
    else:
        outcome = Outcome.failure(task.reason or "failed", task_id)
        recorded = ctx.protocol_record(task_id)  # a setup that failed (stage)
        if recorded.is_file():
            outcome.protocol = ProtocolOutcome.model_validate_json(recorded.read_text())
    sent = False
    if task.pushed_at is None:
        if not ctx.source.has_outcome(task.source_key):
            ctx.source.push(task.source_key, outcome)
            failpoint("push.after_source_push")
            sent = True
        ctx.ledger.mark_pushed(task_id)
        failpoint("push.after_record")
    record = {"task_id": task_id, "status": outcome.status, "sent_now": sent}
    write_json(out, record)
    return record
