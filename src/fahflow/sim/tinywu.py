"""A tiny but real WU (a Lennard-Jones fluid with a lambda-ramped restraint) for tests and demos.

Shaped like an NEQ cycling WU so that globals.csv looks like the real thing: a context parameter
(``lambda_restraint``) and a CustomIntegrator with ``kT``, ``lambda``, ``protocol_work``, ...
It runs a few thousand steps in about a second on one CPU core.
"""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np
import openmm
from openmm import unit

from fahflow.atomic import write_bytes, write_text


def _integrator(
    num_steps: int, timestep_fs: float, temperature_K: float
) -> openmm.CustomIntegrator:
    """Langevin (BAOAB-like) steps; lambda ramps 0 -> 1 over ``num_steps``; work accumulates."""
    kT = (unit.MOLAR_GAS_CONSTANT_R * temperature_K * unit.kelvin).value_in_unit(
        unit.kilojoule_per_mole
    )
    integ = openmm.CustomIntegrator(timestep_fs * unit.femtosecond)
    gamma_dt = 1.0 * timestep_fs / 1000.0
    integ.addGlobalVariable("kT", kT)
    integ.addGlobalVariable("a", float(np.exp(-gamma_dt)))
    integ.addGlobalVariable("b", float(np.sqrt(1 - np.exp(-2 * gamma_dt))))
    integ.addGlobalVariable("lambda", 0.0)
    integ.addGlobalVariable("n_lambda_steps", float(num_steps))
    integ.addGlobalVariable("step", 0.0)
    integ.addGlobalVariable("protocol_work", 0.0)
    integ.addGlobalVariable("Eold", 0.0)
    integ.addGlobalVariable("Enew", 0.0)
    integ.addPerDofVariable("x1", 0.0)
    integ.addComputeGlobal("Eold", "energy")
    integ.addComputeGlobal("step", "step + 1")
    integ.addComputeGlobal("lambda", "min(1, step / n_lambda_steps)")
    integ.addComputeGlobal("lambda_restraint", "lambda")
    integ.addComputeGlobal("Enew", "energy")
    integ.addComputeGlobal("protocol_work", "protocol_work + (Enew - Eold)")
    integ.addUpdateContextState()
    integ.addComputePerDof("v", "v + 0.5*dt*f/m")
    integ.addComputePerDof("x", "x + 0.5*dt*v")
    integ.addComputePerDof("v", "a*v + b*sqrt(kT/m)*gaussian")
    integ.addComputePerDof("x", "x + 0.5*dt*v")
    integ.addComputePerDof("x1", "x")
    integ.addConstrainPositions()
    integ.addComputePerDof("v", "v + 0.5*dt*f/m + (x-x1)/dt")
    return integ


def make_tiny_wu(
    directory: Path,
    num_steps: int = 2000,
    global_var_freq: int = 100,
    n_atoms: int = 125,
    timestep_fs: float = 2.0,
    temperature_K: float = 120.0,
    seed: int = 0,
    compress: bool = True,
    checkpoint_freq: int = -25,
) -> Path:
    """Write ``core.xml`` and ``system``/``state``/``integrator`` ``.xml[.bz2]`` into ``directory``.

    A huge ``timestep_fs`` (e.g. 500) makes the WU blow up, for faulty-return tests.
    """
    directory = Path(directory)
    side = round(n_atoms ** (1 / 3))
    n = side**3
    spacing_nm = 0.38
    box = side * spacing_nm
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(
        openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box)
    )
    nonbonded = openmm.NonbondedForce()
    nonbonded.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    nonbonded.setCutoffDistance(min(0.9, box / 2 - 0.01))
    restraint = openmm.CustomExternalForce(
        "lambda_restraint * 100 * periodicdistance(x, y, z, x0, y0, z0)^2"
    )
    restraint.addGlobalParameter("lambda_restraint", 0.0)
    for name in ("x0", "y0", "z0"):
        restraint.addPerParticleParameter(name)
    rng = np.random.default_rng(seed)
    grid = np.array([(i, j, k) for i in range(side) for j in range(side) for k in range(side)])
    positions = (grid + 0.5) * spacing_nm + rng.normal(0, 0.01, size=(n, 3))
    for index, xyz in enumerate(positions):
        system.addParticle(39.9)
        nonbonded.addParticle(0.0, 0.34, 0.996)
        if index % 5 == 0:
            restraint.addParticle(index, list(xyz + 0.05))
    system.addForce(nonbonded)
    system.addForce(restraint)
    integrator = _integrator(num_steps, timestep_fs, temperature_K)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(temperature_K * unit.kelvin, seed + 1)
    state = context.getState(
        getPositions=True, getVelocities=True, getParameters=True, getIntegratorParameters=True
    )
    suffix = ".xml.bz2" if compress else ".xml"
    for stem, obj in (("system", system), ("state", state), ("integrator", integrator)):
        data = openmm.XmlSerializer.serialize(obj).encode()
        write_bytes(directory / f"{stem}{suffix}", bz2.compress(data) if compress else data)
    write_text(directory / "core.xml", core_xml(num_steps, global_var_freq, checkpoint_freq))
    return directory


def core_xml(num_steps: int, global_var_freq: int, checkpoint_freq: int = -25) -> str:
    """A core.xml in the layout the FAH OpenMM core reads (``<config><numSteps>..``)."""
    fields = {
        "numSteps": num_steps,
        "xtcFreq": num_steps,
        "checkpointFreq": checkpoint_freq,
        "globalVarFreq": global_var_freq,
        "globalVarFilename": "globals.csv",
        "precision": "mixed",
    }
    body = "".join(f"  <{k}>{v}</{k}>\n" for k, v in fields.items())
    return f"<config>\n{body}</config>\n"
