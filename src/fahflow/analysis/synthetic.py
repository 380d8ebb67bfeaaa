"""Synthetic globals.csv files in the real FAH core's layout, with works chosen by the caller.

For tests and the benchmark: the columns are those of the real-core fixture
(``tests/data/globals-real-core.csv``), ``protocol_work`` follows the integrator (zero while
equilibrating, accumulating over each switching leg, reset when a cycle starts, the row at a cycle
boundary still holding the finished cycle's total) and the works can be drawn to obey Crooks so
that the exact ΔG is known.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from fahflow.analysis.units import kT_kJ_per_mol

HEADER = (
    "Step,Time,MonteCarloPressure,MonteCarloTemperature,lambda_angles,lambda_bonds,"
    "lambda_electrostatics_core,lambda_electrostatics_delete,lambda_electrostatics_insert,"
    "lambda_sterics_core,lambda_sterics_delete,lambda_sterics_insert,lambda_torsions,"
    "softcore_alpha,Enew,Eold,_restorable__class_hash,a,b,has_kT_changed,kT,lambda,lambda_step,"
    "n_lambda_steps,n_steps_eq,n_steps_neq,n_steps_per_cycle,protocol_work,step,volume"
)
"""The header line the FAH OpenMM core wrote for an openmmtools/feflow NEQ cycling WU."""


def crooks_gaussian_works(
    n: int, delta_f_kT: float, sigma_kT: float, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` pairs of Gaussian works obeying Crooks for free energy ``delta_f_kT``.

    With ``w_F ~ N(Δf + σ²/2, σ)`` and ``-w_R ~ N(Δf - σ²/2, σ)`` the fluctuation theorem
    ``P_F(w) / P_R(-w) = exp(w - Δf)`` holds exactly, so BAR's target is ``delta_f_kT``.
    """
    w_F = rng.normal(delta_f_kT + sigma_kT**2 / 2, sigma_kT, n)
    w_R = -rng.normal(delta_f_kT - sigma_kT**2 / 2, sigma_kT, n)
    return w_F, w_R


def globals_csv_text(
    works_kT: Sequence[tuple[float, float]],
    *,
    n_steps_eq: int = 250_000,
    n_steps_neq: int = 250_000,
    global_var_freq: int = 25_000,
    temperature_K: float = 298.0,
    line_ending: str = "\n",
) -> str:
    """A globals.csv for one WU running ``len(works_kT)`` cycles with these (W_f, W_r) in kT."""
    works_kT = [(float(w_F), float(w_R)) for w_F, w_R in works_kT]  # repr of np.float64 differs
    kT = kT_kJ_per_mol(temperature_K)
    per_cycle = 2 * (n_steps_eq + n_steps_neq)
    eq, neq = n_steps_eq, n_steps_neq
    lines = [HEADER]
    pw_end_of_previous = 0.0
    for step in range(0, len(works_kT) * per_cycle + 1, global_var_freq):
        cycle, r = divmod(step, per_cycle)
        if r == 0 and cycle > 0:  # the integrator's step counter wrapped; work not yet reset
            w_F, w_R = works_kT[cycle - 1]
            r, lam, pw = 0, 0.0, pw_end_of_previous
        else:
            w_F, w_R = works_kT[cycle]
            if r <= eq:
                lam, pw = 0.0, 0.0
            elif r <= eq + neq:
                lam = (r - eq) / neq
                pw = w_F * kT * lam
            elif r <= 2 * eq + neq:
                lam, pw = 1.0, w_F * kT
            else:
                lam = 1.0 - (r - 2 * eq - neq) / neq
                pw = w_F * kT + w_R * kT * (1.0 - lam)
            pw_end_of_previous = w_F * kT + w_R * kT
        energy = -56000.0 - 100.0 * lam
        lines.append(
            f"{step},{2000.0 + 0.002 * step!r},1.01325,300,{lam!r},{lam!r},{lam!r},{lam!r},"
            f"{lam!r},{lam!r},{lam!r},{lam!r},{lam!r},0.5,{energy!r},{energy!r},3585150242,"
            f"0.998001998667333,0.0631823603231829,{int(step == 0)},{kT!r},{lam!r},{r},"
            f"{neq},{eq},{neq},{per_cycle},{pw!r},{r},41.8077173074199"
        )
    return line_ending.join(lines) + line_ending
