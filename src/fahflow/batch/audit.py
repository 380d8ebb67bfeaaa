"""The last step of every batch: nothing may stay in flight unseen.

A batch exits 0 while work merely runs on FAH, so a WU the WS stopped reporting on (a lost
create answer whose job changed before the poll cursor, a job the WS forgot, a PROJECT whose
poll keeps failing) would otherwise wait forever without anyone noticing. The audit reads the
ledger after the poll: WUs on which the WS has not reported for longer than
``batch.unseen_alert_s``, and the errors of this batch's poll, fail the step with one line per
Task, so the batch (and ``scripts/fah-cron``) exits non-zero. Everything else in the batch
still runs (``keep-going``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.errors import FahflowError, TransientError
from fahflow.ledger import Ledger

logger = logging.getLogger(__name__)


class AuditError(FahflowError):
    """The batch did its work, but something needs an operator's attention."""


def unseen_tasks(ledger: Ledger, alert_after_s: float) -> dict[str, list[str]]:
    """task_id → the PRCGs of its WUs the WS has not reported on for ``alert_after_s``."""
    cutoff = (datetime.now(UTC) - timedelta(seconds=alert_after_s)).isoformat()
    tasks: dict[str, list[str]] = defaultdict(list)
    for wu in ledger.unseen_wus(cutoff):
        tasks[wu.task_id].append(f"{wu.prcg} ({wu.state}, last seen {wu.seen_at or 'never'})")
    return dict(tasks)


def audit(
    ctx: BatchContext, poll_record: Path, out: Path, claim_record: Path | None = None
) -> dict[str, Any]:
    """Write the audit record to ``out``; raise :class:`AuditError` if anything needs attention:
    unseen WUs, this batch's poll errors, a claim that could not reach the Task source.

    It runs beside the batch's pushes, not after them, so it does not judge them: a push that
    cannot be sent or settled fails its own step (and so the batch), and ``fahflow status``
    lists it.
    """
    beat = getattr(ctx.source, "beat", None)
    if beat is not None:  # alchemiscale: the end of a long batch beats too
        try:
            beat()
        except TransientError as exc:
            logger.warning("heartbeat at the end of the batch failed: %s", exc)
    limit = ctx.config.batch.unseen_alert_s
    unseen = unseen_tasks(ctx.ledger, limit)
    poll_errors = json.loads(poll_record.read_text()).get("errors", [])
    claim_error = None
    if claim_record is not None:
        claim_error = json.loads(claim_record.read_text()).get("source_error")
    record = {"unseen": unseen, "poll_errors": poll_errors, "claim_error": claim_error}
    if unseen or poll_errors or claim_error:
        lines = [
            f"Task {task}: the WS has not reported on {', '.join(wus)} for over {limit:.0f} s "
            "(batch.unseen_alert_s); check the job with `fahflow ws job`"
            for task, wus in unseen.items()
        ] + [f"poll error: {error}" for error in poll_errors]
        if claim_error:
            lines.append(f"claim error (nothing claimed this batch): {claim_error}")
        raise AuditError("\n".join(lines))
    write_json(out, record)
    return record
