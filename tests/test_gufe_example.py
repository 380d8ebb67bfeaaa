"""The bundled gufe example (src/fahflow/examples/benzene_toluene_{feflow,fah}.json): the generator
reproduces the committed files, and they hold the Transformation and settings docs/gufe.md
describes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from fahflow.kinds import gufe_example

pytestmark = pytest.mark.gufe

EXAMPLES = resources.files("fahflow") / "examples"
EQ, NEQ = gufe_example.EQ_STEPS, gufe_example.NEQ_STEPS


def load(name: str):
    import gufe

    return gufe.Transformation.from_json(content=(EXAMPLES / name).read_text())


def test_the_generator_reproduces_the_committed_files(capsys: pytest.CaptureFixture) -> None:
    assert gufe_example.main(["--check"]) == 0, capsys.readouterr().err


def test_check_names_a_file_that_differs_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert gufe_example.main(["--out", str(tmp_path)]) == 0
    stale = tmp_path / gufe_example.FAH_JSON
    stale.write_text(stale.read_text().replace('"numSteps": 10000', '"numSteps": 9999'))
    assert gufe_example.main(["--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{stale} is not what python -m fahflow.kinds.gufe_example makes" in err
    assert gufe_example.FEFLOW_JSON not in err


def test_both_files_are_one_transformation_benzene_to_toluene_in_water() -> None:
    feflow, fah = load(gufe_example.FEFLOW_JSON), load(gufe_example.FAH_JSON)
    assert feflow.stateA.key == fah.stateA.key and feflow.stateB.key == fah.stateB.key
    assert feflow.mapping.key == fah.mapping.key
    assert feflow.stateA["ligand"].name == "benzene"
    assert feflow.stateB["ligand"].name == "toluene"
    assert feflow.stateA["solvent"].smiles == "O"
    # Kartograf maps the 6 ring carbons and 6 of benzene's hydrogens (one becomes the methyl)
    assert len(feflow.mapping.componentA_to_componentB) == 12


@pytest.mark.parametrize("name", [gufe_example.FEFLOW_JSON, gufe_example.FAH_JSON])
def test_the_settings_are_cut_down_for_two_cores_with_a_box_the_cutoff_fits(name: str) -> None:
    from openff.units import unit

    settings = load(name).protocol.settings
    assert settings.num_cycles == 4
    integrator = settings.integrator_settings
    assert (integrator.equilibrium_steps, integrator.nonequilibrium_steps) == (EQ, NEQ)
    assert settings.solvation_settings.box_shape == "cube"
    padding = settings.solvation_settings.solvent_padding.m_as(unit.nanometer)
    assert padding == pytest.approx(1.0)
    assert settings.forcefield_settings.nonbonded_method == "PME"
    # the box edge is at least twice the padding: the cutoff must fit in half of it
    assert settings.forcefield_settings.nonbonded_cutoff.m_as(unit.nanometer) < padding
    assert settings.engine_settings.compute_platform == "CPU"


def test_the_feflow_example_uses_feflows_protocol() -> None:
    from feflow.protocols import NonEquilibriumCyclingProtocol

    assert type(load(gufe_example.FEFLOW_JSON).protocol) is NonEquilibriumCyclingProtocol


def test_the_fah_example_core_settings_run_one_cycle_per_wu() -> None:
    from alchemiscale_fah.protocols.feflow import FahNonEquilibriumCyclingProtocol

    transformation = load(gufe_example.FAH_JSON)
    assert type(transformation.protocol) is FahNonEquilibriumCyclingProtocol
    core = transformation.protocol.settings.fah_settings
    assert core.numSteps == 2 * EQ + 2 * NEQ
    assert EQ % core.globalVarFreq == 0 and NEQ % core.globalVarFreq == 0
    assert core.precision == "mixed"
    assert core.minimize


@pytest.mark.parametrize("name", [gufe_example.FEFLOW_JSON, gufe_example.FAH_JSON])
def test_the_dag_is_a_setup_one_unit_per_cycle_and_a_result(name: str) -> None:
    dag = load(name).create()
    names = sorted(unit.name for unit in dag.protocol_units)
    assert names == ["cycle_0", "cycle_1", "cycle_2", "cycle_3", "result", "setup"]


def test_a_smaller_variant_for_tests_keeps_the_protocols_consistent() -> None:
    cycles = gufe_example.Cycles(num_cycles=2, eq_steps=500, neq_steps=500, work_freq=100)
    variants = gufe_example.transformations(cycles)
    fah = variants[gufe_example.FAH_JSON].protocol.settings
    assert fah.fah_settings.numSteps == 2000 and fah.fah_settings.globalVarFreq == 100
    dag = variants[gufe_example.FEFLOW_JSON].create()
    assert sorted(u.name for u in dag.protocol_units) == ["cycle_0", "cycle_1", "result", "setup"]


def test_a_work_frequency_that_misses_the_leg_ends_is_refused() -> None:
    with pytest.raises(ValueError, match="work_freq must divide eq_steps and neq_steps"):
        gufe_example.Cycles(work_freq=300)
