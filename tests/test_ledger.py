"""The ledger: PRCG ids are allocated once and never reused; states only move forward."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from fahflow.errors import LedgerError
from fahflow.ledger import MAX_ID, SCHEMA_VERSION, Ledger, WorkUnitRow, actionable_tasks
from fahflow.states import TaskState, WuState

TASK_PATH = [TaskState.STAGED, TaskState.CREATED, TaskState.FINISHED, TaskState.ANALYZED]
WU_PATH = [WuState.CREATE_INTENT, WuState.CREATED]


def _move_task(ledger: Ledger, task: str, to: TaskState, reason: str | None = None) -> None:
    """Walk a claimed Task along the normal path to ``to`` (FAILED: straight from CLAIMED)."""
    steps = [to] if to == TaskState.FAILED else TASK_PATH[: TASK_PATH.index(to) + 1]
    for state in steps:
        ledger.advance_task(task, state, reason=reason)


def _confirm(ledger: Ledger, wu: WorkUnitRow) -> None:
    for state in WU_PATH:
        ledger.advance_wu(wu, state)


def _add(ledger: Ledger, task: str, tf: str = "tf", n_wus: int = 2) -> None:
    ledger.add_task(
        task_id=task, source="local", source_key=task, transformation_id=tf, name=tf,
        payload="name: x", n_wus=n_wus,
    )  # fmt: skip


def test_add_task_is_idempotent(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        assert ledger.add_task(
            task_id="t1", source="local", source_key="k1", transformation_id="tf", name="tf",
            payload="name: x", n_wus=3,
        )  # fmt: skip
        assert not ledger.add_task(
            task_id="t1", source="local", source_key="k1", transformation_id="tf", name="tf",
            payload="name: x", n_wus=3,
        )  # fmt: skip
        assert [t.task_id for t in ledger.tasks()] == ["t1"]
        assert ledger.task("t1").state == "claimed"


def test_allocation_is_stable_and_never_reuses_ids(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        _add(ledger, "a", n_wus=3)
        _add(ledger, "b", n_wus=2)
        _add(ledger, "c", tf="other", n_wus=1)
        first = [(w.run, w.clone) for w in ledger.allocate("a", 7)]
        assert first == [(0, 0), (0, 1), (0, 2)]
        assert [(w.run, w.clone) for w in ledger.allocate("a", 7)] == first  # same ids again
        # Same Transformation → same RUN, next CLONEs; another Transformation → a new RUN.
        assert [(w.run, w.clone) for w in ledger.allocate("b", 7)] == [(0, 3), (0, 4)]
        assert [(w.run, w.clone) for w in ledger.allocate("c", 7)] == [(1, 0)]


def test_transformation_never_changes_project(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        _add(ledger, "a")
        _add(ledger, "b")
        ledger.allocate("a", 7)
        with pytest.raises(LedgerError, match="runs in PROJECT 7, not 8"):
            ledger.allocate("b", 8)


def test_full_run_continues_in_a_new_run(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        _add(ledger, "a", n_wus=1)
        ledger.allocate("a", 7)
    with sqlite3.connect(path) as db:  # pretend the RUN's CLONEs are all but used up
        db.execute("UPDATE runs SET next_clone = ? WHERE project = 7 AND run = 0", (MAX_ID,))
    with Ledger(path) as ledger:
        _add(ledger, "b", n_wus=2)
        assert [(w.run, w.clone) for w in ledger.allocate("b", 7)] == [(0, MAX_ID), (1, 0)]


def test_exhausted_project_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        _add(ledger, "a", n_wus=1)
        ledger.allocate("a", 7)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE projects SET next_run = ? WHERE project = 7", (MAX_ID + 1,))
    with Ledger(path) as ledger:
        _add(ledger, "b", tf="new", n_wus=1)
        with pytest.raises(LedgerError, match=r"PROJECT 7 has used all 65536 RUNs"):
            ledger.allocate("b", 7)
        assert ledger.wus("b") == []  # nothing half-allocated


def _allocate_many(path: str, prefix: str) -> None:
    with Ledger(path) as ledger:
        for i in range(20):
            _add(ledger, f"{prefix}{i}", tf="shared", n_wus=3)
            ledger.allocate(f"{prefix}{i}", 7)


def test_concurrent_allocation_gives_distinct_ids(tmp_path: Path) -> None:
    path = str(tmp_path / "l.sqlite")
    Ledger(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_allocate_many, args=(path, p)) for p in "xy"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    with sqlite3.connect(path) as db:
        ids = db.execute("SELECT project, run, clone FROM wus").fetchall()
    assert len(ids) == 120
    assert len(set(ids)) == 120
    assert sorted(c for _, _, c in ids) == list(range(120))


def test_wu_transitions_are_guarded(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        _add(ledger, "a", n_wus=1)
        (wu,) = ledger.allocate("a", 7)
        assert ledger.advance_wu(wu, WuState.CREATE_INTENT)
        assert not ledger.advance_wu(wu, WuState.CREATE_INTENT)  # already moved
        assert ledger.advance_wu(wu, WuState.CREATED)
        assert ledger.projects_in_flight() == [7]
        assert ledger.advance_wu(wu, WuState.RESTART_INTENT, restarted=True)
        assert ledger.task("a").restarts == 1
        with pytest.raises(LedgerError, match="unknown WU state"):
            ledger.advance_wu(wu, "bogus")


def test_illegal_moves_name_both_states(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        _add(ledger, "a", n_wus=1)
        (wu,) = ledger.allocate("a", 7)
        with pytest.raises(
            LedgerError, match=r"from allocated to finished .*only to: create_intent"
        ):
            ledger.advance_wu(wu, WuState.FINISHED)
        with pytest.raises(LedgerError, match="Task a: cannot move from claimed to created"):
            ledger.advance_task("a", TaskState.CREATED)
        _move_task(ledger, "a", TaskState.ANALYZED)
        with pytest.raises(LedgerError, match=r"from analyzed to failed .*nothing, it is final"):
            ledger.advance_task("a", TaskState.FAILED)
        assert ledger.advance_wu(wu, WuState.CREATE_INTENT)  # the row, not the stale `wu`, decides
        assert ledger.wus("a")[0].state is WuState.CREATE_INTENT


def test_actionable_tasks_leaves_out_work_in_flight_and_pushed(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    assert actionable_tasks(path).create == []  # no ledger yet: nothing to do, nothing created
    assert not path.exists()
    with Ledger(path) as ledger:
        for name in ("new", "flying", "done", "broken", "pushed"):
            _add(ledger, name)
        _move_task(ledger, "flying", TaskState.CREATED)
        _move_task(ledger, "done", TaskState.FINISHED)
        _move_task(ledger, "broken", TaskState.FAILED, reason="WU failed")
        _move_task(ledger, "pushed", TaskState.ANALYZED)
        ledger.mark_pushed("pushed")
    act = actionable_tasks(path)
    assert act.create == ["new"]
    assert sorted(act.push) == ["broken", "done"]
    assert act.failed == frozenset({"broken"})
    with Ledger(path) as ledger:
        assert ledger.task("broken").reason == "WU failed"


def test_unknown_task_is_an_error(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger, pytest.raises(LedgerError, match="no Task 'x'"):
        ledger.task("x")


def test_tasks_to_settle_are_derived_from_their_wus(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        for name in ("running", "done", "broken"):
            _add(ledger, name, tf=name)
            _move_task(ledger, name, TaskState.CREATED)
            for wu in ledger.allocate(name, 7):
                _confirm(ledger, wu)
        done = ledger.wus("done")
        for wu in done:
            ledger.advance_wu(wu, WuState.FINISHED)
        ledger.advance_wu(ledger.wus("broken")[0], WuState.FAILED)
        ledger.advance_wu(ledger.wus("running")[0], WuState.FINISHED)
        assert ledger.tasks_to_settle() == ["done", "broken"]


def test_two_source_keys_never_merge_into_one_task(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.add_task(
            task_id="col_1", source="local", source_key="col/1", transformation_id="tf",
            name="tf", payload="name: x", n_wus=1,
        )  # fmt: skip
        with pytest.raises(
            LedgerError, match="'col_1' of local:col_1 is already the id of local:col/1"
        ):
            ledger.add_task(
                task_id="col_1", source="local", source_key="col_1", transformation_id="tf",
                name="tf", payload="name: x", n_wus=1,
            )  # fmt: skip


def test_a_version_1_ledger_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        _add(ledger, "a", n_wus=1)
        ledger.allocate("a", 7)
    with sqlite3.connect(path) as db:  # what fahflow 0.1 wrote: version 1
        db.execute("ALTER TABLE wus DROP COLUMN seen_at")
        db.execute("ALTER TABLE transformations DROP COLUMN kind")
        db.execute("ALTER TABLE transformations RENAME COLUMN payload TO spec_yaml")
        db.execute("DROP TABLE task_dags")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Ledger(path) as ledger:
        (wu,) = ledger.wus("a")
        assert wu.seen_at is None and (wu.run, wu.clone) == (0, 0)
        row = ledger.transformation("tf")
        assert (row.kind, row.payload) == ("spec", "name: x")  # every earlier Task was a spec
        assert ledger.task_dag("a") is None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    with pytest.raises(LedgerError, match=f"version {SCHEMA_VERSION + 1} is newer than this"):
        Ledger(path)


def test_a_tasks_dag_is_stored_once_with_it(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        assert ledger.add_task(
            task_id="g", source="local", source_key="g", transformation_id="tf", name="tf",
            payload="{}", n_wus=2, kind="gufe", dag='{"unit keys": "first"}',
        )  # fmt: skip
        assert not ledger.add_task(  # the claim repaired: the first DAG stands
            task_id="g", source="local", source_key="g", transformation_id="tf", name="tf",
            payload="{}", n_wus=2, kind="gufe", dag='{"unit keys": "second"}',
        )  # fmt: skip
        assert ledger.task_dag("g") == '{"unit keys": "first"}'
        assert ledger.transformation("tf").kind == "gufe"
