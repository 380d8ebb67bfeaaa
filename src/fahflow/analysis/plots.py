"""Offline PNG plots of one transformation's analysis.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), never
through pyplot: no global backend is switched, no display is needed, and a library call cannot
leak open figures. Each PNG is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from fahflow.analysis.estimate import FreeEnergyResult, cumulative_bar
from fahflow.atomic import write_bytes


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return write_bytes(path, buffer.getvalue())


def _shared_bins(values: NDArray[np.float64], per_distribution: int) -> NDArray[np.float64]:
    """Common bin edges, about sqrt(n) of them (10 to 60), padded when all values are equal."""
    n_bins = int(np.clip(np.sqrt(per_distribution), 10, 60))
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, n_bins + 1)


def _mark_estimate(axes: Axes, estimate: FreeEnergyResult, label: str = "BAR ΔG") -> None:
    delta, sigma = estimate.Delta_f_kT, estimate.sigma_kT
    axes.axvline(delta, color="black", lw=1.5, label=f"{label} = {delta:.2f} ± {sigma:.2f} kT")
    if np.isfinite(sigma) and sigma > 0:
        axes.axvspan(delta - sigma, delta + sigma, color="grey", alpha=0.3)


def plot_work_distributions(
    w_F: NDArray[np.float64], w_R: NDArray[np.float64], estimate: FreeEnergyResult, path: Path
) -> Path:
    """Histograms of ``w_F`` and ``-w_R`` (kT) with ΔG: by Crooks they cross at ΔG."""
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.add_subplot()
    bins = _shared_bins(np.concatenate([w_F, -w_R]), per_distribution=w_F.size)
    axes.hist(w_F, bins=bins, alpha=0.5, density=True, label=f"forward w_F (n={w_F.size})")
    axes.hist(-w_R, bins=bins, alpha=0.5, density=True, label=f"−reverse −w_R (n={w_R.size})")
    _mark_estimate(axes, estimate)
    axes.set_xlabel("work / kT")
    axes.set_ylabel("probability density")
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_convergence(
    w_F: NDArray[np.float64], w_R: NDArray[np.float64], estimate: FreeEnergyResult, path: Path
) -> Path:
    """BAR ΔG on the first k cycles, with its analytical ±1σ band, against k."""
    ks, deltas, errors = cumulative_bar(w_F, w_R)
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.add_subplot()
    axes.plot(ks, deltas, marker="o", ms=3, label="BAR on the first k cycles")
    finite = np.isfinite(errors)
    axes.fill_between(
        ks[finite], (deltas - errors)[finite], (deltas + errors)[finite], alpha=0.3, label="±1σ"
    )
    axes.axhline(estimate.Delta_f_kT, color="black", lw=1, ls="--", label="all cycles")
    axes.set_xlabel("cycles (work pairs)")
    axes.set_ylabel("ΔG / kT")
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_bootstrap(estimate: FreeEnergyResult, path: Path) -> Path:
    """Histogram of the whole-CLONE bootstrap ΔG with the point estimate and the interval."""
    samples = np.asarray(estimate.bootstrap_Delta_f_kT)
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.add_subplot()
    bins = _shared_bins(samples, per_distribution=samples.size)
    axes.hist(samples, bins=bins, alpha=0.7, label=f"{samples.size} CLONE resamples")
    axes.axvline(estimate.Delta_f_kT, color="black", lw=1.5, label="BAR ΔG")
    for bound in (estimate.ci_low_kT, estimate.ci_high_kT):
        axes.axvline(bound, color="red", lw=1, ls="--")
    axes.plot([], [], color="red", ls="--", label=f"{estimate.confidence:.0%} interval")
    axes.set_xlabel("ΔG / kT")
    axes.set_ylabel("resamples")
    axes.legend(fontsize="small")
    return _save(figure, path)
