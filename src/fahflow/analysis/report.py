"""One transformation's results directories → classified works → ΔG → a report on disk.

:func:`analyze_paths` is what the workflow's analyze step and ``fahflow analyze`` call;
:func:`write_report` writes ``result.json`` (schema-versioned :class:`AnalysisResult`: every WU
with its works and status, the estimate, settings, seed and package versions), ``works.csv`` (one
row per cycle), the PNG plots and an ``index.html`` that loads nothing from the network.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from fahflow.analysis.estimate import FreeEnergyResult, bar_estimate
from fahflow.analysis.globals import (
    DEFAULT_MAX_ABS_WORK_KT,
    KT_RELATIVE_TOLERANCE,
    Schedule,
    WorkUnitStatus,
    WorkUnitWorks,
    find_globals,
    parse_globals,
)
from fahflow.analysis.outliers import DEFAULT_THRESHOLD, mark_outliers
from fahflow.analysis.units import KCAL_PER_KJ, kT_kJ_per_mol, temperature_K_from_kT
from fahflow.atomic import write_text
from fahflow.errors import InsufficientWorkError

SCHEMA_VERSION = 2
"""Bumped on any change of ``result.json`` that a reader must know about.

2: the status ``implausible`` and ``settings.max_abs_work_kT``.
"""

_VERSIONED_PACKAGES = ("fahflow", "numpy", "pymbar", "pandas", "pydantic", "matplotlib")


class AnalysisSettings(BaseModel):
    """Everything that, with the inputs, determines the result."""

    temperature_K: float | None
    n_bootstrap: int
    seed: int | None
    confidence: float
    outlier_z: float | None
    max_abs_work_kT: float | None = None
    cycles_per_wu: int | None
    expected_schedule: Schedule | None
    target_sigma_kcal_per_mol: float | None
    bootstrap_unit: str = "CLONE (PROJECT/RUN/CLONE; all GENs and cycles together)"


class AnalysisResult(BaseModel):
    """The analysis of one transformation, as written to ``result.json``.

    ``temperature_K`` is the files' (from their kT); ``settings.temperature_K`` the configured one,
    only compared. ``status_counts`` counts WUs by status; ``n_pairs`` the pairs used.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")

    schema_version: int = SCHEMA_VERSION
    created_utc: str
    inputs: list[str]
    settings: AnalysisSettings
    versions: dict[str, str]
    temperature_K: float
    n_work_units: int
    n_pairs: int
    status_counts: dict[str, int]
    estimate: FreeEnergyResult
    warnings: list[str] = []
    work_units: list[WorkUnitWorks]

    def paired_works(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(w_F, w_R, group)`` of the pairs that entered the estimate, in report order."""
        return paired_works(self.work_units)


def paired_works(
    work_units: Sequence[WorkUnitWorks],
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(w_F, w_R, group)`` (kT, kT, bootstrap group) of the ``ok`` cycles of ``work_units``."""
    cycles = [(c, wu.key.group) for wu in work_units for c in wu.ok_cycles()]
    w_F = np.array([c.w_F for c, _ in cycles], dtype=np.float64)
    w_R = np.array([c.w_R for c, _ in cycles], dtype=np.float64)
    return w_F, w_R, [group for _, group in cycles]


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages the numbers depend on."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _file_temperature(
    usable: list[WorkUnitWorks], configured_K: float | None, warnings: list[str]
) -> float:
    """The files' temperature (median of their kT); warns on spread and on the configured one."""
    kTs = [wu.kT_kJ_per_mol for wu in usable if wu.kT_kJ_per_mol is not None]
    kT = statistics.median(kTs)
    spread = [k for k in kTs if abs(k - kT) > KT_RELATIVE_TOLERANCE * kT]
    if spread:
        warnings.append(
            f"{len(spread)} of {len(kTs)} WUs have a kT other than {kT:.6g} kJ/mol "
            f"({temperature_K_from_kT(min(kTs)):.2f}-{temperature_K_from_kT(max(kTs)):.2f} K): "
            "mixed temperatures in one transformation"
        )
    temperature_K = temperature_K_from_kT(kT)
    if configured_K is not None and abs(temperature_K - configured_K) > (
        KT_RELATIVE_TOLERANCE * configured_K
    ):
        warnings.append(
            f"the files' kT ({kT:.6g} kJ/mol) is {temperature_K:.2f} K, configured "
            f"{configured_K:g} K: results use the files' kT"
        )
    return temperature_K


def _set_aside_warnings(
    work_units: Sequence[WorkUnitWorks], max_abs_work_kT: float | None
) -> list[str]:
    """Warnings for what the parser set aside or repaired: implausible works and noted WUs."""
    warnings = []
    implausible = [
        (wu, c) for wu in work_units for c in wu.cycles if c.status is WorkUnitStatus.IMPLAUSIBLE
    ]
    if implausible:
        wu, cycle = implausible[0]
        warnings.append(
            f"{len(implausible)} pair(s) implausible (|W| > {max_abs_work_kT:g} kT), excluded; "
            f"first: {wu.key.source} cycle {cycle.cycle}: w_F={cycle.w_F:.4g}, "
            f"w_R={cycle.w_R:.4g} kT"
        )
    noted = [wu for wu in work_units if wu.notes]
    if noted:
        warnings.append(
            f"{len(noted)} WU(s) have notes (rows repaired or passed over); first: "
            f"{noted[0].key.source}: {noted[0].notes[0]} (all in work_units[].notes)"
        )
    return warnings


def analyze_paths(
    paths: Sequence[str | os.PathLike[str]],
    temperature_K: float | None = None,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    *,
    confidence: float = 0.95,
    outlier_z: float | None = DEFAULT_THRESHOLD,
    max_abs_work_kT: float | None = DEFAULT_MAX_ABS_WORK_KT,
    cycles_per_wu: int | None = None,
    expected_schedule: Schedule | None = None,
    target_sigma_kcal_per_mol: float | None = 0.1,
) -> AnalysisResult:
    """Analyze every globals.csv under ``paths`` as one transformation.

    Parameters
    ----------
    paths : sequence of path-like
        Directories (searched recursively for ``globals.csv``) or files. The PRCG of a file comes
        from ``.../PROJ{p}/RUN{r}/CLONE{c}/results{g}/``; other files are known by their path
        relative to the directory given (see :class:`~fahflow.analysis.globals.WorkUnitKey`).
    temperature_K : float, optional
        The configured temperature (K); only compared with the files' kT (warning if different).
    n_bootstrap : int, default 1000
        Whole-CLONE bootstrap resamples (0: none).
    seed : int or None, default 0
        Bootstrap seed, recorded in the result.
    confidence : float, default 0.95
        Level of the bootstrap interval.
    outlier_z : float or None, default 20
        Robust-z threshold above which a pair is an ``outlier`` (None: no check).
    max_abs_work_kT : float or None, default 1e4
        Bound on ``|W_f|`` and ``|W_r|`` (kT) beyond which a pair is ``implausible`` (None: no
        bound); see :data:`~fahflow.analysis.globals.DEFAULT_MAX_ABS_WORK_KT`.
    cycles_per_wu : int, optional
        Cycles each WU was asked for (detects files cut at a cycle boundary).
    expected_schedule : Schedule, optional
        The schedule the WUs were built with; others are ``schedule_mismatch``.
    target_sigma_kcal_per_mol : float or None, default 0.1
        Error wanted, for ``estimate.additional_cycles_for_target``.

    Returns
    -------
    AnalysisResult
        ``warnings`` holds everything a reader must know before quoting the number (pairs set
        aside, repaired rows, the estimate's own diagnostics); they are returned, not logged, so
        that each caller shows them once, where its user looks.

    Raises
    ------
    ConfigError
        A path does not exist.
    InsufficientWorkError
        No globals.csv found, or no WU gave a usable pair (the message counts the statuses).
    """
    found = find_globals(paths)
    if not found:
        raise InsufficientWorkError(f"no globals.csv under {', '.join(map(str, paths))}")
    work_units = [
        parse_globals(
            path,
            key=key,
            cycles_per_wu=cycles_per_wu,
            expected_schedule=expected_schedule,
            max_abs_work_kT=max_abs_work_kT,
        )
        for path, key in found
    ]
    work_units.sort(key=lambda wu: wu.key.sort_key)
    warnings = _set_aside_warnings(work_units, max_abs_work_kT)
    n_outliers = mark_outliers(work_units, outlier_z)
    if n_outliers:
        warnings.append(f"{n_outliers} pair(s) marked outlier (robust z > {outlier_z:g})")
    status_counts = dict(Counter(wu.status.value for wu in work_units))
    usable = [wu for wu in work_units if wu.ok_cycles()]
    if not usable:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(status_counts.items()))
        raise InsufficientWorkError(
            f"no usable work pair in {len(work_units)} globals.csv file(s) ({counts}); "
            f"first: {work_units[0].path}: {work_units[0].reason}"
        )
    n_failed = sum(n for s, n in status_counts.items() if s != WorkUnitStatus.OK.value)
    if n_failed:
        warnings.append(f"{n_failed} of {len(work_units)} WUs are not ok (see work_units)")
    file_temperature_K = _file_temperature(usable, temperature_K, warnings)
    w_F, w_R, groups = paired_works(usable)
    target_sigma_kT = None
    if target_sigma_kcal_per_mol is not None:
        kT_kcal = kT_kJ_per_mol(file_temperature_K) * KCAL_PER_KJ
        target_sigma_kT = target_sigma_kcal_per_mol / kT_kcal
    estimate = bar_estimate(
        w_F,
        w_R,
        temperature_K=file_temperature_K,
        groups=groups,
        n_bootstrap=n_bootstrap,
        seed=seed,
        confidence=confidence,
        target_sigma_kT=target_sigma_kT,
    )
    return AnalysisResult(
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=[str(p) for p in paths],
        settings=AnalysisSettings(
            temperature_K=temperature_K,
            n_bootstrap=n_bootstrap,
            seed=seed,
            confidence=confidence,
            outlier_z=outlier_z,
            max_abs_work_kT=max_abs_work_kT,
            cycles_per_wu=cycles_per_wu,
            expected_schedule=expected_schedule,
            target_sigma_kcal_per_mol=target_sigma_kcal_per_mol,
        ),
        versions=package_versions(),
        temperature_K=file_temperature_K,
        n_work_units=len(work_units),
        n_pairs=w_F.size,
        status_counts=status_counts,
        estimate=estimate,
        warnings=warnings + estimate.diagnostics.warnings,
        work_units=work_units,
    )


def _write_works_csv(result: AnalysisResult, path: Path) -> Path:
    """One row per cycle (and per WU without cycles): key, works in kT, status, reason."""
    import pandas as pd

    rows = []
    for wu in result.work_units:
        key = wu.key.model_dump()
        for cycle in wu.cycles or [None]:
            rows.append(
                {
                    **key,
                    "cycle": None if cycle is None else cycle.cycle,
                    "w_F_kT": None if cycle is None else cycle.w_F,
                    "w_R_kT": None if cycle is None else cycle.w_R,
                    "status": (wu.status if cycle is None else cycle.status).value,
                    "reason": wu.reason if cycle is None else cycle.reason,
                    "notes": "; ".join(wu.notes),
                    "path": wu.path,
                }
            )
    frame = pd.DataFrame(rows)
    for column in ("project", "run", "clone", "gen", "cycle"):
        frame[column] = frame[column].astype("Int64")
    return write_text(path, frame.to_csv(index=False))


def write_report(result: AnalysisResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``result.json``, ``works.csv``, the PNG plots and ``index.html`` into ``out_dir``.

    Every file is written atomically; the JSON goes last, so its presence means a full report.
    Returns the path of ``result.json``.
    """
    from fahflow.analysis.index_page import render_index
    from fahflow.analysis.plots import plot_bootstrap, plot_convergence, plot_work_distributions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w_F, w_R, _ = result.paired_works()
    images = {
        "Work distributions": plot_work_distributions(
            w_F, w_R, result.estimate, out / "work_distributions.png"
        ).name,
        "Convergence": plot_convergence(w_F, w_R, result.estimate, out / "convergence.png").name,
    }
    if result.estimate.bootstrap_Delta_f_kT:
        images["Bootstrap"] = plot_bootstrap(result.estimate, out / "bootstrap.png").name
    _write_works_csv(result, out / "works.csv")
    write_text(out / "index.html", render_index(result, images))
    return write_text(out / "result.json", result.model_dump_json(indent=1))
