"""core.xml: rendered from typed settings, booleans 0/1, numSteps and globalVarFreq checked."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from pydantic import ValidationError

from fahflow.corexml import CoreSettings, check_schedule, num_steps, render_core_xml
from fahflow.errors import ConfigError


def _parse(text: str) -> dict[str, str]:
    root = ET.fromstring(text)
    assert root.tag == "config"
    return {child.tag: child.text or "" for child in root}


def test_num_steps_is_cycles_times_two_eq_plus_two_neq() -> None:
    assert num_steps(3, 250, 500) == 3 * (2 * 250 + 2 * 500)


def test_render_uses_core_spelling_and_0_1_booleans() -> None:
    settings = CoreSettings(globalVarFreq=50, disableViewer=True, precision="double")
    fields = _parse(render_core_xml(settings, cycles=2, eq_steps=100, neq_steps=200))
    assert fields["numSteps"] == "1200"
    assert next(iter(fields)) == "numSteps"
    assert fields["globalVarFreq"] == "50"
    assert fields["globalVarFilename"] == "globals.csv"
    assert fields["disableViewer"] == "1"
    assert fields["DisablePmeStream"] == "1"
    assert fields["disableCheckpointStateTests"] == "0"
    assert fields["minimize"] == "0"
    assert fields["precision"] == "double"
    assert fields["checkpointFreq"] == "-5"
    assert "xtcAtoms" not in fields  # unset optional settings keep the core's default
    assert not any(value in ("True", "False") for value in fields.values())


def test_render_escapes_text() -> None:
    settings = CoreSettings(xtcFreq=100, xtcAtoms="a<b&c")
    fields = _parse(render_core_xml(settings, cycles=1, eq_steps=1000, neq_steps=1000))
    assert fields["xtcAtoms"] == "a<b&c"


def test_global_var_freq_must_divide_both_legs() -> None:
    settings = CoreSettings(globalVarFreq=300)
    with pytest.raises(ConfigError, match="globalVarFreq=300 must divide eq_steps=1000"):
        render_core_xml(settings, cycles=1, eq_steps=1000, neq_steps=900)
    with pytest.raises(ConfigError, match="globalVarFreq=300 must divide neq_steps=1000"):
        render_core_xml(settings, cycles=1, eq_steps=900, neq_steps=1000)


def test_num_steps_mismatch_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"numSteps=999 must equal .* = 1200"):
        check_schedule(
            CoreSettings(globalVarFreq=50), cycles=2, eq_steps=100, neq_steps=200, n_steps=999
        )


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="globalVarFreq"):
        CoreSettings(globalVarFreq=0)
    with pytest.raises(ValidationError, match="precision"):
        CoreSettings(precision="half")
    with pytest.raises(ValidationError, match="globalVarFilename"):
        CoreSettings(globalVarFilename="../../etc/passwd")
    with pytest.raises(ValidationError, match="xtcAtoms is set but xtcFreq is 0"):
        CoreSettings(xtcAtoms="solute")
    with pytest.raises(ValidationError, match="numSteps"):
        CoreSettings(numSteps=10)  # derived from the protocol, never set by hand


def test_only_globals_csv_is_accepted_as_the_globals_file() -> None:
    """collect copies globals.csv and the analysis reads it: another name would never be read."""
    with pytest.raises(ValidationError, match="globalVarFilename"):
        CoreSettings(globalVarFilename="works.csv")
