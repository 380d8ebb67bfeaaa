"""Build one NEQ-cycling work unit: the four files a FAH OpenMM core runs.

Steps: make the System (from the spec's source), make it alchemical (openmmtools
``AbsoluteAlchemicalFactory``, with the alchemical long-range dispersion correction switched off:
recomputing it at every λ step would cost more than the NEQ steps themselves), minimize and
equilibrate at λ=0 with a Langevin integrator, then write

- ``system.xml.bz2``: the alchemical System;
- ``state.xml.bz2``: positions, velocities, forces, energy, box and parameters at λ=0;
- ``integrator.xml.bz2``: openmmtools ``PeriodicNonequilibriumIntegrator`` (eq, forward neq, eq,
  reverse neq per cycle; it accumulates ``protocol_work`` in kJ/mol);
- ``core.xml``: run settings, with ``numSteps`` = cycles × (2·eq + 2·neq).

Preparation runs on the CPU platform with a fixed thread count and an explicit random seed, so the
same spec and seed give the same bytes. The integrator is written with ``randomSeed=0`` (OpenMM
draws one per Context): the WS sends the same per-RUN files to every CLONE, and a fixed seed would
make the CLONEs of a RUN replay the same noise.
"""

from __future__ import annotations

import bz2
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openmm
from openmm import app, unit

from fahflow import atomic
from fahflow.corexml import render_core_xml
from fahflow.errors import ConfigError
from fahflow.protocol.spec import (
    HARMONIC_PARAMETER,
    AlchemicalRegionSpec,
    HarmonicSource,
    TestSystemSource,
    TransformationSpec,
    XmlSource,
)

logger = logging.getLogger(__name__)

FILE_NAMES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")

_METHOD_NAMES = {
    openmm.NonbondedForce.NoCutoff: "NoCutoff",
    openmm.NonbondedForce.CutoffNonPeriodic: "CutoffNonPeriodic",
    openmm.NonbondedForce.CutoffPeriodic: "CutoffPeriodic",
    openmm.NonbondedForce.Ewald: "Ewald",
    openmm.NonbondedForce.PME: "PME",
    openmm.NonbondedForce.LJPME: "LJPME",
}


@dataclass(frozen=True)
class WorkUnit:
    """What :func:`build_work_unit` wrote and the facts the workflow needs to place it."""

    files: dict[str, Path]
    n_atoms: int
    nonbonded_method: str
    num_steps: int
    temperature_K: float
    seed: int


# --------------------------------------------------------------------------------------------
# Sources


def _harmonic_system(source: HarmonicSource) -> tuple[openmm.System, Any]:
    """Independent particles in a harmonic well whose spring constant follows lambda_harmonic."""
    k0, k1 = source.k0_kJ_per_mol_per_nm2, source.k1_kJ_per_mol_per_nm2
    force = openmm.CustomExternalForce(
        f"0.5*({k0!r} + ({(k1 - k0)!r})*{HARMONIC_PARAMETER})*(x^2 + y^2 + z^2)"
    )
    force.addGlobalParameter(HARMONIC_PARAMETER, 0.0)
    system = openmm.System()
    positions = []
    for i in range(source.n_particles):
        system.addParticle(source.mass_amu)
        force.addParticle(i, [])
        positions.append(openmm.Vec3(0.0, 0.0, 0.0))
    system.addForce(force)
    return system, unit.Quantity(positions, unit.nanometer)


_UNIT_ALIASES = {
    "nm": "nanometer",
    "A": "angstrom",
    "Å": "angstrom",
    "K": "kelvin",
    "fs": "femtosecond",
    "ps": "picosecond",
    "M": "molar",
}
_QUANTITY = r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*?\s*([A-Za-zÅ_]+)\s*$"


def _quantity(field: str, value: Any) -> Any:
    """Turn ``"2.0 nanometer"`` into an openmm Quantity; leave other values alone."""
    if not isinstance(value, str):
        return value
    match = re.match(_QUANTITY, value)
    if not match:
        return value
    number, name = match.groups()
    unit_obj = getattr(unit, _UNIT_ALIASES.get(name, name), None)
    if not isinstance(unit_obj, unit.Unit):
        raise ConfigError(f"source.kwargs.{field}: unknown unit {name!r} in {value!r}")
    return float(number) * unit_obj


def _testsystem(source: TestSystemSource) -> tuple[openmm.System, Any]:
    from openmmtools import testsystems

    kwargs = {key: _quantity(key, value) for key, value in source.kwargs.items()}
    try:
        made = getattr(testsystems, source.name)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"source: testsystem {source.name}({source.kwargs}) failed: {exc}"
        ) from exc
    return made.system, made.positions


def _read_xml(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".bz2":
        data = bz2.decompress(data)
    return data.decode("utf-8")


def _xml_source(source: XmlSource) -> tuple[openmm.System, Any]:
    try:
        system = openmm.XmlSerializer.deserialize(_read_xml(source.system))
    except Exception as exc:
        raise ConfigError(
            f"source.system: {source.system}: not an OpenMM System XML: {exc}"
        ) from exc
    if source.state is not None:
        try:
            state = openmm.XmlSerializer.deserialize(_read_xml(source.state))
            positions = state.getPositions()
            box = state.getPeriodicBoxVectors()
        except Exception as exc:
            raise ConfigError(
                f"source.state: {source.state}: not an OpenMM State XML: {exc}"
            ) from exc
        system.setDefaultPeriodicBoxVectors(*box)
    else:
        pdb = app.PDBFile(str(source.pdb))
        positions = pdb.getPositions()
        box = pdb.topology.getPeriodicBoxVectors()
        if box is not None:
            system.setDefaultPeriodicBoxVectors(*box)
    if len(positions) != system.getNumParticles():
        raise ConfigError(
            f"source: {len(positions)} coordinates for {system.getNumParticles()} particles"
        )
    return system, positions


def _make_alchemical(system: openmm.System, region: AlchemicalRegionSpec) -> openmm.System:
    from openmmtools import alchemy

    n_atoms = system.getNumParticles()
    outside = [a for a in region.atoms if a >= n_atoms]
    if outside:
        raise ConfigError(f"alchemical.atoms: {outside} out of range for {n_atoms} atoms")
    factory = alchemy.AbsoluteAlchemicalFactory(
        disable_alchemical_dispersion_correction=True,
        # One force per alchemical kind is slower for NEQ (more force evaluations per step).
        split_alchemical_forces=False,
    )
    alchemical_region = alchemy.AlchemicalRegion(
        alchemical_atoms=region.atoms,
        annihilate_electrostatics=region.annihilate_electrostatics,
        annihilate_sterics=region.annihilate_sterics,
        softcore_alpha=region.softcore_alpha,
    )
    return factory.create_alchemical_system(system, alchemical_region)


def make_system(spec: TransformationSpec) -> tuple[openmm.System, Any]:
    """The (alchemical) System and starting positions the spec describes."""
    source = spec.source
    if isinstance(source, HarmonicSource):
        return _harmonic_system(source)
    system, positions = (
        _testsystem(source) if isinstance(source, TestSystemSource) else _xml_source(source)
    )
    assert spec.alchemical is not None  # the spec validator guarantees it
    return _make_alchemical(system, spec.alchemical), positions


def nonbonded_method(system: openmm.System) -> str:
    """The System's nonbonded method name; ``NoCutoff`` when it has no NonbondedForce."""
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            return _METHOD_NAMES[force.getNonbondedMethod()]
    return "NoCutoff"


# --------------------------------------------------------------------------------------------
# Protocol


def _context_parameters(system: openmm.System) -> set[str]:
    names: set[str] = set()
    for force in system.getForces():
        if hasattr(force, "getNumGlobalParameters"):
            names.update(
                force.getGlobalParameterName(i) for i in range(force.getNumGlobalParameters())
            )
    return names


def parameters_at(spec: TransformationSpec, lam: float) -> dict[str, float]:
    """Evaluate ``lambda_functions`` at ``lam`` with OpenMM's own expression parser.

    Using OpenMM (not Python's eval) means exactly the expressions the core accepts are accepted,
    and a bad one fails here, naming its field, instead of on a volunteer's machine.
    """
    integrator = openmm.CustomIntegrator(0.001)
    integrator.addGlobalVariable("lambda", lam)
    names = list(spec.lambda_functions)
    for i in range(len(names)):
        integrator.addGlobalVariable(f"v{i}", 0.0)
    for i, name in enumerate(names):
        integrator.addComputeGlobal(f"v{i}", spec.lambda_functions[name])
    system = openmm.System()
    system.addParticle(1.0)
    try:
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
        context.setPositions([openmm.Vec3(0, 0, 0)])
        integrator.step(1)
    except openmm.OpenMMException as exc:
        raise ConfigError(f"lambda_functions: an expression does not parse: {exc}") from exc
    values = {name: integrator.getGlobalVariable(i + 1) for i, name in enumerate(names)}
    del context
    for name, value in values.items():
        if not math.isfinite(value):
            raise ConfigError(f"lambda_functions.{name}: {value} at lambda={lam}")
    return values


def make_integrator(spec: TransformationSpec) -> openmm.CustomIntegrator:
    """The spec's PeriodicNonequilibriumIntegrator, with a random seed drawn per Context."""
    from openmmtools.integrators import PeriodicNonequilibriumIntegrator

    integrator = PeriodicNonequilibriumIntegrator(
        alchemical_functions=dict(spec.lambda_functions),
        nsteps_eq=spec.eq_steps,
        nsteps_neq=spec.neq_steps,
        temperature=spec.temperature_K * unit.kelvin,
        collision_rate=spec.collision_rate_per_ps / unit.picosecond,
        timestep=spec.timestep_fs * unit.femtosecond,
    )
    # 0 = OpenMM draws a fresh seed when the core creates its Context. The work server sends the
    # same per-RUN files to every CLONE (DESIGN §2), so a fixed seed would make every CLONE of a
    # RUN replay the same noise and return (nearly) the same works.
    integrator.setRandomNumberSeed(0)
    return integrator


def openmm_seed(seed: int, salt: int = 0) -> int:
    """A positive 31-bit seed from ``seed`` (OpenMM reads 0 as "pick one at random")."""
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    return 1 + (seed * 1_000_003 + salt * 7_919) % (2**31 - 2)


def _prepared_state(
    spec: TransformationSpec, system: openmm.System, positions: Any, seed: int
) -> openmm.State:
    """Minimize and equilibrate at λ=0 with a Langevin integrator; return the full state."""
    prep = spec.preparation
    integrator = openmm.LangevinMiddleIntegrator(
        spec.temperature_K * unit.kelvin,
        spec.collision_rate_per_ps / unit.picosecond,
        spec.timestep_fs * unit.femtosecond,
    )
    integrator.setRandomNumberSeed(openmm_seed(seed, salt=2))
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(system, integrator, platform, {"Threads": str(prep.threads)})
    context.setPositions(positions)
    for name, value in parameters_at(spec, 0.0).items():
        context.setParameter(name, value)
    if prep.minimize:
        openmm.LocalEnergyMinimizer.minimize(
            context, prep.minimize_tolerance_kJ_per_mol_per_nm, prep.minimize_max_iterations
        )
    context.setVelocitiesToTemperature(spec.temperature_K * unit.kelvin, openmm_seed(seed, salt=3))
    if prep.equilibration_steps:
        integrator.step(prep.equilibration_steps)
    context.setTime(0.0)
    context.setStepCount(0)
    state = context.getState(
        getPositions=True,
        getVelocities=True,
        getForces=True,
        getEnergy=True,
        getParameters=True,
        enforcePeriodicBox=False,
    )
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    if not math.isfinite(energy):
        raise ConfigError(f"{spec.name}: potential energy is {energy} after preparation")
    del context
    return state


def _check_parameters(spec: TransformationSpec, system: openmm.System) -> None:
    known = _context_parameters(system)
    unknown = sorted(set(spec.lambda_functions) - known)
    if unknown:
        raise ConfigError(
            f"lambda_functions: {unknown} are not context parameters of the system "
            f"(it has {sorted(known)})"
        )


def build_work_unit(spec: TransformationSpec, out_dir: str | Path, seed: int = 0) -> WorkUnit:
    """Build and write one WU of ``spec`` into ``out_dir`` (created if needed).

    Parameters
    ----------
    spec:
        A validated spec (:func:`fahflow.protocol.spec.load_spec`).
    out_dir:
        Where ``core.xml``, ``system.xml.bz2``, ``state.xml.bz2`` and ``integrator.xml.bz2`` go;
        each is written atomically, so a killed build leaves no half file.
    seed:
        Seeds the starting velocities and the equilibration noise; same seed, same bytes.
        Different seeds give different starting states (e.g. one per RUN).
    """
    out = Path(out_dir)
    system, positions = make_system(spec)
    _check_parameters(spec, system)
    state = _prepared_state(spec, system, positions, seed)
    integrator = make_integrator(spec)
    core_xml = render_core_xml(
        spec.core, cycles=spec.cycles_per_wu, eq_steps=spec.eq_steps, neq_steps=spec.neq_steps
    )
    payloads = {
        "core.xml": core_xml.encode("utf-8"),
        "system.xml.bz2": bz2.compress(openmm.XmlSerializer.serialize(system).encode("utf-8")),
        "state.xml.bz2": bz2.compress(openmm.XmlSerializer.serialize(state).encode("utf-8")),
        "integrator.xml.bz2": bz2.compress(
            openmm.XmlSerializer.serialize(integrator).encode("utf-8")
        ),
    }
    files = {name: atomic.write_bytes(out / name, payloads[name]) for name in FILE_NAMES}
    wu = WorkUnit(
        files=files,
        n_atoms=system.getNumParticles(),
        nonbonded_method=nonbonded_method(system),
        num_steps=spec.num_steps,
        temperature_K=spec.temperature_K,
        seed=seed,
    )
    logger.info("built %s WU in %s: %d atoms, %s", spec.name, out, wu.n_atoms, wu.nonbonded_method)
    return wu
