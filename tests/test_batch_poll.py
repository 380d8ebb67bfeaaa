"""The poll step against a scripted work server: what jobs?since= cannot report is asked for by
name, a failing call costs one WU (not the batch), and every restart sent is counted.

The real HTTPS path is covered by tests/test_workflow.py; here the WS is a small double whose
answers each test sets, so each rule of :mod:`fahflow.batch.poll` is pinned on its own.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fahflow.batch.audit import AuditError, audit
from fahflow.batch.context import BatchContext
from fahflow.batch.create import create
from fahflow.batch.poll import poll
from fahflow.config import FahflowConfig
from fahflow.errors import Conflict, OutcomeUnknown, TransientError
from fahflow.states import TaskState, WuState
from fahflow.ws.models import JobData, JobResults, JobState

PROJECT = 7


class ScriptedWS:
    """Jobs by (run, clone); ``jobs_since`` reports only those in ``changed``."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[int, int], JobState] = {}
        self.changed: set[tuple[int, int]] = set()
        self.get_calls: list[tuple[int, int]] = []
        self.restart_calls: list[tuple[int, int]] = []
        self.restart_error: Exception | None = None
        self.created: list[tuple[int, int]] = []

    def _job(self, run: int, clone: int) -> JobData:
        return JobData(project=PROJECT, run=run, clone=clone, state=self.jobs[run, clone])

    def jobs_since(self, project: int, since: datetime | None) -> JobResults:
        jobs = [self._job(r, c) for r, c in sorted(self.changed)]
        self.changed = set()
        return JobResults(jobs=jobs, ts=datetime.now(UTC))

    def get_job(self, project: int, run: int, clone: int) -> JobData:
        self.get_calls.append((run, clone))
        return self._job(run, clone)

    def restart_job(self, project: int, run: int, clone: int) -> None:
        self.restart_calls.append((run, clone))
        if self.restart_error is not None:
            raise self.restart_error
        self.jobs[run, clone] = JobState.READY

    def create_clone(self, project: int, run: int, clone: int) -> None:
        self.created.append((run, clone))
        if (run, clone) in self.jobs:
            raise Conflict("job exists", status=409)
        self.jobs[run, clone] = JobState.NEW


@pytest.fixture
def ctx(tmp_path: Path) -> BatchContext:
    config = FahflowConfig.model_validate(
        {
            "ws": {"url": "https://ws.invalid", "cert": "c.pem", "key": "k.pem",
                   "staging": "api"},
            "projects": [{"id": PROJECT, "atoms": 100, "contact": "o@example.org", "credit": 1}],
            "ledger": {"path": str(tmp_path / "ledger.sqlite")},
            "batch": {"max_restarts": 1, "results_dir": str(tmp_path / "results")},
        }
    )  # fmt: skip
    context = BatchContext(config)
    context.__dict__["ws"] = ScriptedWS()  # the cached_property, replaced by the double
    return context


def _created_task(ctx: BatchContext, task: str = "t", n_wus: int = 2) -> None:
    """A Task whose WUs were created through the normal path (intent, call, confirmation)."""
    ctx.ledger.add_task(
        task_id=task, source="local", source_key=task, transformation_id="tf", name="tf",
        payload="name: x", n_wus=n_wus,
    )  # fmt: skip
    ctx.ledger.allocate(task, PROJECT)
    ctx.ledger.advance_task(task, TaskState.STAGED)
    create(ctx, task, ctx.results_dir / task / "created.json")


def _poll(ctx: BatchContext, tmp_path: Path) -> dict:
    return poll(ctx, tmp_path / "poll.json")


def test_a_job_found_on_the_ws_is_asked_for_by_the_next_poll(ctx, tmp_path) -> None:
    """The lost-create-answer case: the job FINISHED before the poll cursor; no jobs?since= will
    ever report it again, so the WU confirmed from it must be checked by name."""
    ws = ctx.ws
    ctx.ledger.add_task(
        task_id="t", source="local", source_key="t", transformation_id="tf", name="tf",
        payload="name: x", n_wus=1,
    )  # fmt: skip
    (wu,) = ctx.ledger.allocate("t", PROJECT)
    ctx.ledger.advance_task("t", TaskState.STAGED)
    ctx.ledger.advance_wu(wu, WuState.CREATE_INTENT)
    ws.jobs[wu.run, wu.clone] = JobState.FINISHED  # the create reached the WS; its answer lost
    create(ctx, "t", tmp_path / "created.json")  # finds the job and confirms it
    assert ctx.ledger.wus("t")[0].seen_at is None
    _poll(ctx, tmp_path)  # jobs?since= reports nothing: the change predates the cursor
    assert ws.get_calls[-1] == (wu.run, wu.clone)
    assert ctx.ledger.task("t").state == "finished"


def test_created_jobs_are_not_asked_for_until_quiet_too_long(ctx, tmp_path) -> None:
    ws = ctx.ws
    _created_task(ctx)
    assert all(w.seen_at is not None for w in ctx.ledger.wus("t"))
    _poll(ctx, tmp_path)
    assert ws.get_calls == []  # just created, seen: jobs?since= will report their changes
    # Quiet for longer than batch.check_unseen_after_s: asked for by name, oldest first.
    ctx.config.batch.check_unseen_after_s = 1e-6
    ctx.config.batch.check_unseen_max = 1
    first = min(ctx.ledger.wus("t"), key=lambda w: w.seen_at)
    _poll(ctx, tmp_path)
    assert ws.get_calls == [(first.run, first.clone)]
    assert ctx.ledger.wus("t")[first.idx].seen_at > first.seen_at


def test_a_failing_restart_costs_only_its_wu(ctx, tmp_path) -> None:
    ws = ctx.ws
    _created_task(ctx, "a", n_wus=1)
    _created_task(ctx, "b", n_wus=1)
    (wa,), (wb,) = ctx.ledger.wus("a"), ctx.ledger.wus("b")
    ws.jobs[wa.run, wa.clone] = JobState.FAILED
    ws.jobs[wb.run, wb.clone] = JobState.FINISHED
    ws.changed = {(wa.run, wa.clone), (wb.run, wb.clone)}
    ws.restart_error = Conflict("restart refused", status=400)
    summary = _poll(ctx, tmp_path)
    assert ctx.ledger.task("b").state == "finished"  # the other Task progressed
    assert any("restart refused" in e for e in summary["errors"])
    assert ctx.ledger.wus("a")[0].state == "restart_intent"
    with pytest.raises(AuditError, match="restart refused"):
        audit(ctx, tmp_path / "poll.json", tmp_path / "audit.json")


def test_a_resent_restart_is_counted_and_the_limit_holds(ctx, tmp_path) -> None:
    ws = ctx.ws
    _created_task(ctx, "a", n_wus=1)
    (wu,) = ctx.ledger.wus("a")
    ws.jobs[wu.run, wu.clone] = JobState.FAILED
    ws.changed = {(wu.run, wu.clone)}
    ws.restart_error = OutcomeUnknown("answer lost")  # it may have reached the WS
    _poll(ctx, tmp_path)
    assert ctx.ledger.wus("a")[0].restarts == 1
    ws.restart_error = None
    _poll(ctx, tmp_path)  # still FAILED; max_restarts = 1 was spent on the lost call
    assert len(ws.restart_calls) == 1  # never more restart calls than batch.max_restarts
    assert ctx.ledger.task("a").state == "failed"
    assert "after 1 restart(s)" in ctx.ledger.task("a").reason


def test_a_poll_error_is_isolated_to_its_project(ctx, tmp_path) -> None:
    ws = ctx.ws
    _created_task(ctx, n_wus=1)

    def down(project: int, since: datetime | None) -> JobResults:
        raise TransientError("WS unreachable")

    ws.jobs_since = down
    summary = _poll(ctx, tmp_path)
    assert summary["errors"] == [f"PROJECT {PROJECT}: WS unreachable"]
    assert (tmp_path / "poll.json").exists()  # the checkpoint succeeded; the audit alerts


def test_audit_alerts_on_wus_unseen_for_too_long(ctx, tmp_path) -> None:
    _created_task(ctx, n_wus=1)
    _poll(ctx, tmp_path)
    assert audit(ctx, tmp_path / "poll.json", tmp_path / "audit.json")["unseen"] == {}
    stale = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    with sqlite3.connect(ctx.config.ledger.path) as db:
        db.execute("UPDATE wus SET seen_at = ?", (stale,))
    with pytest.raises(AuditError, match=r"Task t: the WS has not reported on P7/R0/C0/G0"):
        audit(ctx, tmp_path / "poll.json", tmp_path / "audit.json")
