"""Step 1: claim Tasks from the source and record them in the ledger."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.errors import ConfigError, TransientError
from fahflow.failpoints import failpoint
from fahflow.kinds import kind_for
from fahflow.kinds.base import TaskRefused
from fahflow.outcome import Outcome
from fahflow.tasks import ClaimedTask

logger = logging.getLogger(__name__)


def claim(ctx: BatchContext, out: Path) -> dict[str, Any]:
    """Claim up to ``tasks.claim_max`` new Tasks and record each in the ledger.

    First repairs an interrupted claim: Tasks the source has handed to this service but the
    ledger does not know (a batch killed between the two writes) are recorded now. A Task its
    kind refuses (an invalid spec, a gufe protocol fahflow does not run) is failed at the source
    at once with the reason, before anything is staged, since no retry can fix it. Writes the
    batch's claim record to ``out``.
    """
    renew_certificate(ctx)
    service = ctx.config.tasks.service_id
    source = ctx.source
    known = ctx.ledger.source_keys(source.name)
    try:
        repaired = [source.get(key) for key in sorted(source.claimed_keys(service) - known)]
        new = source.claim(service, ctx.config.tasks.claim_max)
    except TransientError as exc:
        # The source is unreachable: the rest of the batch (polls, results, pushes) still runs;
        # the audit fails the batch at its end, and the next batch claims again.
        logger.error("claiming from %s failed, nothing claimed this batch: %s", source.name, exc)
        summary = {"claimed": [], "repaired": [], "rejected": [], "source_error": str(exc)}
        write_json(out, summary)
        return summary
    failpoint("claim.after_source_claim")
    recorded, rejected, again = [], [], []
    for task in repaired + new:
        if task.key in known:
            # Handed out again (alchemiscale gave it back to waiting after a lost registration
            # and this service claimed it anew): its WUs are already on FAH; nothing to redo.
            again.append(task.task_id)
            if ctx.ledger.task(task.task_id).pushed_at is not None:
                logger.warning(
                    "Task %s was handed out again although its result was pushed (while it "
                    "was waiting after a lost registration, alchemiscale keeps such a Task "
                    "claimable); it stays running under this service: a second push would be "
                    "a second result (docs/alchemiscale.md)", task.key,
                )  # fmt: skip
            continue
        try:
            _record(ctx, task)
            recorded.append(task.task_id)
            failpoint("claim.after_record")
        except (TaskRefused, ConfigError) as exc:
            logger.error("Task %s refused: %s", task.key, exc)
            source.push(task.key, Outcome.failure(f"refused at claim: {exc}"))
            rejected.append(task.key)
    summary = {
        "claimed": recorded,
        "repaired": [t.task_id for t in repaired],
        "rejected": rejected,
        "claimed_again": again,
    }
    write_json(out, summary)
    return summary


def renew_certificate(ctx: BatchContext) -> bool:
    """Renew the operator certificate through the AS when its life runs low (first thing in
    every batch). A failed renewal of a still-valid certificate is a warning, not a failure:
    the next batch tries again; an expired certificate stops the batch with a clear error."""
    ws = ctx.config.ws
    if ws.as_url is None:
        return False
    from fahflow.ws import certs
    from fahflow.ws.client import AssignmentServerClient

    with AssignmentServerClient(ws.as_url, **ctx.tls) as as_client:
        try:
            return certs.renew_if_needed(ws.cert, ws.key, as_client, ws.renew_below)
        except TransientError as exc:
            logger.warning("certificate renewal failed, will retry next batch: %s", exc)
            return False


def _record(ctx: BatchContext, task: ClaimedTask) -> None:
    """The kind checks the payload and says how many WUs (and, gufe, makes the Task's DAG, once:
    the ledger keeps it with the Task); serialize later writes the payload out."""
    claimed = kind_for(task.kind).claim(
        task.payload, f"Task {task.key}", extends=task.extends, dag_name=task.dag_name
    )
    ctx.ledger.add_task(
        task_id=task.task_id,
        source=ctx.source.name,
        source_key=task.key,
        transformation_id=task.transformation_id,
        name=task.name,
        payload=task.payload,
        n_wus=claimed.n_wus,
        kind=task.kind,
        dag=claimed.dag,
    )
