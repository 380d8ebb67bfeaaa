"""The OpenMM nonbonded methods fahflow knows, and how each one's cost grows with the atoms.

Both the config (which checks a PROJECT's ``nonbonded_method``) and PROJECT selection
(:mod:`fahflow.protocol.projects`, which turns atoms into effort) need the same names, spelled
the same way. They live here, with no heavy imports, so that loading the config never imports
the protocol layer.
"""

from __future__ import annotations

from fahflow.errors import ConfigError

#: How a nonbonded method's cost per step grows with the atom count: ``n ln n`` where an FFT
#: dominates, ``n^1.5`` for Ewald sums, ``n^2`` when every pair is computed.
SCALING: dict[str, str] = {
    "PME": "nlogn",
    "LJPME": "nlogn",
    "CutoffPeriodic": "nlogn",
    "CutoffNonPeriodic": "nlogn",
    "Ewald": "n1.5",
    "NoCutoff": "n2",
}
NONBONDED_METHODS: tuple[str, ...] = tuple(SCALING)


def canonical_method(method: str) -> str:
    """``method`` spelled as OpenMM does (``pme`` → ``PME``); a :class:`ConfigError` (also a
    ``ValueError``, so pydantic validators can let it through) naming the known ones else."""
    for known in NONBONDED_METHODS:
        if method.strip().lower() == known.lower():
            return known
    raise ConfigError(f"nonbonded method {method!r} is not one of {', '.join(NONBONDED_METHODS)}")
