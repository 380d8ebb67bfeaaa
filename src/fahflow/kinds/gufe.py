"""gufe Transformations as a kind of Task: feflow's NEC protocol and alchemiscale-fah's.

A Transformation's ProtocolDAG is ``setup → cycle_0 … cycle_{n-1} → result`` (DESIGN §1). fahflow
executes it honestly, unit by unit, in the places where each can run:

* **claim** creates the Task's DAG once (unit keys are random on every ``create()``) and stores
  its keyed chain; each cycle unit becomes one WU (CLONE), in the order of its name;
* **serialize** (:meth:`GufeKind.build`) runs the protocol's own SetupUnit locally, once per
  Transformation, and its System, State and Integrator become the WU files;
* **analyze** (:meth:`GufeKind.finish`, :mod:`fahflow.kinds.gufe_results`) turns each returned
  globals.csv into its cycle unit's result, runs the ResultUnit locally through gufe's
  ``execute_DAG`` and stores the ProtocolDAGResult, which ``protocol.gather`` turns into ΔG.

Only the two protocols whose cycle units are plain NEC cycles of openmmtools'
``PeriodicNonequilibriumIntegrator`` are accepted, by exact class: a subclass may change what a
cycle does, and fahflow would then report works of a protocol it did not run.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import gufe
from alchemiscale_fah.protocols.feflow.nonequilibrium_cycling import (
    FahNonEquilibriumCyclingProtocol,
    FahNonEquilibriumCyclingSimulationUnit,
)
from feflow.protocols import NonEquilibriumCyclingProtocol
from gufe.protocols.protocoldag import ProtocolDAG, ProtocolDAGResult
from gufe.protocols.protocolunit import Context, ProtocolUnit, ProtocolUnitResult
from gufe.tokenization import JSON_HANDLER
from pydantic import ValidationError

from fahflow import atomic
from fahflow.corexml import CoreSettings, check_schedule, num_steps, render_core_xml
from fahflow.errors import ConfigError
from fahflow.kinds.base import WU_FILES, Claimed, Manifest, ProtocolOutcome, TaskRefused

logger = logging.getLogger(__name__)

#: The protocols fahflow runs, by exact class.
SUPPORTED: tuple[type, ...] = (NonEquilibriumCyclingProtocol, FahNonEquilibriumCyclingProtocol)

#: Where build keeps the Transformation's setup unit result (keyed-chain JSON), under ``units/``.
SETUP_RESULT = "setup_result.json"


def protocol_name(protocol: Any) -> str:
    """``module.Class`` of a protocol, as messages and the outcome name it."""
    cls = type(protocol)
    return f"{cls.__module__}.{cls.__qualname__}"


def _supported_names() -> str:
    return ", ".join(f"{c.__module__}.{c.__qualname__}" for c in SUPPORTED)


def load_transformation(payload: str, where: str) -> gufe.Transformation:
    """The Transformation in ``payload``: gufe's keyed chain (``to_json``) or its dict form.

    Raises :class:`TaskRefused` naming ``where`` for text that is not JSON or not a
    Transformation, and for a protocol fahflow does not run.
    """
    try:
        data = json.loads(payload, cls=JSON_HANDLER.decoder)
    except (json.JSONDecodeError, TypeError) as exc:
        raise TaskRefused(f"{where}: not a gufe Transformation: invalid JSON ({exc})") from None
    try:
        if isinstance(data, list):
            obj = gufe.tokenization.GufeTokenizable.from_keyed_chain(data)
        elif isinstance(data, dict):
            obj = gufe.tokenization.GufeTokenizable.from_dict(data)
        else:
            raise TypeError(f"a JSON {type(data).__name__}")
    except Exception as exc:  # gufe raises anything from KeyError to a settings ValueError
        raise TaskRefused(
            f"{where}: cannot read a gufe Transformation from the JSON (keyed chain from "
            f"Transformation.to_json, or its to_dict form): {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(obj, gufe.Transformation):
        raise TaskRefused(f"{where}: holds a {type(obj).__name__}, not a gufe Transformation")
    if type(obj.protocol) not in SUPPORTED:
        raise TaskRefused(
            f"{where}: protocol {protocol_name(obj.protocol)} is not supported; fahflow runs "
            f"{_supported_names()}"
        )
    return obj


def dag_shape(dag: ProtocolDAG) -> tuple[ProtocolUnit, list[ProtocolUnit], ProtocolUnit]:
    """(setup, cycles in WU order, result) of an NEC DAG; ConfigError for any other shape.

    The setup is the one unit with no dependency, the result the one no unit depends on, the
    cycles every other unit, each depending on the setup alone; WU ``i`` is the ``i``-th cycle
    by name (``cycle_0``, ``cycle_1``, … compared by their number).
    """
    units = dag.protocol_units
    roots = [u for u in units if not u.dependencies]
    needed = {d.key for u in units for d in u.dependencies}
    leaves = [u for u in units if u.key not in needed]
    if len(roots) != 1 or len(leaves) != 1 or roots[0] is leaves[0]:
        raise ConfigError(f"DAG {dag.key}: expected setup → cycles → result, got {units}")
    setup, result = roots[0], leaves[0]
    cycles = [u for u in units if u is not setup and u is not result]
    for unit in cycles:
        if [d.key for d in unit.dependencies] != [setup.key]:
            raise ConfigError(f"DAG {dag.key}: cycle unit {unit.name} does not hang on the setup")

    def order(unit: ProtocolUnit) -> tuple[int, str]:
        tail = (unit.name or "").rpartition("_")[2]
        return (int(tail) if tail.isdigit() else -1, unit.name or "")

    return setup, sorted(cycles, key=order), result


def _leg_steps(protocol: Any) -> tuple[int, int]:
    settings = protocol.settings.integrator_settings
    return settings.equilibrium_steps, settings.nonequilibrium_steps


def _check_sampling(protocol: Any, where: str) -> None:
    """Refuse a protocol whose own work sampling cannot fall on its leg ends."""
    eq, neq = _leg_steps(protocol)
    if isinstance(protocol, FahNonEquilibriumCyclingProtocol):
        freq, name = protocol.settings.fah_settings.globalVarFreq, "fah_settings.globalVarFreq"
    else:
        freq, name = protocol.settings.work_save_frequency, "work_save_frequency"
    if freq <= 0 or eq % freq or neq % freq:
        raise TaskRefused(
            f"{where}: {name}={freq} must divide equilibrium_steps={eq} and "
            f"nonequilibrium_steps={neq}: otherwise no globals.csv row falls on a leg boundary"
        )
    if isinstance(protocol, FahNonEquilibriumCyclingProtocol):
        filename = protocol.settings.fah_settings.globalVarFilename
        if filename != "globals.csv":
            raise TaskRefused(
                f"{where}: fah_settings.globalVarFilename is {filename!r}: fahflow collects "
                "globals.csv, so the works of such a WU would never be read"
            )


def core_xml(protocol: Any, gufe_settings: Any) -> tuple[str, int]:
    """(core.xml text, numSteps) of one WU = one cycle of ``protocol``.

    alchemiscale-fah's protocol carries its core settings: they are written exactly as its own
    simulation unit writes them (``generate_core_settings_file``), after checking numSteps.
    feflow's comes with none: ``gufe_settings`` (the config's ``gufe:`` block) provides them,
    with globalVarFreq the protocol's work_save_frequency unless told otherwise, and minimize
    on when the protocol's setup did not minimize.
    """
    eq, neq = _leg_steps(protocol)
    if isinstance(protocol, FahNonEquilibriumCyclingProtocol):
        steps = protocol.settings.fah_settings.numSteps
        settings = CoreSettings(globalVarFreq=protocol.settings.fah_settings.globalVarFreq)
        check_schedule(settings, cycles=1, eq_steps=eq, neq_steps=neq, n_steps=steps)
        text = FahNonEquilibriumCyclingSimulationUnit.generate_core_settings_file(protocol.settings)
        return text + "\n", steps
    core: CoreSettings = gufe_settings.core
    update: dict[str, Any] = {}
    if gufe_settings.global_var_freq_from_protocol:
        update["global_var_freq"] = protocol.settings.work_save_frequency
    if not protocol.settings.setup_minimize:
        update["minimize"] = True
    settings = core.model_copy(update=update)
    try:
        text = render_core_xml(settings, cycles=1, eq_steps=eq, neq_steps=neq)
    except ConfigError as exc:
        raise ConfigError(f"config gufe.core: {exc}") from None
    return text, num_steps(1, eq, neq)


class GufeKind:
    """A gufe Transformation (JSON) whose protocol is one of :data:`SUPPORTED`."""

    name = "gufe"

    def claim(
        self, payload: str, where: str, *, extends: str | None = None, dag_name: str | None = None
    ) -> Claimed:
        """Create the Task's ProtocolDAG (once: keys are random per ``create()``) and check that
        its keyed chain reads back with the same unit keys, since every later step reloads it.

        ``extends`` is the ProtocolDAGResult (JSON) of the Task this one extends, handed to
        ``create`` as alchemiscale's own compute service does, with ``dag_name`` (the Task's
        key). What the protocol does with it is its own business: both supported protocols
        ignore it today (gufe's ``validate`` swallows feflow's ``NotImplementedError``), and the
        DAG records it as ``extends_key``.
        """
        transformation = load_transformation(payload, where)
        _check_sampling(transformation.protocol, where)
        try:
            previous = None if extends is None else ProtocolDAGResult.from_json(content=extends)
            dag = transformation.create(extends=previous, name=dag_name)
            _setup, cycles, _result = dag_shape(dag)
        except Exception as exc:
            raise TaskRefused(
                f"{where}: {protocol_name(transformation.protocol)} cannot create a DAG: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        text = dag.to_json()
        reread = [u.key for u in ProtocolDAG.from_json(content=text).protocol_units]
        if reread != [u.key for u in dag.protocol_units]:
            raise TaskRefused(f"{where}: the DAG's keyed chain does not keep its unit keys")
        try:
            return Claimed(name=transformation.name or str(transformation.key), n_wus=len(cycles),
                           dag=text)  # fmt: skip
        except ValidationError:
            raise TaskRefused(
                f"{where}: the protocol's DAG has no cycle unit (num_cycles 0?)"
            ) from None

    def build(
        self, payload: str, transformation_id: str, out_dir: Path, *, config: Any
    ) -> Manifest:
        """Run the setup unit once for the Transformation and write the WU files from it.

        A setup that fails leaves empty placeholders for :data:`WU_FILES` (they are the step's
        declared outputs; no Task stages them) and its message and traceback in
        ``setup_failure``. Run again, build reuses a stored setup result whose files are there.
        """
        out_dir = Path(out_dir).resolve()
        transformation = load_transformation(payload, f"Transformation {transformation_id}")
        protocol = transformation.protocol
        text, steps = core_xml(protocol, config.gufe)  # a config that cannot fit: before setup
        result, seconds = _setup_result(transformation, out_dir / "units")
        manifest: dict[str, Any] = {
            "transformation_id": transformation_id,
            "kind": self.name,
            "name": transformation.name or str(transformation.key),
            "num_steps": steps,
            "temperature_K": protocol.settings.thermo_settings.temperature.m_as("kelvin"),
            "files": {name: name for name in WU_FILES},
            "protocol": protocol_name(protocol),
            "transformation_key": str(transformation.key),
            "setup_unit_key": str(result.source_key),
            "setup_result_key": str(result.key),
            "setup_seconds": round(seconds, 3),
        }
        if not result.ok():
            for name in WU_FILES:
                atomic.write_bytes(out_dir / name, b"")
            return Manifest(
                **manifest,
                n_atoms=0,  # no System was made
                nonbonded_method=str(protocol.settings.forcefield_settings.nonbonded_method),
                setup_failure=f"{result.exception[0]}: {result.exception[1]}\n{result.traceback}",
            )
        from feflow.utils.data import deserialize

        from fahflow.protocol.build import nonbonded_method

        sources = {
            "system.xml.bz2": "system",
            "state.xml.bz2": "state",
            "integrator.xml.bz2": "integrator",
        }
        for name, output in sources.items():
            atomic.write_bytes(out_dir / name, Path(result.outputs[output]).read_bytes())
        atomic.write_text(out_dir / "core.xml", text)
        system = deserialize(Path(result.outputs["system"]))
        return Manifest(
            **manifest,
            n_atoms=system.getNumParticles(),
            nonbonded_method=nonbonded_method(system),
        )

    def finish(
        self,
        *,
        payload: str,
        dag: str | None,
        transformation_dir: Path,
        task_dir: Path,
        globals_by_wu: dict[int, Path],
    ) -> ProtocolOutcome:
        """The Task's ProtocolDAGResult from its stored DAG and the collected globals.csv files
        (:func:`fahflow.kinds.gufe_results.finish_task`)."""
        from fahflow.kinds.gufe_results import finish_task

        if dag is None:
            raise ConfigError(f"{task_dir}: the Task has no stored ProtocolDAG (claim stores it)")
        transformation = load_transformation(payload, f"Task {Path(task_dir).name}")
        return finish_task(
            transformation.protocol,
            dag,
            setup_result_path=Path(transformation_dir) / "units" / SETUP_RESULT,
            task_dir=Path(task_dir),
            globals_by_wu=globals_by_wu,
        )

    def gather(self, payload: str, results: list[Path]) -> tuple[float, float] | None:
        """``protocol.gather`` over the Tasks' stored ProtocolDAGResults: (ΔG, σ) in kcal/mol,
        or None (logged) when there is none that is ok or the protocol cannot estimate."""
        from gufe.protocols.protocoldag import ProtocolDAGResult

        protocol = load_transformation(payload, "gather").protocol
        pdrs = [ProtocolDAGResult.from_json(content=Path(p).read_text()) for p in results]
        pdrs = [pdr for pdr in pdrs if pdr.ok()]
        if not pdrs:
            return None
        try:
            gathered = protocol.gather(pdrs)
            estimate = gathered.get_estimate().m_as("kilocalorie / mole")
            sigma = gathered.get_uncertainty().m_as("kilocalorie / mole")
        except Exception as exc:  # pymbar on too few or degenerate works, for one
            logger.warning("%s.gather: %s: %s", protocol_name(protocol), type(exc).__name__, exc)
            return None
        return float(estimate), float(sigma)


def _setup_result(
    transformation: gufe.Transformation, units: Path
) -> tuple[ProtocolUnitResult, float]:
    """The Transformation's setup unit result and the seconds it took; run at most once.

    A stored result is reused when its files are still there (a batch killed after the setup):
    the setup of one Transformation is the same work whichever DAG it comes from. Otherwise
    leftovers of an interrupted run are removed and the setup unit of a fresh DAG runs here,
    with ``raise_error=False`` so that a failure is a ProtocolUnitFailure, not an exception.
    """
    stored = units / SETUP_RESULT
    if stored.is_file():
        result = ProtocolUnitResult.from_json(content=stored.read_text())
        paths = [result.outputs.get(k) for k in ("system", "state", "integrator")]
        if not result.ok() or all(p is not None and Path(p).is_file() for p in paths):
            logger.info("setup of %s: reusing %s", transformation.key, stored)
            return result, _seconds(result)
    for leftover in (*units.glob("shared_*"), *units.glob("scratch_*")):
        shutil.rmtree(leftover, ignore_errors=True)
    setup, _cycles, _result = dag_shape(transformation.create())
    shared = units / f"shared_{setup.key}_attempt_0"
    scratch = units / f"scratch_{setup.key}_attempt_0"
    shared.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    result = setup.execute(
        context=Context(scratch=scratch, shared=shared), raise_error=False, **setup.inputs
    )
    shutil.rmtree(scratch, ignore_errors=True)
    seconds = _seconds(result)
    logger.info("setup of %s: %s in %.1f s", transformation.key, "ok" if result.ok() else
                "FAILED", seconds)  # fmt: skip
    atomic.write_text(stored, result.to_json())
    return result, seconds


def _seconds(result: ProtocolUnitResult) -> float:
    """How long the unit ran, from the times gufe recorded in its result."""
    if result.start_time is None or result.end_time is None:
        return 0.0
    return (result.end_time - result.start_time).total_seconds()
