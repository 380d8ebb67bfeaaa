"""The local queue: claims hand each Task out once; an outcome is recorded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fahflow.errors import LedgerError
from fahflow.tasks import LocalQueue
from fahflow.tasks.base import safe_id


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
    assert first[0].spec_yaml == "name: water\n"


def test_outcome_is_recorded_once_and_calls_are_counted(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q.sqlite")
    (key,) = queue.submit("t", "name: t\n", 1)
    queue.claim("svc", 1)
    assert not queue.has_outcome(key)
    assert queue.push_result(key, {"Delta_f_kT": 1.0})
    assert queue.has_outcome(key)
    assert not queue.push_failure(key, "late failure")  # the first outcome stands
    (row,) = queue.rows()
    assert row["status"] == "complete"
    assert row["error"] is None
    assert row["pushes"] == 2  # both calls counted: the workflow must not make the second
    assert queue.claimed_keys("svc") == set()


def test_unknown_key_and_bad_count_are_errors(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q.sqlite")
    with pytest.raises(LedgerError, match="no Task 'nope'"):
        queue.push_failure("nope", "x")
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
