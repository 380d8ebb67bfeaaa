"""Robust outlier marking of work pairs across the WUs of one transformation.

A blown-up simulation or a corrupted row gives works hundreds of kT from the rest; such a pair
would dominate BAR. Each work is scored by its robust z (median and MAD, Iglewicz & Hoaglin 1993)
within its direction, a pair by the larger of its two scores. Genuine NEQ work distributions have
heavy tails, which BAR needs, and a MAD from a few pairs is itself noisy: a threshold of 10 set
aside genuine pairs of a 16-pair water run. The default, :data:`DEFAULT_THRESHOLD` = 20, and the
minimum of :data:`MIN_PAIRS_FOR_OUTLIERS` pairs keep the check to gross corruption.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fahflow.analysis.globals import WorkUnitStatus, WorkUnitWorks

DEFAULT_THRESHOLD = 20.0
"""Robust z above which a pair is an outlier, by default."""

MIN_PAIRS_FOR_OUTLIERS = 10
"""Fewer ok pairs than this: too few for a median and MAD to mean anything; nothing is marked."""

_MAD_TO_SIGMA = 0.6745  # Phi^-1(3/4): the MAD of a unit Gaussian
_MEAN_AD_TO_SIGMA = 0.7979  # sqrt(2/pi): the mean absolute deviation of a unit Gaussian


def robust_z(values: ArrayLike) -> NDArray[np.float64]:
    """``0.6745 (x - median) / MAD``; with MAD = 0 the mean absolute deviation stands in.

    All-equal values score 0.
    """
    x = np.asarray(values, dtype=np.float64)
    median = np.median(x)
    deviation = np.abs(x - median)
    mad = np.median(deviation)
    if mad > 0:
        return _MAD_TO_SIGMA * (x - median) / mad
    mean_ad = deviation.mean()
    if mean_ad > 0:
        return _MEAN_AD_TO_SIGMA * (x - median) / mean_ad
    return np.zeros_like(x)


def mark_outliers(work_units: Sequence[WorkUnitWorks], threshold: float | None) -> int:
    """Mark ok cycles whose pair scores above ``threshold`` as ``outlier``; return how many.

    ``threshold=None`` disables the check. Statuses of the WUs are refreshed.
    """
    cycles = [(wu, c) for wu in work_units for c in wu.ok_cycles()]
    if threshold is None or len(cycles) < MIN_PAIRS_FOR_OUTLIERS:
        return 0
    z_F = robust_z([c.w_F for _, c in cycles])
    z_R = robust_z([c.w_R for _, c in cycles])
    score = np.maximum(np.abs(z_F), np.abs(z_R))
    marked = 0
    for (wu, cycle), s, zf, zr in zip(cycles, score, z_F, z_R, strict=True):
        if s > threshold:
            cycle.status = WorkUnitStatus.OUTLIER
            cycle.reason = f"robust z of w_F {zf:.1f}, of w_R {zr:.1f} (threshold {threshold:g})"
            wu.refresh_status()
            marked += 1
    return marked
