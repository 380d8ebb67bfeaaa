"""A value with its error as text: σ to two significant figures, the value to σ's last digit.

A fixed number of decimals lies in both directions: ``± 0.00`` for a σ of 0.004 kT reads as an
exact result, and three decimals on ΔG ± 2 kT claim a precision that is not there. Two
significant figures of σ (Particle Data Group practice, simplified) and the value rounded to the
same decimal say what is known. A σ of exactly 0 (identical works) is printed as ``0``, an
undefined one (a single pair) as ``n/a``.

Examples
--------
>>> value_sigma_text(8.31832, 0.00437)
'8.3183 ± 0.0044'
>>> value_sigma_text(-6.3, 0.213)
'-6.30 ± 0.21'
>>> value_sigma_text(1.25, 0.0), value_sigma_text(1.25, float("nan"))
('1.250 ± 0', '1.250 ± n/a')
"""

from __future__ import annotations

import math

SIGMA_DIGITS = 2
"""Significant figures of σ."""

MAX_DECIMALS = 6
"""Below ``10**-MAX_DECIMALS`` σ is written in scientific notation and the value with this many."""

DEFAULT_DECIMALS = 3
"""Decimals of a value whose σ is 0 or undefined."""


def _decimals(sigma: float, digits: int) -> int:
    """Decimal places at which ``sigma`` (finite, > 0) has ``digits`` significant figures."""
    rounded = float(f"{sigma:.{digits}g}")  # 0.0996 -> 0.1: count digits after rounding
    return digits - 1 - math.floor(math.log10(rounded))


def sigma_text(sigma: float, digits: int = SIGMA_DIGITS) -> str:
    """``sigma`` with ``digits`` significant figures; ``0`` when exactly 0, ``n/a`` if undefined."""
    if not math.isfinite(sigma):
        return "n/a"
    if sigma == 0:
        return "0"
    decimals = _decimals(abs(sigma), digits)
    if decimals > MAX_DECIMALS:
        return f"{sigma:.{digits - 1}e}"
    if decimals < 0:
        return f"{round(sigma, decimals):.0f}"
    return f"{sigma:.{decimals}f}"


def value_sigma_text(value: float, sigma: float, digits: int = SIGMA_DIGITS) -> str:
    """``"value ± sigma"``, the value rounded to the last significant decimal of ``sigma``."""
    if not math.isfinite(sigma) or sigma == 0:
        decimals = DEFAULT_DECIMALS
    else:
        decimals = min(max(_decimals(abs(sigma), digits), 0), MAX_DECIMALS)
    return f"{value:.{decimals}f} ± {sigma_text(sigma, digits)}"
