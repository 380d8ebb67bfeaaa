"""Each CLONE's own files: the Transformation's State with fresh velocities, and a seeded
Integrator.

The WU builder (:mod:`fahflow.protocol.build`) writes one State and one Integrator per
Transformation. The CLONEs of a Task must not replay the same trajectory, so each gets its own
State (velocities redrawn at the spec's temperature with the CLONE's seed; positions, box and
parameters unchanged) and its own Integrator (the same one with the CLONE's random seed). The
seeds come from the caller (stage derives them from the Task id), so writing the files again
gives the same bytes.
"""

from __future__ import annotations

import bz2
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fahflow import atomic

#: The files that differ between the CLONEs of a Task.
PER_CLONE_FILES = ("state.xml.bz2", "integrator.xml.bz2")


def write_clone_files(
    wu_dir: Path, clones: Sequence[tuple[Path, int]], temperature_K: float
) -> list[Path]:
    """Write ``state.xml.bz2`` and ``integrator.xml.bz2`` into each ``(folder, seed)`` of
    ``clones``, from the WU files in ``wu_dir``; returns the folders written.

    A folder that already holds both files is left alone (a stage re-run after a kill). The
    Transformation's files are read and one OpenMM Context is made per call, not per CLONE:
    only velocities change, and the CPU platform recomputes forces and energy for the new State
    fast.

    Parameters
    ----------
    wu_dir : Path
        The Transformation's WU folder (``system.xml.bz2``, ``state.xml.bz2``,
        ``integrator.xml.bz2``, as :func:`~fahflow.protocol.build.build_work_unit` writes them).
    clones : sequence of (Path, int)
        Each CLONE's folder and its seed (a positive 31-bit int; 0 would let OpenMM choose).
    temperature_K : float
        Temperature the velocities are drawn at, in kelvin (the spec's).
    """
    todo = [(d, seed) for d, seed in clones if not all((d / n).exists() for n in PER_CLONE_FILES)]
    if not todo:
        return []
    import openmm  # only staging and building need OpenMM
    from openmm import unit

    def load(name: str) -> Any:
        return openmm.XmlSerializer.deserialize(
            bz2.decompress((wu_dir / name).read_bytes()).decode()
        )

    system, state, integrator = (load(n) for n in ("system.xml.bz2", *PER_CLONE_FILES))
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU")
    )
    try:
        for out_dir, seed in todo:
            context.setState(state)
            context.setVelocitiesToTemperature(temperature_K * unit.kelvin, seed)
            new_state = context.getState(
                getPositions=True, getVelocities=True, getForces=True, getEnergy=True,
                getParameters=True, enforcePeriodicBox=False,
            )  # fmt: skip
            integrator.setRandomNumberSeed(seed)
            for name, obj in (("state.xml.bz2", new_state), ("integrator.xml.bz2", integrator)):
                data = bz2.compress(openmm.XmlSerializer.serialize(obj).encode())
                atomic.write_bytes(out_dir / name, data)
    finally:
        del context
    return [d for d, _ in todo]
