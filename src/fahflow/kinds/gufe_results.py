"""A gufe Task's ProtocolDAGResult, from its stored DAG and what FAH returned.

Each unit of the Task's own DAG gets a result that says what really ran for it:

* **setup**: the Transformation's setup ran once, in serialize, for all its Tasks. The Task's setup
  unit gets a result with the same outputs (or the same failure) under its own unit key, and its
  outputs say where they came from (``fahflow_reused_from``: the Transformation's setup unit
  and result keys) — the result is not passed off as a run of this unit;
* **cycle i** ran on FAH as the Task's WU ``i``: its globals.csv is read by fahflow's parser
  (:mod:`fahflow.analysis.globals`) and becomes the outputs alchemiscale-fah's FAH cycle unit
  returns, which are what feflow's ResultUnit consumes: ``forward_work`` / ``reverse_work``
  (``.npy`` of the cumulative dimensionless work at each row of the leg) and ``log`` (the WU's
  science.log). A WU without a usable globals.csv is a ProtocolUnitFailure saying why;
* **result** runs here, through gufe's own ``execute_DAG``, fed the results above from its unit
  result cache, so that gufe, not fahflow, substitutes the dependencies.

Every cycle gets its result, failed or not (each WU ran on its own); as in ``execute_DAG``, no
unit runs after a failure, so a PDR with a failed setup or cycle has no result unit result.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from gufe.protocols.protocoldag import ProtocolDAG, ProtocolDAGResult, execute_DAG
from gufe.protocols.protocolunit import ProtocolUnit, ProtocolUnitFailure, ProtocolUnitResult

from fahflow import atomic
from fahflow.analysis.globals import Schedule, WorkUnitStatus, leg_work_samples, parse_globals
from fahflow.errors import ConfigError
from fahflow.kinds.base import ProtocolOutcome
from fahflow.kinds.gufe import dag_shape, protocol_name

logger = logging.getLogger(__name__)

#: The Task's stored result, under its task_dir.
PDR_FILE = "protocol_dag_result.json"


def finish_task(
    protocol: Any,
    dag_json: str,
    *,
    setup_result_path: Path,
    task_dir: Path,
    globals_by_wu: dict[int, Path],
) -> ProtocolOutcome:
    """Assemble, store (``task_dir/protocol_dag_result.json``, atomically) and gather the PDR."""
    dag = ProtocolDAG.from_json(content=dag_json)
    setup, cycles, _result = dag_shape(dag)
    if not setup_result_path.is_file():
        raise ConfigError(f"{setup_result_path}: missing: serialize stores the setup result there")
    source = ProtocolUnitResult.from_json(content=setup_result_path.read_text())
    units_dir = (task_dir / "units").resolve()
    results: list[ProtocolUnitResult] = [_reused_setup(source, setup)]
    if results[0].ok():
        eq = protocol.settings.integrator_settings.equilibrium_steps
        neq = protocol.settings.integrator_settings.nonequilibrium_steps
        schedule = Schedule(n_steps_eq=eq, n_steps_neq=neq, n_steps_per_cycle=2 * (eq + neq))
        temperature_K = protocol.settings.thermo_settings.temperature.m_as("kelvin")
        for idx, unit in enumerate(cycles):
            results.append(
                _cycle_result(
                    unit, idx, results[0], globals_by_wu.get(idx), schedule, temperature_K,
                    units_dir / (unit.name or str(unit.key)),
                )
            )  # fmt: skip
    if all(r.ok() for r in results):
        pdr = _run_result_unit(dag, results, units_dir)
    else:
        pdr = ProtocolDAGResult(
            name=dag.name,
            protocol_units=dag.protocol_units,
            protocol_unit_results=results,
            transformation_key=dag.transformation_key,
            extends_key=dag.extends_key,
        )
    path = atomic.write_text(task_dir / PDR_FILE, pdr.to_json())
    return outcome(protocol, pdr, path)


def outcome(protocol: Any, pdr: ProtocolDAGResult, path: Path) -> ProtocolOutcome:
    """The kind's part of the Task's outcome: the PDR's path, and ΔG ± σ when it is ok."""
    name = type(protocol).__qualname__
    if not pdr.ok():
        failures = "\n\n".join(
            f"{f.name} ({f.source_key}): {f.exception[0]}: {f.exception[1]}\n{f.traceback}"
            for f in pdr.protocol_unit_failures
        )
        missing = [str(u.name) for u in pdr.protocol_units if not pdr.unit_to_all_results(u)]
        if missing:
            failures += f"\n\nnot run after the failure: {', '.join(missing)}"
        return ProtocolOutcome(
            ok=False, protocol=name, protocol_dag_result=str(path), failure=failures
        )
    try:
        result = protocol.gather([pdr])
        estimate = result.get_estimate().m_as("kilocalorie / mole")
        sigma = result.get_uncertainty().m_as("kilocalorie / mole")
    except Exception as exc:  # pymbar on too few or degenerate works, for one
        return ProtocolOutcome(
            ok=True, protocol=name, protocol_dag_result=str(path),
            failure=f"{protocol_name(protocol)}.gather: {type(exc).__name__}: {exc}",
        )  # fmt: skip
    return ProtocolOutcome(
        ok=True,
        protocol=name,
        protocol_dag_result=str(path),
        Delta_f_kcal_per_mol=float(estimate),
        sigma_kcal_per_mol=float(sigma) if math.isfinite(sigma) else None,
    )


def _reused_setup(source: ProtocolUnitResult, setup: ProtocolUnit) -> ProtocolUnitResult:
    """The Task's setup unit result: ``source``'s outputs or failure under ``setup``'s key."""
    reused = {
        "fahflow_reused_from": {
            "setup_unit_key": str(source.source_key),
            "setup_result_key": str(source.key),
            "note": "the Transformation's setup ran once for all its Tasks (fahflow serialize)",
        }
    }
    common = dict(
        name=setup.name,
        source_key=setup.key,
        inputs=setup.inputs,
        start_time=source.start_time,
        end_time=source.end_time,
    )
    if source.ok():
        return ProtocolUnitResult(outputs={**source.outputs, **reused}, **common)
    return ProtocolUnitFailure(
        outputs=reused, exception=source.exception, traceback=source.traceback, **common
    )


def _cycle_result(
    unit: ProtocolUnit,
    idx: int,
    setup_result: ProtocolUnitResult,
    globals_csv: Path | None,
    schedule: Schedule,
    temperature_K: float,
    out: Path,
) -> ProtocolUnitResult:
    """Cycle unit ``unit`` (WU ``idx``) from its globals.csv, or a failure saying why not."""
    inputs = {**unit.inputs, "setup": setup_result}
    if globals_csv is None or not Path(globals_csv).is_file():
        return _failure(unit, inputs, f"WU {idx} ({unit.name}): no globals.csv was collected")
    wu = parse_globals(
        globals_csv, cycles_per_wu=1, expected_schedule=schedule, temperature_K=temperature_K
    )
    if wu.status is not WorkUnitStatus.OK:
        return _failure(
            unit, inputs, f"WU {idx} ({unit.name}): {globals_csv}: {wu.status.value}: {wu.reason}"
        )
    forward, reverse = leg_work_samples(globals_csv, schedule)
    out = out.resolve()
    outputs: dict[str, Any] = {
        "forward_work": _save(out / f"forward_{unit.name}.npy", forward),
        "reverse_work": _save(out / f"reverse_{unit.name}.npy", reverse),
        "log": None,
    }
    log = Path(globals_csv).with_name("science.log")
    if log.is_file():
        outputs["log"] = atomic.write_bytes(out / "science.log", log.read_bytes())
    return ProtocolUnitResult(name=unit.name, source_key=unit.key, inputs=inputs, outputs=outputs)


def _save(path: Path, values: list[float]) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values, dtype=float))
    return atomic.write_bytes(path, buffer.getvalue())


def _failure(unit: ProtocolUnit, inputs: dict[str, Any], message: str) -> ProtocolUnitFailure:
    logger.warning("%s", message)
    return ProtocolUnitFailure(
        name=unit.name,
        source_key=unit.key,
        inputs=inputs,
        outputs={},
        exception=("WorkUnitResultError", (message,)),
        traceback=f"fahflow: {message} (the unit ran on Folding@home; no Python traceback)",
    )


def _run_result_unit(
    dag: ProtocolDAG, results: list[ProtocolUnitResult], units_dir: Path
) -> ProtocolDAGResult:
    """Run what is left of ``dag`` (its result unit) with gufe's ``execute_DAG``, every other
    unit's result given through its cache, then drop the cache (the PDR holds them all)."""
    cache = units_dir / "execute_dag_cache"
    shutil.rmtree(cache, ignore_errors=True)  # a killed earlier run's results are not these
    store = cache / f"{dag.key}-results_cache"
    store.mkdir(parents=True)
    for result in results:
        result.to_json(store / f"{result.source_key}_unitresults.json")
    pdr = execute_DAG(
        dag,
        shared_basedir=units_dir,
        scratch_basedir=units_dir,
        cache_basedir=cache,
        raise_error=False,
    )
    shutil.rmtree(cache, ignore_errors=True)
    return pdr


def failure_pdr(
    transformation: Any,
    reason: str,
    *,
    dag_json: str | None = None,
    extends: ProtocolDAGResult | None = None,
    name: str | None = None,
) -> ProtocolDAGResult:
    """A failed ProtocolDAGResult for a Task that ended before any of its units produced one
    (refused at claim, no PROJECT fits it, its WUs failed on FAH): its first unit fails with
    ``reason`` as the traceback, the others did not run, as in ``execute_DAG`` after a failure.

    The units are the Task's stored DAG (``dag_json``) where there is one; else a DAG created
    now, without ``extends`` when the protocol refuses to extend (the failure says so), so that a
    user's gufe reads the result with the protocol's own unit classes.
    """
    if dag_json is not None:
        dag = ProtocolDAG.from_json(content=dag_json)
    else:
        try:
            dag = transformation.create(extends=extends, name=name)
        except Exception:
            dag = transformation.create(name=name)
    setup, _cycles, _result = dag_shape(dag)
    failure = ProtocolUnitFailure(
        name=setup.name,
        source_key=setup.key,
        inputs=setup.inputs,
        outputs={},
        exception=("FahflowTaskFailed", (reason,)),
        traceback=reason,
    )
    return ProtocolDAGResult(
        name=dag.name,
        protocol_units=dag.protocol_units,
        protocol_unit_results=[failure],
        transformation_key=dag.transformation_key,
        extends_key=extends.key if extends is not None else dag.extends_key,
    )
