"""The create step when the WS's answer to a create was lost (:class:`OutcomeUnknown`): the intent
stays, the other WUs go ahead, and the next batch looks for the job before creating it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fahflow.batch.context import BatchContext
from fahflow.batch.create import create
from fahflow.config import FahflowConfig
from fahflow.errors import LedgerError, NotFound, OutcomeUnknown
from fahflow.states import TaskState
from fahflow.ws.models import JobData, JobState

PROJECT = 7


class LosingWS:
    """Creates jobs; the answer to the first create of a CLONE in ``lose`` is lost after the WS
    acted on it."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[int, int], JobState] = {}
        self.lose: set[tuple[int, int]] = set()
        self.calls: list[tuple[str, int, int]] = []

    def get_job(self, project: int, run: int, clone: int) -> JobData:
        self.calls.append(("get", run, clone))
        if (run, clone) not in self.jobs:
            raise NotFound(f"job {project}:{run}:{clone} not found", status=404)
        return JobData(project=project, run=run, clone=clone, state=self.jobs[run, clone])

    def create_clone(self, project: int, run: int, clone: int) -> None:
        self.calls.append(("create", run, clone))
        self.jobs[run, clone] = JobState.READY
        if (run, clone) in self.lose:
            self.lose.discard((run, clone))
            raise OutcomeUnknown("PUT …/create failed: HTTP 504: the outcome is unknown")


@pytest.fixture
def ctx(tmp_path: Path) -> BatchContext:
    config = FahflowConfig.model_validate(
        {
            "ws": {"url": "https://ws.invalid", "cert": "c.pem", "key": "k.pem",
                   "staging": "api"},
            "projects": [{"id": PROJECT, "atoms": 100, "contact": "o@example.org", "credit": 1}],
            "ledger": {"path": str(tmp_path / "ledger.sqlite")},
            "batch": {"results_dir": str(tmp_path / "results")},
        }
    )  # fmt: skip
    context = BatchContext(config)
    context.__dict__["ws"] = LosingWS()  # the cached_property, replaced by the double
    return context


def _staged_task(ctx: BatchContext, n_wus: int) -> None:
    ctx.ledger.add_task(
        task_id="t", source="local", source_key="t", transformation_id="tf", name="tf",
        payload="name: x", n_wus=n_wus,
    )  # fmt: skip
    ctx.ledger.allocate("t", PROJECT)
    ctx.ledger.advance_task("t", TaskState.STAGED)


def test_a_lost_create_answer_keeps_the_intent_and_the_next_batch_checks(ctx, tmp_path):
    ws = ctx.ws
    _staged_task(ctx, n_wus=2)
    first, second = ctx.ledger.wus("t")
    ws.lose = {(first.run, first.clone)}
    with pytest.raises(LedgerError, match=rf"\['{first.prcg}'\] not confirmed yet"):
        create(ctx, "t", tmp_path / "created.json")
    assert [w.state for w in ctx.ledger.wus("t")] == ["create_intent", "created"]  # 2nd went on
    assert ws.calls == [("create", first.run, first.clone), ("create", second.run, second.clone)]
    assert not (tmp_path / "created.json").exists()

    ws.calls.clear()
    record = create(ctx, "t", tmp_path / "created.json")  # the next batch
    assert ws.calls == [("get", first.run, first.clone)]  # found on the WS: never created twice
    assert record["jobs"] == {first.prcg: "found on the WS", second.prcg: "already created"}
    assert [w.state for w in ctx.ledger.wus("t")] == ["created", "created"]
    assert ctx.ledger.task("t").state == "created"


def test_a_create_rerun_after_its_task_moved_on_only_writes_the_record(ctx, tmp_path):
    """Killed after confirming, before writing created.json: by the next batch the Task may have
    finished. The rerun (Snakemake wants created.json for collect) calls nothing, moves nothing."""
    ws = ctx.ws
    _staged_task(ctx, n_wus=1)
    create(ctx, "t", tmp_path / "first.json")
    (wu,) = ctx.ledger.wus("t")
    ctx.ledger.advance_wu(wu, "finished")
    ctx.ledger.advance_task("t", TaskState.FINISHED)
    ws.calls.clear()
    record = create(ctx, "t", tmp_path / "created.json")
    assert ws.calls == [] and record["jobs"] == {wu.prcg: "already created"}
    assert ctx.ledger.task("t").state == "finished"
