"""What the bundled gufe example's local work costs: loading it, creating its DAG, its SetupUnit.

    python benchmarks/gufe_setup.py [--example feflow|fah] [--create-repeat 20] [--setup-repeat 1]
                                    [--cycle] [--keep DIR]

fahflow runs a gufe Task's SetupUnit on its own host in ``serialize`` (force field, AM1-BCC
charges with ambertools' ``sqm``, solvation, the hybrid topology, minimization) and turns its
System, State and Integrator into the RUN's files, so its cost is what a new Transformation adds
to a batch. The issue's goal is about 20 s for benzene→toluene here. ``transformation.create()``
runs once per Task (its unit keys are random, so the DAG is stored, never re-created).

``--cycle`` also runs one of feflow's cycle units here on the CPU (what one WU computes on FAH;
feflow example only, the FAH protocol's cycle unit talks to a work server) to size the example.

Prints wall and CPU seconds (CPU includes child processes: ``sqm`` runs as one), the atoms and
the box of the System the setup built. Needs the gufe stack and ``sqm`` on PATH (the venv's bin
is put first here when it holds ``sqm``).
"""

from __future__ import annotations

import argparse
import bz2
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GOAL_SETUP_S = 20.0  # issue 10: "≈20 s for benzene→toluene in a 2 nm box here"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (``sqm``, ``antechamber``)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``call()``, its wall seconds and its CPU seconds."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = call()
    return value, time.perf_counter() - wall, cpu_seconds() - cpu


def system_summary(system_path: Path) -> str:
    import openmm

    system = openmm.XmlSerializer.deserialize(bz2.decompress(system_path.read_bytes()).decode())
    box = system.getDefaultPeriodicBoxVectors()
    edges = " x ".join(
        f"{v.value_in_unit(openmm.unit.nanometer)[i]:.2f}" for i, v in enumerate(box)
    )
    return f"{system.getNumParticles()} particles, box {edges} nm"


def unit_named(dag: Any, name: str) -> Any:
    (unit,) = [unit for unit in dag.protocol_units if unit.name == name]
    return unit


def execute(unit: Any, where: Path, **inputs: Any) -> Any:
    """Execute one unit in fresh scratch and shared folders under ``where``."""
    from gufe.protocols.protocolunit import Context

    scratch, shared = where / "scratch", where / "shared"
    scratch.mkdir(parents=True)
    shared.mkdir(parents=True)
    return unit.execute(context=Context(scratch, shared), raise_error=True, **inputs)


def run_setup(dag: Any, where: Path) -> Any:
    """Execute the DAG's SetupUnit alone, as ``serialize`` does."""
    setup = unit_named(dag, "setup")
    return execute(setup, where, **setup.inputs)


def run_cycle(dag: Any, setup_result: Any, where: Path) -> Any:
    """Execute the DAG's first cycle unit on the setup's result (as execute_DAG would)."""
    cycle = unit_named(dag, "cycle_0")
    inputs = {k: setup_result if k == "setup" else v for k, v in cycle.inputs.items()}
    return execute(cycle, where, **inputs)


def sqm_on_path() -> bool:
    """Put the venv's bin/ (where the gufe stack installs ``sqm``, which AM1-BCC charges run) on
    PATH when needed; False, with one line on stderr, when there is no ``sqm`` at all."""
    venv_bin = Path(sys.executable).parent
    if shutil.which("sqm") is None and (venv_bin / "sqm").exists():
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ['PATH']}"
    if shutil.which("sqm") is None:
        print("sqm is not on PATH: install the gufe stack (scripts/bootstrap)", file=sys.stderr)
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", choices=("feflow", "fah"), default="feflow")
    parser.add_argument("--create-repeat", type=int, default=20)
    parser.add_argument("--setup-repeat", type=int, default=1)
    parser.add_argument("--cycle", action="store_true", help="also run one cycle (feflow)")
    parser.add_argument("--keep", type=Path, help="keep the setup's files here")
    args = parser.parse_args()

    if not sqm_on_path():
        return 1

    load_average = os.getloadavg()[0]
    _, import_wall, import_cpu = timed(lambda: __import__("feflow.protocols"))
    import gufe

    from fahflow.kinds import gufe_example

    path = gufe_example.EXAMPLES_DIR / f"benzene_toluene_{args.example}.json"
    transformation, load_wall, _ = timed(lambda: gufe.Transformation.from_json(path))
    creates = [timed(transformation.create)[1] for _ in range(args.create_repeat)]

    root = args.keep or Path(tempfile.mkdtemp(prefix="gufe-setup-"))
    dag = transformation.create()
    setups = []
    for attempt in range(args.setup_repeat):
        result, wall, cpu = timed(lambda a=attempt: run_setup(dag, root / f"setup{a}"))
        assert result.ok(), result
        setups.append((wall, cpu))
    system = system_summary(Path(result.outputs["system"]))
    cycle = None
    if args.cycle and args.example == "feflow":
        cycle_result, *cycle = timed(lambda: run_cycle(dag, result, root / "cycle0"))
        assert cycle_result.ok(), cycle_result
    if args.keep is None:
        shutil.rmtree(root)

    print(f"example: {path.name} ({type(transformation.protocol).__name__}), {system}")
    print(f"load average at start: {load_average:.1f} on {os.cpu_count()} cores")
    print(f"import feflow + gufe stack:  {import_wall:6.2f} s wall {import_cpu:6.2f} s CPU")
    print(f"Transformation.from_json:     {load_wall:6.3f} s")
    print(
        f"transformation.create():      median {statistics.median(creates) * 1000:6.1f} ms "
        f"(min {min(creates) * 1000:.1f}, max {max(creates) * 1000:.1f}; n={len(creates)})"
    )
    for wall, cpu in setups:
        verdict = "within" if wall <= GOAL_SETUP_S else "over"
        print(
            f"SetupUnit.execute:            {wall:6.2f} s wall {cpu:6.2f} s CPU "
            f"(goal ≈{GOAL_SETUP_S:.0f} s: {verdict})"
        )
    if cycle is not None:
        settings = transformation.protocol.settings
        steps = 2 * (settings.integrator_settings.equilibrium_steps
                     + settings.integrator_settings.nonequilibrium_steps)  # fmt: skip
        print(f"one cycle unit (CPU, {steps} steps): {cycle[0]:6.2f} s wall {cycle[1]:6.2f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
