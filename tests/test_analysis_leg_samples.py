"""``leg_work_samples``: the cumulative work along each leg, read as ``parse_globals`` reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fahflow.analysis.globals import Schedule, leg_work_samples, parse_globals
from fahflow.errors import ConfigError

REAL_CORE_GLOBALS = Path(__file__).parent / "data" / "globals-real-core.csv"


def test_samples_span_each_leg_and_end_in_the_pair() -> None:
    wu = parse_globals(REAL_CORE_GLOBALS)
    assert wu.schedule is not None
    forward, reverse = leg_work_samples(REAL_CORE_GLOBALS, wu.schedule)
    freq = 25_000  # the real core wrote a row every 25000 steps (41 rows over 10^6)
    assert len(forward) == wu.schedule.n_steps_neq // freq + 1 == len(reverse)
    assert forward[-1] - forward[0] == pytest.approx(wu.cycles[0].w_F)
    assert reverse[-1] - reverse[0] == pytest.approx(wu.cycles[0].w_R)
    assert forward[-1] - forward[0] == pytest.approx(153.776, abs=1e-3)


def test_duplicate_rows_keep_the_last(tmp_path: Path) -> None:
    header = "Step,kT,lambda,n_steps_eq,n_steps_neq,n_steps_per_cycle,protocol_work"
    rows = [f"{s},2.5,{lam},10,10,40,{w}" for s, lam, w in (
        (0, 0, 0), (10, 0, 0), (20, 1, 5), (30, 1, 5), (40, 0, 2.5),
    )]  # fmt: skip
    text = "\n".join([header, *rows[:3], header, "20,2.5,1,10,10,40,7.5", *rows[3:]]) + "\n"
    path = tmp_path / "globals.csv"
    path.write_text(text)
    forward, reverse = leg_work_samples(
        path, Schedule(n_steps_eq=10, n_steps_neq=10, n_steps_per_cycle=40)
    )
    assert forward == [0.0, 3.0] and reverse == [2.0, 1.0]


def test_missing_leg_row_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "globals.csv"
    path.write_text("Step,kT,lambda,n_steps_eq,n_steps_neq,n_steps_per_cycle,protocol_work\n"
                    "0,2.5,0,10,10,40,0\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"globals\.csv: no row at step 10"):
        leg_work_samples(path, Schedule(n_steps_eq=10, n_steps_neq=10, n_steps_per_cycle=40))
