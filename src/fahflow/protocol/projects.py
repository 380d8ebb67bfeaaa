"""PROJECT selection by effort.

A FAH PROJECT groups WUs of similar cost and volunteers are credited per PROJECT (DESIGN §2), so
each WU goes to the PROJECT whose size matches its cost. Cost per step scales as ``n ln n`` for
PME-like methods (the FFT dominates) and ``n²`` without a cutoff (all pairs), so atoms alone do not
compare across methods: a WU only goes to a PROJECT configured for its own nonbonded method, and
within those to the smallest one whose effort is at least the system's (never to a smaller one,
which would under-credit volunteers and mis-set deadlines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fahflow.errors import ConfigError
from fahflow.nonbonded import NONBONDED_METHODS, SCALING, canonical_method

__all__ = [
    "NONBONDED_METHODS",
    "ProjectSlot",
    "effort",
    "propose_project_sizes",
    "select_project",
]


class ProjectSlot(BaseModel):
    """One configured PROJECT: ``{id: 10001, atoms: 5000, nonbonded_method: PME}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=1, description="FAH PROJECT number")
    atoms: int = Field(ge=1, description="atom count the PROJECT is sized (and credited) for")
    nonbonded_method: str = Field(description="PME, NoCutoff, ... (as in the OpenMM System)")

    @field_validator("nonbonded_method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        try:
            return canonical_method(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @property
    def effort(self) -> float:
        """Relative cost per step of this PROJECT's WUs (see :func:`effort`)."""
        return effort(self.atoms, self.nonbonded_method)


def effort(n_atoms: int, nonbonded_method: str) -> float:
    """Relative cost per MD step of ``n_atoms`` atoms: ``n ln n`` (PME-like), ``n²`` (NoCutoff).

    Only ratios between systems of the same method mean anything.
    """
    if n_atoms < 1:
        raise ConfigError(f"atom count must be positive, got {n_atoms}")
    scaling = SCALING[canonical_method(nonbonded_method)]
    n = float(n_atoms)
    if scaling == "nlogn":
        # max(...) keeps a 1- or 2-atom system from having zero effort.
        return n * max(math.log(n), 1.0)
    if scaling == "n1.5":
        return n**1.5
    return n * n


def select_project(
    n_atoms: int, nonbonded_method: str, projects: Sequence[ProjectSlot]
) -> ProjectSlot:
    """The smallest PROJECT of this method whose effort is ≥ the system's.

    Ties (same atom count) go to the lower id, so the choice is stable. Raises
    :class:`~fahflow.errors.ConfigError` naming the system and the configured PROJECTs when none
    fits: the operator must add a larger PROJECT, not have the WU land in a too-small one.
    """
    method = canonical_method(nonbonded_method)
    need = effort(n_atoms, method)
    same_method = [p for p in projects if p.nonbonded_method == method]
    fitting = [p for p in same_method if p.effort >= need]
    if not fitting:
        configured = (
            ", ".join(f"{p.id} ({p.atoms} atoms, {p.nonbonded_method})" for p in projects) or "none"
        )
        raise ConfigError(
            f"no configured PROJECT fits a {method} system of {n_atoms} atoms "
            f"(effort {need:.4g}); configured projects: {configured}. "
            f"Add a {method} PROJECT with at least {n_atoms} atoms."
        )
    return min(fitting, key=lambda p: (p.effort, p.id))


def _atoms_for_effort(target: float, method: str) -> int:
    """Smallest atom count whose effort is ≥ ``target`` (effort is increasing in n)."""
    lo, hi = 1, 2
    while effort(hi, method) < target:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if effort(mid, method) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def propose_project_sizes(
    min_atoms: int, max_atoms: int, count: int, nonbonded_method: str = "PME"
) -> list[int]:
    """``count`` PROJECT atom counts from ``min_atoms`` to ``max_atoms``, evenly spaced in effort.

    Even spacing in effort (not atoms) keeps the cost ratio between neighbouring PROJECTs the
    same in absolute terms, so every WU is over-credited by at most one step of the ladder. The
    first size is ``min_atoms`` and the last ``max_atoms``; sizes that round to the same count
    are merged.
    """
    method = canonical_method(nonbonded_method)
    if min_atoms < 1 or max_atoms < min_atoms:
        raise ConfigError(
            f"need 1 <= min_atoms <= max_atoms, got min_atoms={min_atoms}, max_atoms={max_atoms}"
        )
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    if count == 1:
        return [max_atoms]
    low, high = effort(min_atoms, method), effort(max_atoms, method)
    step = (high - low) / (count - 1)
    sizes = [_atoms_for_effort(low + i * step, method) for i in range(count - 1)] + [max_atoms]
    sizes[0] = min_atoms
    return sorted(set(sizes))
