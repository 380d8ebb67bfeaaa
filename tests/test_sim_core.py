"""``run_core``: the FAH OpenMM core emulation on a tiny real WU."""

from __future__ import annotations

import bz2
import io
from pathlib import Path

import openmm
import pandas as pd
import pytest

from fahflow.errors import ConfigError
from fahflow.sim.core import CoreXml, FaultyWorkUnit, run_core
from fahflow.sim.tinywu import core_xml, make_tiny_wu

REAL_CORE_GLOBALS = Path(__file__).parent / "data" / "globals-real-core.csv"


def test_globals_layout_rows_and_outputs(tiny_wu: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    settings = CoreXml.from_xml(tiny_wu / "core.xml")
    run_core(tiny_wu, out, threads=1)
    table = pd.read_csv(out / "globals.csv")
    integrator = openmm.XmlSerializer.deserialize(
        bz2.decompress((tiny_wu / "integrator.xml.bz2").read_bytes()).decode()
    )
    names = [integrator.getGlobalVariableName(i) for i in range(integrator.getNumGlobalVariables())]
    assert list(table.columns) == ["Step", "Time", "lambda_restraint", *sorted(names)]
    assert list(table["Step"]) == list(range(0, settings.numSteps + 1, settings.globalVarFreq))
    assert table["Time"].iloc[-1] == pytest.approx(settings.numSteps * 0.002)  # ps, 2 fs steps
    assert table["lambda"].iloc[-1] == pytest.approx(1.0)
    assert table["protocol_work"].iloc[0] == 0 and table["protocol_work"].iloc[-1] != 0
    assert f"completed {settings.numSteps} steps" in (out / "science.log").read_text()
    final = openmm.XmlSerializer.deserialize(
        bz2.decompress((out / "checkpointState.xml.bz2").read_bytes()).decode()
    )
    assert final.getTime().value_in_unit(openmm.unit.picosecond) == pytest.approx(2.0)


def test_real_core_file_has_the_layout_we_write() -> None:
    """The column rule we implement, checked against a globals.csv from the real core."""
    header = REAL_CORE_GLOBALS.read_text().splitlines()[0].split(",")
    assert header[:2] == ["Step", "Time"]
    params = header[2 : header.index("softcore_alpha") + 1]
    integrator_globals = header[len(params) + 2 :]
    assert params == sorted(params) and integrator_globals == sorted(integrator_globals)
    steps = pd.read_csv(REAL_CORE_GLOBALS)["Step"]
    assert steps.iloc[0] == 0 and steps.iloc[-1] == 1_000_000 and len(steps) == 41


def test_last_step_row_even_off_the_grid(tmp_path: Path) -> None:
    wu = make_tiny_wu(tmp_path / "wu", num_steps=250, global_var_freq=100, compress=False)
    run_core(wu, tmp_path / "out")
    assert list(pd.read_csv(tmp_path / "out" / "globals.csv")["Step"]) == [0, 100, 200, 250]


def test_duplicate_rows_after_pause_resume(tiny_wu: Path, tmp_path: Path) -> None:
    run_core(tiny_wu, tmp_path / "out", duplicate_rows=True)
    lines = (tmp_path / "out" / "globals.csv").read_text().splitlines()
    assert lines.count(lines[0]) == 2
    steps = [int(line.split(",")[0]) for line in lines if line != lines[0]]
    assert (
        len(steps) > len(set(steps))
        and steps[-1] == CoreXml.from_xml(tiny_wu / "core.xml").numSteps
    )
    clean = pd.read_csv(io.StringIO("\n".join(lines)))  # what a naive reader gets
    assert (clean["Step"] == "Step").sum() == 1


def test_nan_is_a_faulty_work_unit(tmp_path: Path) -> None:
    wu = make_tiny_wu(tmp_path / "wu", num_steps=200, global_var_freq=50, timestep_fs=500)
    with pytest.raises(FaultyWorkUnit):
        run_core(wu, tmp_path / "out")
    assert "ERROR" in (tmp_path / "out" / "science.log").read_text()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<config><xtcFreq>5</xtcFreq></config>", "numSteps is required"),
        ("<config><numSteps>ten</numSteps></config>", "numSteps: bad int 'ten'"),
        ("<config><numSteps>10</numSteps><minimize>yes</minimize></config>", "minimize"),
        ("<config><numSteps>10</numSteps><precision>half</precision></config>", "'half'"),
        ("<config><numSteps>10", "cannot read core.xml"),
    ],
)
def test_bad_core_xml_names_field(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "core.xml").write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        CoreXml.from_xml(tmp_path / "core.xml")
    assert "core.xml" in str(info.value)


def test_core_xml_defaults_and_checkpoint_percent(tmp_path: Path) -> None:
    (tmp_path / "core.xml").write_text(core_xml(1000, 100, checkpoint_freq=-5))
    settings = CoreXml.from_xml(tmp_path / "core.xml")
    assert settings.checkpoint_interval == 50 and settings.globalVarFilename == "globals.csv"


def test_missing_wu_file_and_platform(tiny_wu: Path, tmp_path: Path) -> None:
    (tiny_wu / "state.xml.bz2").unlink()
    with pytest.raises(ConfigError, match=r"state\.xml"):
        run_core(tiny_wu, tmp_path / "out")
    make_tiny_wu(tiny_wu, num_steps=10, global_var_freq=5)
    with pytest.raises(ConfigError, match="platform 'NoSuchGPU'"):
        run_core(tiny_wu, tmp_path / "out", platform="NoSuchGPU")


def test_reads_what_the_protocol_writes(tmp_path: Path) -> None:
    """The WU writer (fahflow.protocol) and the core emulation agree on core.xml."""
    from fahflow.corexml import CoreSettings, render_core_xml

    written = CoreSettings(globalVarFreq=250, checkpointFreq=-10, precision="double", minimize=True)
    (tmp_path / "core.xml").write_text(
        render_core_xml(written, cycles=2, eq_steps=500, neq_steps=1000)
    )
    read = CoreXml.from_xml(tmp_path / "core.xml")
    assert (read.numSteps, read.globalVarFreq, read.checkpointFreq) == (6000, 250, -10)
    assert (read.precision, read.minimize, read.globalVarFilename) == (
        "double",
        True,
        "globals.csv",
    )
    assert read.minimizeMaxIterations == written.minimize_max_iterations
