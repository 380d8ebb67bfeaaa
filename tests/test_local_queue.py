"""The local queue: claims hand each Task out once; an outcome is recorded once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fahflow.errors import LedgerError
from fahflow.outcome import Outcome, PairedWork
from fahflow.tasks import LocalQueue
from fahflow.tasks.base import safe_id, task_id_for


def test_claim_hands_out_each_task_once(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q.sqlite")
    keys = queue.submit("water box", "name: water\n", 3)
    assert len(set(keys)) == 3
    first = queue.claim("svc", 2)
    second = queue.claim("svc", 5)
    assert len(first) == 2 and len(second) == 1
    assert {t.key for t in first + second} == set(keys)
    assert queue.claim("svc", 5) == []
    assert queue.claimed_keys("svc") == set(keys)
    assert queue.claimed_keys("other") == set()
    assert first[0].transformation_id.startswith("water_box-")
    assert first[0].payload == "name: water\n"


def test_outcome_is_recorded_once_and_calls_are_counted(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q.sqlite")
    (key,) = queue.submit("t", "name: t\n", 1)
    queue.claim("svc", 1)
    assert not queue.has_outcome(key)
    work = PairedWork(key="P1/R0/C0/G0/cycle0", group="P1/R0/C0", w_F_kT=1.0, w_R_kT=-1.0)
    assert queue.push(key, Outcome(status="ok", Delta_f_kT=1.0, temperature_K=300, works=[work]))
    assert queue.has_outcome(key)
    assert not queue.push(key, Outcome.failure("late failure"))  # the first outcome stands
    (row,) = queue.rows()
    assert row["status"] == "complete"
    assert row["error"] is None
    assert row["pushes"] == 2  # both calls counted: the workflow must not make the second
    assert queue.claimed_keys("svc") == set()


def test_unknown_key_and_bad_count_are_errors(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q.sqlite")
    with pytest.raises(LedgerError, match="no Task 'nope'"):
        queue.push("nope", Outcome.failure("x"))
    with pytest.raises(ValueError, match="at least 1"):
        queue.submit("t", "name: t\n", 0)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("Task-abc-123", "Task-abc-123"), ("../../etc/passwd", "etc_passwd"), ("a b/c.d", "a_b_c_d")],
)
def test_safe_id_never_yields_a_path(raw: str, safe: str) -> None:
    assert safe_id(raw) == safe


def test_safe_id_refuses_nothing_left() -> None:
    with pytest.raises(ValueError, match="cannot make a safe id"):
        safe_id("../..")


ALCHEMISCALE_KEY = (
    "Task-9a7c3f1e0b2d4c6e8f0a1b2c3d4e5f60-openforcefield-tyk2_benchmark_campaign-tyk2_project"
)


@pytest.mark.parametrize(
    "keys",
    [
        ["col/1", "col_1", "col.1", "col 1", "_col_1_"],  # sanitize alike
        ["x" * 100 + "a", "x" * 100 + "b"],  # share their first 64 characters
        [ALCHEMISCALE_KEY, ALCHEMISCALE_KEY.replace("tyk2_project", "tyk2-project")],
    ],
)
def test_task_ids_are_injective_over_source_keys(keys: list[str]) -> None:
    ids = [task_id_for(k) for k in keys]
    assert len(set(ids)) == len(keys)
    for task_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,81}", task_id), task_id
    assert task_id_for(keys[0]) == ids[0]  # stable: the same key always gets the same id


def test_alchemiscale_task_keys_keep_a_readable_prefix() -> None:
    task_id = task_id_for(ALCHEMISCALE_KEY)
    assert task_id.startswith("Task-9a7c3f1e0b2d4c6e8f0a1b2c3d4e5f60-openforcefield-")
    assert task_id_for("../..").startswith("task-")  # nothing safe left: still an id


def test_queue_tasks_claimed_under_merging_keys_stay_apart(tmp_path: Path) -> None:
    """The outside test's case: keys that sanitize alike were silently dropped by the ledger."""
    from fahflow.ledger import Ledger

    queue = LocalQueue(tmp_path / "q.sqlite")
    queue.submit("t", "name: t\n", 1)  # a Transformation; its Task is replaced below
    with queue._conn:
        queue._conn.execute("DELETE FROM tasks")
        for key in ("col/1", "col_1", "col.1"):
            queue._conn.execute(
                "INSERT INTO tasks (key, transformation_id, status, submitted_at) "
                "SELECT ?, transformation_id, 'waiting', submitted_at FROM transformations",
                (key,),
            )
    claimed = queue.claim("svc", 10)
    with Ledger(tmp_path / "l.sqlite") as ledger:
        for task in claimed:
            assert ledger.add_task(
                task_id=task.task_id, source="local", source_key=task.key,
                transformation_id=task.transformation_id, name=task.name,
                payload=task.payload, n_wus=1,
            )  # fmt: skip
        assert sorted(t.source_key for t in ledger.tasks()) == ["col.1", "col/1", "col_1"]
