"""What new gufe Tasks cost a batch: claim → serialize → stage → create, setup included.

    python benchmarks/gufe_batch.py [--tasks 4] [--transformations 4] [--example feflow|fah]

Two real ``snakemake --profile fah`` batches against the simulated WS with no volunteers (so
only fahflow's side is timed; every job stays READY), each in a fresh campaign:

* **one Transformation, N Tasks**: the bundled example submitted with ``--tasks N``. claim
  creates N DAGs, serialize runs the setup unit once for the Transformation, stage and create
  handle each Task's WUs (one CLONE per cycle);
* **N Transformations, 1 Task each**: the same example under N names (distinct JSON, hence
  distinct Transformations with identical chemistry and settings), so serialize runs N setups.

Next to them, in the same run, the baseline the issue asks for: one SetupUnit executed alone in
this process (as ``benchmarks/gufe_setup.py`` does), times N — what it would cost to run each
Task's setup unit separately. Printed per Task, wall and CPU seconds (CPU of the batch's
processes and their children, ``sqm`` included), and the ratio batch / baseline.

Needs the gufe stack and ``sqm`` on PATH (the venv's bin is put first here when it holds it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_overhead import REPO, _config, _identity
from gufe_setup import run_setup, sqm_on_path, timed

#: core.xml and the System once per RUN (one Transformation), State and Integrator per CLONE,
#: as the end-to-end gufe tests send them.
SEND = [
    "$home/RUN$run/core.xml",
    "$home/RUN$run/system.xml.bz2",
    "$home/RUN$run/CLONE$clone/state.xml.bz2",
    "$home/RUN$run/CLONE$clone/integrator.xml.bz2",
]


@dataclass
class BatchCost:
    """One batch that took ``tasks`` new Tasks of ``transformations`` Transformations to created."""

    label: str
    tasks: int
    transformations: int
    wall_s: float
    cpu_s: float
    exit: int
    jobs_created: int
    jobs_expected: int
    setups_run: int


PROBE = (
    "import resource, subprocess, sys, time, json;"
    "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
    " stderr=subprocess.DEVNULL).returncode; wall = time.perf_counter() - t;"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "print(json.dumps([wall, u.ru_utime + u.ru_stime, rc]))"
)


def _measured_batch(wd: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of every process it waited for, exit status) of one batch."""
    cmd = ["snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "fah")]
    out = subprocess.run([sys.executable, "-c", PROBE, *cmd], cwd=wd, capture_output=True,
                         text=True, check=True)  # fmt: skip
    wall, cpu, rc = json.loads(out.stdout)
    return wall, cpu, rc


def _submit(config: Path, transformation: Path, n_tasks: int) -> None:
    from fahflow.campaign import submit_spec

    keys = submit_spec(config, transformation, n_tasks)
    assert len(keys) == n_tasks, keys


def _variants(example: Path, n: int, folder: Path) -> list[Path]:
    """``n`` copies of the example Transformation that differ only in their name."""
    import gufe

    base = gufe.Transformation.from_json(example)
    paths = []
    for i in range(n):
        variant = gufe.Transformation(base.stateA, base.stateB, base.protocol,
                                      mapping=base.mapping, name=f"{base.name}_{i}")  # fmt: skip
        path = folder / f"variant{i}.json"
        variant.to_json(path)
        paths.append(path)
    return paths


def _setups_run(wd: Path) -> int:
    """How many setup units serialize ran (one stored setup result per Transformation)."""
    return len(list(wd.rglob("units/setup_result.json")))


def batch_cost(label: str, submissions: list[tuple[Path, int]], cycles: int) -> BatchCost:
    """A fresh campaign, the submissions queued, then one timed batch."""
    from fahflow.sim import SimConfig, Simulator

    n_tasks = sum(n for _, n in submissions)
    with tempfile.TemporaryDirectory(prefix="fahflow-bench-gufe-") as tmp:
        wd = Path(tmp)
        with Simulator(wd / "sim", volunteers=0, config=SimConfig(send=SEND)) as sim:
            cert, key = _identity(sim, wd)
            config = _config(wd, sim, cert, key, claim_max=n_tasks)
            data = yaml.safe_load(config.read_text())
            data["ws"]["send"] = SEND
            config.write_text(yaml.safe_dump(data))
            for path, n in submissions:
                _submit(config, path, n)
            wall, cpu, rc = _measured_batch(wd)
            with _ledger(wd) as ledger:
                wus = [w for t in ledger.tasks() for w in ledger.wus(t.task_id)]
            created = sum(sim.create_count(w.project, w.run, w.clone) for w in wus)
            setups = _setups_run(wd)
    return BatchCost(label, n_tasks, len(submissions), wall, cpu, rc, created,
                     n_tasks * cycles, setups)  # fmt: skip


def _ledger(wd: Path):
    from fahflow.ledger import Ledger

    return Ledger(wd / "run" / "ledger.sqlite")


def setup_alone(example: Path, where: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one SetupUnit executed alone in this process."""
    import gufe

    dag = gufe.Transformation.from_json(example).create()
    result, wall, cpu = timed(lambda: run_setup(dag, where))
    assert result.ok(), result
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4, help="Tasks of the one Transformation")
    parser.add_argument("--transformations", type=int, default=4, help="Transformations, 1 Task")
    parser.add_argument("--example", choices=("feflow", "fah"), default="feflow")
    args = parser.parse_args()

    if not sqm_on_path():
        return 1
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    import gufe

    from fahflow.kinds import gufe_example

    example = gufe_example.EXAMPLES_DIR / f"benzene_toluene_{args.example}.json"
    cycles = gufe.Transformation.from_json(example).protocol.settings.num_cycles
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start; "
          f"{example.name}, {cycles} WUs per Task")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="fahflow-bench-gufe-") as tmp:
        setup_wall, setup_cpu = setup_alone(example, Path(tmp) / "setup")
        variants = _variants(example, args.transformations, Path(tmp))
        runs = [
            batch_cost(f"1 Transformation x {args.tasks} Tasks", [(example, args.tasks)], cycles),
            batch_cost(
                f"{args.transformations} Transformations x 1 Task",
                [(p, 1) for p in variants],
                cycles,
            ),
        ]
    print(f"one SetupUnit alone: {setup_wall:.1f} s wall, {setup_cpu:.1f} s CPU")
    print(f"{'batch':<30} {'wall s':>7} {'s/Task':>7} {'CPU s':>7} {'CPU/Task':>8} "
          f"{'setups':>6} {'N x setup':>9} {'wall x':>6} {'CPU x':>5} {'jobs':>7}")  # fmt: skip
    for r in runs:
        wall_x, cpu_x = r.wall_s / (r.tasks * setup_wall), r.cpu_s / (r.tasks * setup_cpu)
        print(f"{r.label:<30} {r.wall_s:>7.1f} {r.wall_s / r.tasks:>7.1f} {r.cpu_s:>7.1f} "
              f"{r.cpu_s / r.tasks:>8.1f} {r.setups_run:>6} {r.tasks * setup_wall:>8.1f}s "
              f"{wall_x:>6.2f} {cpu_x:>5.2f} {r.jobs_created:>3}/{r.jobs_expected:<3}"
              + ("" if r.exit == 0 else f" exit {r.exit}"))  # fmt: skip
    print("x: batch / (N x one setup unit alone), wall and CPU; jobs: created once each / expected")
    return 0 if all(r.exit == 0 and r.jobs_created == r.jobs_expected for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
