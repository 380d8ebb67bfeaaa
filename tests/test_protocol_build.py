"""The WU builder: files that a fresh process (standing in for the FAH core) can run.

``MINI_CORE`` is what the FAH OpenMM core does with a WU, in plain OpenMM: read core.xml,
deserialize the three XML files, set the state, step, and write a globals.csv row every
``globalVarFreq`` steps (``Step,Time``, context parameters, integrator globals). It runs in a
fresh interpreter so that nothing the builder left in memory can help.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import openmm
import pytest
import yaml

from fahflow.analysis.estimate import bar_estimate
from fahflow.analysis.globals import REQUIRED_COLUMNS, Schedule, WorkUnitStatus, parse_globals
from fahflow.errors import ConfigError
from fahflow.protocol.build import FILE_NAMES, build_work_unit, parameters_at
from fahflow.protocol.spec import example_path, load_spec, parse_spec

MINI_CORE = r"""
import bz2, sys, xml.etree.ElementTree as ET
import openmm
wu_dirs, steps = sys.argv[2:], int(sys.argv[1])
for wu in wu_dirs:
    cfg = {c.tag: c.text for c in ET.parse(f"{wu}/core.xml").getroot()}
    n, freq = (steps if steps > 0 else int(cfg["numSteps"])), int(cfg["globalVarFreq"])
    def load(name):
        data = bz2.decompress(open(f"{wu}/{name}", "rb").read())
        return openmm.XmlSerializer.deserialize(data.decode())
    system = load("system.xml.bz2")
    state = load("state.xml.bz2")
    integrator = load("integrator.xml.bz2")
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setState(state)
    params = sorted(context.getParameters())
    n_globals = integrator.getNumGlobalVariables()
    names = sorted(integrator.getGlobalVariableName(i) for i in range(n_globals))
    with open(f"{wu}/{cfg['globalVarFilename']}", "w") as out:
        out.write(",".join(["Step", "Time", *params, *names]) + "\n")
        for step in range(0, n + 1, freq):
            if step:
                integrator.step(freq)
            time_ps = context.getState().getTime()._value
            row = [step, time_ps, *(context.getParameter(p) for p in params),
                   *(integrator.getGlobalVariableByName(v) for v in names)]
            out.write(",".join(repr(float(x)) if i else str(x) for i, x in enumerate(row)) + "\n")
"""


def run_in_fresh_process(wu_dirs: list[Path], steps: int = 0) -> None:
    """Run WUs (``steps`` each, 0 = the WU's numSteps) in a new interpreter; writes globals.csv."""
    subprocess.run(
        [sys.executable, "-c", MINI_CORE, str(steps), *map(str, wu_dirs)],
        check=True,
        capture_output=True,
        timeout=600,
    )


def _digest(files: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}


def _xml(path: Path) -> ET.Element:
    return ET.fromstring(bz2.decompress(path.read_bytes()))


@pytest.fixture(scope="module")
def harmonic_wu(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("harmonic")
    return build_work_unit(load_spec(example_path("harmonic")), out, seed=11)


def test_harmonic_wu_files_and_facts(harmonic_wu) -> None:
    spec = load_spec(example_path("harmonic"))
    assert set(harmonic_wu.files) == set(FILE_NAMES)
    assert all(path.stat().st_size > 0 for path in harmonic_wu.files.values())
    assert harmonic_wu.n_atoms == 4
    assert harmonic_wu.nonbonded_method == "NoCutoff"
    assert harmonic_wu.num_steps == spec.num_steps == 3000
    assert harmonic_wu.temperature_K == 300.0
    core = {c.tag: c.text for c in ET.parse(harmonic_wu.files["core.xml"]).getroot()}
    assert core["numSteps"] == "3000" and core["globalVarFreq"] == "50"
    state = _xml(harmonic_wu.files["state.xml.bz2"])
    for section in ("Positions", "Velocities", "Forces", "Energies", "PeriodicBoxVectors"):
        assert state.find(section) is not None, section
    assert state.find("Parameters").attrib == {"lambda_harmonic": "0"}
    integrator = _xml(harmonic_wu.files["integrator.xml.bz2"])
    globals_ = (
        {v.tag: v.attrib for v in integrator.find("GlobalVariables")}
        if integrator.find("GlobalVariables") is not None
        else {}
    )
    assert integrator.attrib["type"] == "CustomIntegrator"
    # 0: a seed per Context, so CLONEs sharing the per-RUN files do not replay the same noise
    assert integrator.attrib["randomSeed"] == "0"
    assert globals_ or "n_steps_eq" in ET.tostring(integrator, encoding="unicode")


def test_same_seed_same_bytes_other_seed_other_state(tmp_path: Path, harmonic_wu) -> None:
    spec = load_spec(example_path("harmonic"))
    again = build_work_unit(spec, tmp_path / "again", seed=11)
    assert _digest(again.files) == _digest(harmonic_wu.files)
    other = build_work_unit(spec, tmp_path / "other", seed=12)
    assert _digest(other.files)["state.xml.bz2"] != _digest(harmonic_wu.files)["state.xml.bz2"]
    for name in ("system.xml.bz2", "integrator.xml.bz2", "core.xml"):
        assert _digest(other.files)[name] == _digest(harmonic_wu.files)[name], name
    assert not list((tmp_path / "again").glob(".*.tmp")), "no temporary files left behind"


def test_built_wu_runs_in_fresh_process_and_parses(tmp_path: Path) -> None:
    spec = load_spec(example_path("harmonic"))
    wu = build_work_unit(spec, tmp_path, seed=5)
    run_in_fresh_process([tmp_path])
    globals_csv = tmp_path / spec.core.global_var_filename
    header = globals_csv.read_text().splitlines()[0].split(",")
    assert header[:3] == ["Step", "Time", "lambda_harmonic"]
    assert set(REQUIRED_COLUMNS) <= set(header)
    assert {"lambda", "step", "n_steps_eq", "n_steps_neq"} <= set(header)
    expected = Schedule(
        n_steps_eq=spec.eq_steps,
        n_steps_neq=spec.neq_steps,
        n_steps_per_cycle=2 * (spec.eq_steps + spec.neq_steps),
    )
    works = parse_globals(
        globals_csv,
        cycles_per_wu=spec.cycles_per_wu,
        expected_schedule=expected,
        temperature_K=wu.temperature_K,
    )
    assert works.status is WorkUnitStatus.OK, works.reason
    assert len(works.ok_cycles()) == spec.cycles_per_wu
    assert works.temperature_K == pytest.approx(spec.temperature_K, rel=1e-6)


def test_harmonic_wus_recover_the_exact_free_energy(tmp_path: Path) -> None:
    """Six seeded WUs (12 cycles) through the fresh-process core; BAR within 4σ of exact."""
    spec = load_spec(example_path("harmonic"))
    dirs = [tmp_path / f"wu{seed}" for seed in range(6)]
    for seed, out in enumerate(dirs):
        build_work_unit(spec, out, seed=seed)
    run_in_fresh_process(dirs)
    w_F, w_R = [], []
    for out in dirs:
        works = parse_globals(out / "globals.csv", cycles_per_wu=spec.cycles_per_wu)
        assert works.status is WorkUnitStatus.OK, works.reason
        w_F += [c.w_F for c in works.cycles]
        w_R += [c.w_R for c in works.cycles]
    exact = spec.exact_delta_f_kT()
    result = bar_estimate(np.array(w_F), np.array(w_R), temperature_K=300.0, n_bootstrap=0)
    assert abs(result.Delta_f_kT - exact) < 4 * result.dDelta_f_kT + 0.05, (result, exact)
    assert result.dDelta_f_kT < 0.5
    # Second law, cycle by cycle on average: dissipation is positive.
    assert np.mean(w_F) > exact > -np.mean(w_R)


def test_water_wu_is_alchemical_pme_and_runs(tmp_path: Path) -> None:
    data = yaml.safe_load(example_path("water").read_text())
    data["preparation"] = {
        "minimize": True,
        "minimize_max_iterations": 50,
        "equilibration_steps": 20,
    }
    spec = parse_spec(data)
    wu = build_work_unit(spec, tmp_path, seed=1)
    assert wu.nonbonded_method == "PME"
    assert wu.n_atoms % 3 == 0 and wu.n_atoms > 300
    system = openmm.XmlSerializer.deserialize(
        bz2.decompress(wu.files["system.xml.bz2"].read_bytes()).decode()
    )
    names = {
        f.getGlobalParameterName(i)
        for f in system.getForces()
        if hasattr(f, "getNumGlobalParameters")
        for i in range(f.getNumGlobalParameters())
    }
    assert {"lambda_sterics", "lambda_electrostatics"} <= names
    state = _xml(wu.files["state.xml.bz2"])
    assert state.find("Parameters").attrib["lambda_sterics"] == "1"
    run_in_fresh_process([tmp_path], steps=500)
    header = (tmp_path / "globals.csv").read_text().splitlines()[0].split(",")
    assert set(REQUIRED_COLUMNS) | {"lambda_sterics", "lambda_electrostatics"} <= set(header)
    rows = (tmp_path / "globals.csv").read_text().splitlines()[1:]
    assert len(rows) == 3  # steps 0, 250, 500


def test_parameters_follow_the_schedule() -> None:
    data = yaml.safe_load(example_path("water").read_text())
    data["lambda_functions"] = {
        "lambda_electrostatics": "max(0, 1 - 2*lambda)",
        "lambda_sterics": "min(1, 2 - 2*lambda)",
    }
    spec = parse_spec(data)
    assert parameters_at(spec, 0.0) == {"lambda_electrostatics": 1.0, "lambda_sterics": 1.0}
    assert parameters_at(spec, 0.5) == {"lambda_electrostatics": 0.0, "lambda_sterics": 1.0}
    assert parameters_at(spec, 0.75) == {"lambda_electrostatics": 0.0, "lambda_sterics": 0.5}
    assert parameters_at(spec, 1.0) == {"lambda_electrostatics": 0.0, "lambda_sterics": 0.0}
    # the bundled example: coupled at lambda=0, decoupled at lambda=1
    water = load_spec(example_path("water"))
    assert parameters_at(water, 0.0) == {"lambda_electrostatics": 1.0, "lambda_sterics": 1.0}
    assert parameters_at(water, 1.0) == {"lambda_electrostatics": 0.0, "lambda_sterics": 0.0}


def test_build_errors_name_the_field(tmp_path: Path) -> None:
    data = yaml.safe_load(example_path("water").read_text())
    data["lambda_functions"] = {
        "lambda_sterics": "min(1, 2 - 2*lambda",
        "lambda_electrostatics": "0",
    }
    with pytest.raises(ConfigError, match="lambda_functions"):
        build_work_unit(parse_spec(data), tmp_path)
    data = yaml.safe_load(example_path("water").read_text())
    data["lambda_functions"]["lambda_torsions"] = "lambda"
    with pytest.raises(ConfigError, match=r"lambda_functions: \['lambda_torsions'\] are not"):
        build_work_unit(parse_spec(data), tmp_path)
    data = yaml.safe_load(example_path("water").read_text())
    data["alchemical"]["atoms"] = [0, 1, 100_000]
    with pytest.raises(ConfigError, match=r"alchemical.atoms: \[100000\] out of range"):
        build_work_unit(parse_spec(data), tmp_path)
    data["alchemical"]["atoms"] = [0]
    data["source"]["kwargs"]["box_edge"] = "2.0 parsec"
    with pytest.raises(ConfigError, match=r"source\.kwargs\.box_edge: unknown unit 'parsec'"):
        build_work_unit(parse_spec(data), tmp_path)
    with pytest.raises(ConfigError, match="seed must be >= 0"):
        build_work_unit(load_spec(example_path("harmonic")), tmp_path, seed=-1)
    assert not list(tmp_path.iterdir()), "a failed build writes nothing"


def test_xml_source_round_trip(tmp_path: Path, harmonic_wu) -> None:
    """An XML source (System + State) builds; here: the plain water box written as XML."""
    from openmm import unit
    from openmmtools import testsystems

    box = testsystems.WaterBox(box_edge=1.6 * unit.nanometer, cutoff=0.7 * unit.nanometer)
    (tmp_path / "system.xml").write_text(openmm.XmlSerializer.serialize(box.system))
    context = openmm.Context(
        box.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(box.positions)
    state = context.getState(getPositions=True)
    (tmp_path / "state.xml.bz2").write_bytes(
        bz2.compress(openmm.XmlSerializer.serialize(state).encode())
    )
    data = yaml.safe_load(example_path("water").read_text())
    data["source"] = {"kind": "xml", "system": "system.xml", "state": "state.xml.bz2"}
    data["preparation"] = {"minimize": False, "equilibration_steps": 0}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    wu = build_work_unit(load_spec(spec_path), tmp_path / "wu", seed=2)
    assert wu.n_atoms == box.system.getNumParticles()
    assert wu.nonbonded_method == "PME"


@pytest.mark.skipif(
    importlib.util.find_spec("fahflow.sim.core") is None, reason="fahflow.sim.core not there yet"
)
def test_simulator_core_runs_a_built_wu(tmp_path: Path) -> None:
    from fahflow.sim.core import run_core

    spec = load_spec(example_path("harmonic"))
    build_work_unit(spec, tmp_path / "wu", seed=3)
    run_core(tmp_path / "wu", tmp_path / "out", platform="CPU")
    found = list((tmp_path / "out").rglob("globals.csv"))
    assert found, "run_core wrote no globals.csv"
    works = parse_globals(found[0], cycles_per_wu=spec.cycles_per_wu)
    assert works.status is WorkUnitStatus.OK, works.reason
