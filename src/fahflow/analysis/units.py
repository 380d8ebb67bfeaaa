"""Physical constants and unit conversions for the analysis, in one place.

The values are OpenMM's (CODATA 2018). Older cores computed kT with CODATA 2006's R
(8.314472 J/(mol K)), 1.2e-6 apart: the real-core fixture's kT reads as 298.0004 K, well inside
:data:`fahflow.analysis.globals.KT_RELATIVE_TOLERANCE`. Importing OpenMM itself is avoided on
purpose: the workflow's analyze step must start fast.
"""

from __future__ import annotations

MOLAR_GAS_CONSTANT_kJ_per_mol_K = 8.31446261815324e-3
"""R in kJ/(mol K): kT in kJ/mol is ``R * T``."""

KCAL_PER_KJ = 1.0 / 4.184
"""Thermochemical calorie, as OpenMM uses."""


def kT_kJ_per_mol(temperature_K: float) -> float:
    """Thermal energy kT in kJ/mol at ``temperature_K``."""
    return MOLAR_GAS_CONSTANT_kJ_per_mol_K * temperature_K


def temperature_K_from_kT(kT_kJ_per_mol: float) -> float:
    """The temperature (K) whose kT is ``kT_kJ_per_mol``: the inverse of :func:`kT_kJ_per_mol`."""
    return kT_kJ_per_mol / MOLAR_GAS_CONSTANT_kJ_per_mol_K
