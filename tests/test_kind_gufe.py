"""gufe Transformations as Tasks (``fahflow.kinds.gufe``), with the real gufe/feflow objects.

One tiny real Transformation per protocol (benzene → toluene in a 1.0 nm-padded water cube,
2 cycles of 100 + 100 steps), built once per session: claim, build (the setup unit, run once),
the WUs run by fahflow's emulated FAH core, and finish to a ProtocolDAGResult that gathers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("feflow", reason="the gufe stack is not installed (pip install -e .[gufe])")
pytestmark = pytest.mark.gufe

import gufe  # noqa: E402
from gufe.protocols.protocoldag import ProtocolDAGResult  # noqa: E402
from openff.units import unit  # noqa: E402

from fahflow.config import GufeSettings  # noqa: E402
from fahflow.kinds.base import WU_FILES, Claimed, Manifest, TaskRefused  # noqa: E402
from fahflow.kinds.gufe import GufeKind  # noqa: E402
from fahflow.sim.core import CoreXml, run_core  # noqa: E402

BIN = Path(sys.executable).parent  # sqm (AM1-BCC) lives beside the venv's python
EQ = NEQ = 100


@pytest.fixture(scope="session", autouse=True)
def _sqm_on_path() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def ligands() -> tuple[Any, Any, Any]:
    """Benzene, toluene (shape-aligned) and Kartograf's mapping between them."""
    from kartograf import KartografAtomMapper
    from kartograf.atom_aligner import align_mol_shape
    from rdkit import Chem
    from rdkit.Chem import AllChem

    def component(smiles: str, name: str) -> gufe.SmallMoleculeComponent:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=42)
        return gufe.SmallMoleculeComponent.from_rdkit(mol, name=name)

    benzene = component("c1ccccc1", "benzene")
    toluene = align_mol_shape(component("Cc1ccccc1", "toluene"), ref_mol=benzene)
    return benzene, toluene, next(KartografAtomMapper().suggest_mappings(benzene, toluene))


def transformation(ligands: Any, kind: str, padding_nm: float = 1.0) -> gufe.Transformation:
    """A tiny real Transformation whose protocol is feflow's (``feflow``) or alchemiscale-fah's
    (``fah``), or openfe's RBFE protocol (``openfe``, unsupported)."""
    benzene, toluene, mapping = ligands
    if kind == "openfe":
        from openfe.protocols.openmm_rfe import RelativeHybridTopologyProtocol as Protocol
    elif kind == "fah":
        from alchemiscale_fah.protocols.feflow.nonequilibrium_cycling import (
            FahNonEquilibriumCyclingProtocol as Protocol,
        )
    else:
        from feflow.protocols import NonEquilibriumCyclingProtocol as Protocol
    settings = Protocol.default_settings()
    settings.solvation_settings.solvent_padding = padding_nm * unit.nanometer
    settings.solvation_settings.box_shape = "cube"
    if kind != "openfe":
        settings.num_cycles = 2
        settings.integrator_settings.equilibrium_steps = EQ
        settings.integrator_settings.nonequilibrium_steps = NEQ
        settings.work_save_frequency = 50
        settings.traj_save_frequency = 100
        settings.engine_settings.compute_platform = "CPU"
    if kind == "fah":
        settings.fah_settings.numSteps = 2 * EQ + 2 * NEQ
        settings.fah_settings.globalVarFreq = 25
    solvent = gufe.SolventComponent()
    return gufe.Transformation(
        gufe.ChemicalSystem({"ligand": benzene, "solvent": solvent}),
        gufe.ChemicalSystem({"ligand": toluene, "solvent": solvent}),
        Protocol(settings),
        mapping=mapping,
        name=f"benzene-toluene-{kind}",
    )


@dataclass
class Built:
    kind: str
    payload: str
    claimed: Claimed
    manifest: Manifest
    out: Path


@pytest.fixture(scope="session", params=["feflow", "fah"])
def built(request: pytest.FixtureRequest, ligands: Any, tmp_path_factory: Any) -> Built:
    payload = transformation(ligands, request.param).to_json()
    out = tmp_path_factory.mktemp(f"built-{request.param}")
    claimed = GufeKind().claim(payload, "test")
    manifest = GufeKind().build(payload, "T1", out, config=SimpleNamespace(gufe=GufeSettings()))
    print(f"setup of {request.param}: {manifest.model_extra['setup_seconds']} s")
    return Built(request.param, payload, claimed, manifest, out)


@pytest.fixture(scope="session")
def returned(built: Built, tmp_path_factory: Any) -> dict[int, Path]:
    """Each WU of the Task run by the emulated FAH core; WU index → its globals.csv."""
    root = tmp_path_factory.mktemp(f"ws-{built.kind}")
    globals_by_wu = {}
    for idx in range(built.claimed.n_wus):
        wu = root / f"wu{idx}"
        wu.mkdir()
        for name in WU_FILES:
            shutil.copy(built.out / name, wu / name)
        results = root / f"PROJ1/RUN0/CLONE{idx}/results0"
        run_core(wu, results, threads=1)
        globals_by_wu[idx] = results / "globals.csv"
    return globals_by_wu


def finish(built: Built, task_dir: Path, globals_by_wu: dict[int, Path]) -> Any:
    return GufeKind().finish(
        payload=built.payload,
        dag=built.claimed.dag,
        transformation_dir=built.out,
        task_dir=task_dir,
        globals_by_wu=globals_by_wu,
    )


def unit_keys(dag_json: str) -> dict[str, str]:
    return {name: key for key, name in _units(dag_json)}


def _units(dag_json: str) -> list[tuple[str, str]]:
    chain = json.loads(dag_json)
    return [(k, d["name"]) for k, d in chain if d.get("__qualname__", "").endswith("Unit")]


# --- claim -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["feflow", "fah"])
def test_claim_keyed_chain_and_dict_forms(ligands: Any, kind: str) -> None:
    t = transformation(ligands, kind)
    as_dict = json.dumps(t.to_dict(), cls=gufe.tokenization.JSON_HANDLER.encoder)
    for payload in (t.to_json(), as_dict):
        claimed = GufeKind().claim(payload, "queue row 1")
        assert claimed.name == f"benzene-toluene-{kind}" and claimed.n_wus == 2
        names = sorted(unit_keys(claimed.dag or ""))
        assert names == ["cycle_0", "cycle_1", "result", "setup"]


def test_each_claim_creates_its_own_dag(ligands: Any) -> None:
    payload = transformation(ligands, "feflow").to_json()
    first, second = (GufeKind().claim(payload, "x").dag or "" for _ in range(2))
    assert unit_keys(first)["setup"] != unit_keys(second)["setup"]  # random keys per create()


def test_unsupported_protocol_is_refused_by_name(ligands: Any) -> None:
    payload = transformation(ligands, "openfe").to_json()
    with pytest.raises(TaskRefused) as err:
        GufeKind().claim(payload, "queue row 7")
    message = str(err.value)
    assert "queue row 7" in message and "RelativeHybridTopologyProtocol" in message
    assert (
        "NonEquilibriumCyclingProtocol" in message and "FahNonEquilibriumCyclingProtocol" in message
    )


def test_a_fah_protocol_writing_another_globals_file_is_refused(ligands: Any) -> None:
    """collect copies globals.csv: a WU writing its works elsewhere would never be read."""
    t = transformation(ligands, "fah")
    settings = t.protocol.settings.unfrozen_copy()
    settings.fah_settings.globalVarFilename = "works.csv"
    protocol = type(t.protocol)(settings)
    other = gufe.Transformation(t.stateA, t.stateB, protocol, mapping=t.mapping, name="other")
    with pytest.raises(TaskRefused, match=r"globalVarFilename is 'works\.csv'"):
        GufeKind().claim(other.to_json(), "queue row 8")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "cannot read a gufe Transformation"),
        ('"a string"', "cannot read a gufe Transformation"),
    ],
)
def test_bad_payload_is_refused_naming_where(payload: str, expected: str) -> None:
    with pytest.raises(TaskRefused, match=expected) as err:
        GufeKind().claim(payload, "transformation.json")
    assert str(err.value).startswith("transformation.json: ")


def test_a_gufe_object_that_is_not_a_transformation_is_refused(ligands: Any) -> None:
    with pytest.raises(TaskRefused, match="holds a SmallMoleculeComponent"):
        GufeKind().claim(ligands[0].to_json(), "x.json")


def test_work_sampling_off_the_legs_is_refused(ligands: Any) -> None:
    t = transformation(ligands, "feflow")
    settings = t.protocol.settings.unfrozen_copy()
    settings.traj_save_frequency = 300  # each assignment is validated: keep them consistent
    settings.work_save_frequency = 30
    bad = gufe.Transformation(t.stateA, t.stateB, type(t.protocol)(settings), mapping=t.mapping)
    with pytest.raises(TaskRefused, match="work_save_frequency=30 must divide"):
        GufeKind().claim(bad.to_json(), "x")


def test_dag_round_trip_keeps_unit_keys_in_a_fresh_process(ligands: Any, tmp_path: Path) -> None:
    """In-process, gufe's registry would hand back the same objects: read it elsewhere."""
    claimed = GufeKind().claim(transformation(ligands, "fah").to_json(), "x")
    (tmp_path / "dag.json").write_text(claimed.dag or "")
    code = (
        "import json, sys; from gufe.protocols.protocoldag import ProtocolDAG\n"
        "dag = ProtocolDAG.from_json(sys.argv[1])\n"
        "print(json.dumps({u.name: str(u.key) for u in dag.protocol_units}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "dag.json")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(out.splitlines()[-1]) == unit_keys(claimed.dag or "")


# --- build -------------------------------------------------------------------------------------


def test_build_writes_the_wu_files_and_core_xml(built: Built) -> None:
    m = built.manifest
    assert m.setup_failure is None and m.kind == "gufe" and m.transformation_id == "T1"
    for name in WU_FILES:
        assert (built.out / name).stat().st_size > 0
    assert m.files == {name: name for name in WU_FILES}
    assert m.n_atoms > 700 and m.nonbonded_method == "PME" and m.temperature_K == 300.0
    assert m.num_steps == 2 * EQ + 2 * NEQ
    core = CoreXml.from_xml(built.out / "core.xml")  # as the emulated core reads it
    assert core.numSteps == m.num_steps
    extra = m.model_extra or {}
    assert extra["setup_seconds"] > 0 and extra["setup_unit_key"].startswith("SetupUnit-")
    assert (built.out / "units" / "setup_result.json").is_file()
    if built.kind == "fah":  # its fah_settings, exactly as alchemiscale-fah writes them
        from alchemiscale_fah.protocols.feflow.nonequilibrium_cycling import (
            FahNonEquilibriumCyclingSimulationUnit as Unit,
        )

        protocol = gufe.Transformation.from_json(content=built.payload).protocol
        expected = Unit.generate_core_settings_file(protocol.settings)
        assert (built.out / "core.xml").read_text().strip() == expected
        assert (core.globalVarFreq, core.precision, core.minimize) == (25, "single", True)
    else:  # the config's gufe: block, sampling the work as feflow's own cycle unit does
        assert (core.globalVarFreq, core.precision, core.minimize) == (50, "mixed", False)
        assert core.xtcFreq == 0


def test_build_again_reuses_the_setup(built: Built) -> None:
    again = GufeKind().build(
        built.payload, "T1", built.out, config=SimpleNamespace(gufe=GufeSettings())
    )
    assert again.model_extra == built.manifest.model_extra  # same setup unit and result keys


def test_config_core_settings_reach_core_xml(ligands: Any, tmp_path: Path) -> None:
    """A globalVarFreq from the config that cannot fit the legs stops build before the setup."""
    from fahflow.errors import ConfigError
    from fahflow.kinds.gufe import core_xml

    protocol = transformation(ligands, "feflow").protocol
    settings = GufeSettings.model_validate(
        {"core": {"precision": "double", "globalVarFreq": 20, "checkpointFreq": 100},
         "global_var_freq_from_protocol": False}
    )  # fmt: skip
    text, steps = core_xml(protocol, settings)
    fields = {el.tag: el.text for el in ET.fromstring(text)}
    assert (fields["precision"], fields["globalVarFreq"], fields["checkpointFreq"]) == (
        "double", "20", "100",
    )  # fmt: skip
    assert fields["numSteps"] == str(steps) == "400"
    off = GufeSettings.model_validate(
        {"core": {"globalVarFreq": 30}, "global_var_freq_from_protocol": False}
    )
    with pytest.raises(ConfigError, match=r"config gufe\.core: .*globalVarFreq=30 must divide"):
        GufeKind().build(
            transformation(ligands, "feflow").to_json(),
            "T9",
            tmp_path,
            config=SimpleNamespace(gufe=off),
        )
    assert not (tmp_path / "units").exists()


# --- finish ------------------------------------------------------------------------------------


def test_finish_gives_an_ok_pdr_that_gathers(
    built: Built, returned: dict[int, Path], tmp_path: Path
) -> None:
    outcome = finish(built, tmp_path / "task", returned)
    assert outcome.ok, outcome.failure
    assert outcome.protocol.endswith("NonEquilibriumCyclingProtocol")
    assert outcome.Delta_f_kcal_per_mol is not None and outcome.sigma_kcal_per_mol is not None
    stored = Path(outcome.protocol_dag_result)
    assert stored == tmp_path / "task" / "protocol_dag_result.json"
    pdr = ProtocolDAGResult.from_json(content=stored.read_text())
    assert pdr.ok()
    # the Task's own DAG, reloaded, not re-created: the same unit keys as claim stored
    assert {u.name: str(u.key) for u in pdr.protocol_units} == unit_keys(built.claimed.dag or "")
    by_name = {r.name: r for r in pdr.protocol_unit_results}
    setup = by_name["setup"]
    assert str(setup.source_key) == unit_keys(built.claimed.dag or "")["setup"]
    reused = setup.outputs["fahflow_reused_from"]
    assert reused["setup_unit_key"] == built.manifest.model_extra["setup_unit_key"]
    for idx in range(2):
        cycle = by_name[f"cycle_{idx}"]
        assert set(cycle.outputs) == {"forward_work", "reverse_work", "log"}
        assert (
            Path(cycle.outputs["log"])
            .read_text()
            .startswith(returned[idx].with_name("science.log").read_text()[:20])
        )
    from fahflow.analysis.globals import parse_globals

    w_F = [parse_globals(returned[i]).cycles[0].w_F for i in range(2)]
    assert [w[-1] - w[0] for w in by_name["result"].outputs["forward_work"]] == pytest.approx(w_F)
    protocol = gufe.Transformation.from_json(content=built.payload).protocol
    estimate = protocol.gather([pdr]).get_estimate().m_as("kilocalorie / mole")
    assert estimate == pytest.approx(outcome.Delta_f_kcal_per_mol)
    pooled = GufeKind().gather(built.payload, [stored, stored])  # what `fahflow results` shows
    assert pooled is not None and pooled[0] == pytest.approx(estimate)
    print(f"{built.kind}: ΔG = {estimate:.2f} ± {outcome.sigma_kcal_per_mol:.2f} kcal/mol")


def test_unusable_globals_gives_a_failure_with_the_parser_reason(
    built: Built, returned: dict[int, Path], tmp_path: Path
) -> None:
    cut = tmp_path / "PROJ1/RUN0/CLONE1/results0/globals.csv"
    cut.parent.mkdir(parents=True)
    cut.write_text("".join(returned[1].read_text().splitlines(keepends=True)[:4]))
    outcome = finish(built, tmp_path / "task", {0: returned[0], 1: cut})
    assert not outcome.ok
    assert f"WU 1 (cycle_1): {cut}: truncated: cycle 0: file ends at step" in (
        outcome.failure or ""
    )


def test_missing_globals_gives_a_failed_pdr(
    built: Built, returned: dict[int, Path], tmp_path: Path
) -> None:
    outcome = finish(built, tmp_path / "task", {1: returned[1]})
    assert not outcome.ok and outcome.Delta_f_kcal_per_mol is None
    assert "WU 0 (cycle_0): no globals.csv was collected" in (outcome.failure or "")
    assert "not run after the failure: result" in (outcome.failure or "")
    pdr = ProtocolDAGResult.from_json(content=Path(outcome.protocol_dag_result).read_text())
    assert not pdr.ok()
    assert [f.name for f in pdr.protocol_unit_failures] == ["cycle_0"]
    ran = {r.name for r in pdr.protocol_unit_results}
    assert ran == {"setup", "cycle_0", "cycle_1"}  # the WU that came back keeps its result


def test_setup_failure_is_recorded_and_fails_the_pdr(ligands: Any, tmp_path: Path) -> None:
    """DESIGN's box trap: 0.2 nm of padding leaves a box under twice the 0.9 nm cutoff."""
    payload = transformation(ligands, "feflow", padding_nm=0.2).to_json()
    claimed = GufeKind().claim(payload, "x")
    out = tmp_path / "T2"
    manifest = GufeKind().build(payload, "T2", out, config=SimpleNamespace(gufe=GufeSettings()))
    assert manifest.setup_failure and "cutoff distance cannot be greater" in manifest.setup_failure
    assert "Traceback (most recent call last)" in manifest.setup_failure
    for name in WU_FILES:  # declared outputs stay declared: empty placeholders
        assert (out / name).is_file() and (out / name).stat().st_size == 0
    outcome = GufeKind().finish(
        payload=payload, dag=claimed.dag, transformation_dir=out, task_dir=tmp_path / "task",
        globals_by_wu={},
    )  # fmt: skip
    assert not outcome.ok and "Traceback (most recent call last)" in (outcome.failure or "")
    assert "not run after the failure: " in (outcome.failure or "")
    pdr = ProtocolDAGResult.from_json(content=Path(outcome.protocol_dag_result).read_text())
    (failure,) = pdr.protocol_unit_failures
    assert (
        failure.name == "setup" and str(failure.source_key) == unit_keys(claimed.dag or "")["setup"]
    )
    assert "cutoff distance" in failure.traceback
