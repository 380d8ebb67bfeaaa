"""The states a Task and a WU pass through, and who moves them: one table each.

The ledger (:mod:`fahflow.ledger`) is the only writer of these states, and it moves a row only
along a transition listed here (:meth:`~fahflow.ledger.Ledger.advance_task`,
:meth:`~fahflow.ledger.Ledger.advance_wu`); anything else is a :class:`~fahflow.errors.
LedgerError` naming both states. docs/architecture.md shows these tables; a test keeps the two
the same.

Whether a Task's outcome reached its source is not a state but a stamp (``pushed_at``): a
finished Task is pushed exactly once, whichever way it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TaskState(StrEnum):
    """Where a claimed Task is. ANALYZED and FAILED are final: the push step sends them back."""

    CLAIMED = "claimed"  # recorded in the ledger; nothing built or staged yet
    STAGED = "staged"  # PRCG ids allocated, WU files where the WS sends them from
    CREATED = "created"  # every job created on the WS (and confirmed)
    FINISHED = "finished"  # every WU FINISHED on the WS
    ANALYZED = "analyzed"  # ΔG ± σ estimated from the collected works
    FAILED = "failed"  # gave up, with the reason


class WuState(StrEnum):
    """Where one work unit (one FAH job, one CLONE) is, as far as fahflow knows."""

    ALLOCATED = "allocated"  # PRCG ids given; no WS call yet
    CREATE_INTENT = "create_intent"  # about to call create (or called, answer not recorded)
    CREATED = "created"  # the job exists on the WS; waiting for it to finish
    RESTART_INTENT = "restart_intent"  # FAILED on the WS; restart about to be (or being) sent
    FINISHED = "finished"  # FINISHED on the WS: its results can be collected
    FAILED = "failed"  # FAILED on the WS with no restarts left


@dataclass(frozen=True)
class Transition:
    """One allowed move: from ``frm`` to ``to``, made by the batch step ``by``, when ``when``."""

    frm: str
    to: str
    by: str
    when: str


TASK_TRANSITIONS: tuple[Transition, ...] = (
    Transition(TaskState.CLAIMED, TaskState.STAGED, "stage", "its WU files are in place"),
    Transition(TaskState.CLAIMED, TaskState.FAILED, "stage", "no configured PROJECT fits it"),
    Transition(TaskState.STAGED, TaskState.CREATED, "create", "every job is confirmed"),
    Transition(TaskState.CREATED, TaskState.FINISHED, "poll", "every WU is FINISHED"),
    Transition(TaskState.CREATED, TaskState.FAILED, "poll", "a WU FAILED with no restarts left"),
    Transition(TaskState.FINISHED, TaskState.ANALYZED, "analyze", "BAR gave ΔG ± σ"),
    Transition(TaskState.FINISHED, TaskState.FAILED, "analyze", "no usable work pair"),
)
"""A Task starts CLAIMED (step ``claim``); ANALYZED and FAILED end it."""

WU_TRANSITIONS: tuple[Transition, ...] = (
    Transition(WuState.ALLOCATED, WuState.CREATE_INTENT, "create", "before the create call"),
    Transition(WuState.CREATE_INTENT, WuState.CREATED, "create", "created, or found on the WS"),
    Transition(WuState.CREATED, WuState.RESTART_INTENT, "poll", "FAILED on the WS, restarts left"),
    Transition(WuState.RESTART_INTENT, WuState.RESTART_INTENT, "poll", "restart sent again"),
    Transition(WuState.RESTART_INTENT, WuState.CREATED, "poll", "restart confirmed"),
    Transition(WuState.CREATED, WuState.FINISHED, "poll", "FINISHED on the WS"),
    Transition(WuState.RESTART_INTENT, WuState.FINISHED, "poll", "FINISHED on the WS"),
    Transition(WuState.CREATED, WuState.FAILED, "poll", "FAILED, no restarts left"),
    Transition(WuState.RESTART_INTENT, WuState.FAILED, "poll", "FAILED, no restarts left"),
)
"""A WU starts ALLOCATED (step ``stage``); FINISHED and FAILED end it."""

TASK_IN_FLIGHT = (TaskState.CREATED,)
TASK_TO_CREATE = (TaskState.CLAIMED, TaskState.STAGED)  # serialize → stage → create
TASK_TO_PUSH = (TaskState.FINISHED, TaskState.ANALYZED, TaskState.FAILED)  # collect → push
WU_IN_FLIGHT = (WuState.CREATED, WuState.RESTART_INTENT)  # the WS will tell us about these
WU_UNCONFIRMED = (WuState.ALLOCATED, WuState.CREATE_INTENT)  # the create step is not done
WU_AWAITING_WS = (WuState.CREATE_INTENT, *WU_IN_FLIGHT)  # the audit's "in flight" WUs


def allowed(table: tuple[Transition, ...], frm: str, to: str) -> Transition | None:
    """The transition ``frm`` → ``to`` of ``table``, or None if it is not allowed."""
    return next((t for t in table if t.frm == frm and t.to == to), None)


def successors(table: tuple[Transition, ...], frm: str) -> list[str]:
    return sorted({str(t.to) for t in table if t.frm == frm})


def markdown_table(table: tuple[Transition, ...]) -> str:
    """The table as docs/architecture.md shows it (a test keeps the doc and this in step)."""
    rows = ["| from | to | moved by | when |", "|---|---|---|---|"]
    rows += [f"| {t.frm} | {t.to} | `{t.by}` | {t.when} |" for t in table]
    return "\n".join(rows)
