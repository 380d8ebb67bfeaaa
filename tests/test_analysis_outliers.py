"""Outlier marking: gross corruption is set aside, genuine heavy tails are kept."""

from __future__ import annotations

import numpy as np
import pytest

from fahflow.analysis.globals import CycleWorks, WorkUnitKey, WorkUnitStatus, WorkUnitWorks
from fahflow.analysis.outliers import DEFAULT_THRESHOLD, mark_outliers, robust_z


def work_units(pairs: list[tuple[float, float]]) -> list[WorkUnitWorks]:
    return [
        WorkUnitWorks(
            key=WorkUnitKey(project=1, run=0, clone=i, gen=0, source=f"P1/R0/C{i}/G0"),
            path=f"C{i}",
            status=WorkUnitStatus.OK,
            cycles=[CycleWorks(cycle=0, w_F=w_F, w_R=w_R)],
        )
        for i, (w_F, w_R) in enumerate(pairs)
    ]


def test_robust_z_and_its_fallbacks() -> None:
    z = robust_z([1.0, 2.0, 3.0, 4.0, 100.0])
    assert z[2] == 0.0 and z[-1] == pytest.approx(0.6745 * 97 / 1.0)
    assert robust_z([5.0] * 6).tolist() == [0.0] * 6  # all equal: nothing stands out
    # MAD is 0 (most values equal): the mean absolute deviation stands in.
    assert np.isfinite(robust_z([1.0, 1.0, 1.0, 1.0, 9.0])).all()


def test_corrupted_pair_is_marked_and_the_wu_says_why() -> None:
    rng = np.random.default_rng(0)
    pairs = [(float(f), float(-r)) for f, r in rng.normal(3.0, 1.0, size=(30, 2))]
    pairs[7] = (1.0e5, -2.0)  # a blown-up simulation
    wus = work_units(pairs)
    assert mark_outliers(wus, DEFAULT_THRESHOLD) == 1
    assert wus[7].status is WorkUnitStatus.OUTLIER
    assert "robust z of w_F" in wus[7].reason
    assert all(wu.status is WorkUnitStatus.OK for i, wu in enumerate(wus) if i != 7)


def test_heavy_tails_and_small_samples_are_kept() -> None:
    rng = np.random.default_rng(1)
    # Exponential-tailed forward works, as short switching in water gives: no outliers by default.
    tail = rng.exponential(2.0, 2000) + 5.0
    wus = work_units([(float(w), -1.0 - float(w) / 10) for w in tail])
    assert mark_outliers(wus, DEFAULT_THRESHOLD) == 0
    few = work_units([(1.0, -1.0)] * 8 + [(1.0e5, -1.0)])  # 9 pairs: too few to judge
    assert mark_outliers(few, DEFAULT_THRESHOLD) == 0
    assert mark_outliers(work_units([(1.0, -1.0)] * 20 + [(1.0e5, -1.0)]), None) == 0
