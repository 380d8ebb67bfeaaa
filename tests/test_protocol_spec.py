"""The transformation spec: bundled examples load, and every mistake names file, field and value."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from fahflow.errors import ConfigError
from fahflow.protocol.spec import (
    HarmonicSource,
    TransformationSpec,
    XmlSource,
    example_path,
    load_spec,
    parse_spec,
)


def _harmonic() -> dict[str, Any]:
    return yaml.safe_load(example_path("harmonic").read_text())


def _write(tmp_path: Path, data: Any, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_bundled_examples_load() -> None:
    harmonic = load_spec(example_path("harmonic"))
    water = load_spec(example_path("water"))
    assert isinstance(harmonic.source, HarmonicSource)
    assert harmonic.exact_delta_f_kT() == pytest.approx(4 * 1.5 * math.log(4.0))
    assert harmonic.num_steps == harmonic.cycles_per_wu * 2 * (
        harmonic.eq_steps + harmonic.neq_steps
    )
    assert harmonic.num_steps <= 5000, "the workflow's e2e tests run several of these"
    assert water.source.kind == "testsystem"
    assert water.alchemical is not None and water.alchemical.atoms == [0, 1, 2]
    assert water.exact_delta_f_kT() is None
    assert water.tasks >= 1 and water.wus_per_task >= 1


def test_unknown_example_lists_known() -> None:
    with pytest.raises(ConfigError, match="harmonic"):
        example_path("nope")


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        (lambda d: d.pop("temperature_K"), "temperature_K", "Field required"),
        (lambda d: d.update(temperature_K=-3), "temperature_K", "-3"),
        (lambda d: d.update(timestep_fs="fast"), "timestep_fs", "'fast'"),
        (lambda d: d.update(cycles_per_wu=0), "cycles_per_wu", "0"),
        (lambda d: d.update(name="../evil"), "name", "'../evil'"),
        (lambda d: d.update(typo_field=1), "typo_field", "1"),
        (
            lambda d: d["source"].update(k0_kJ_per_mol_per_nm2=0),
            "source.k0_kJ_per_mol_per_nm2",
            "0",
        ),
        (lambda d: d["source"].update(kind="martian"), "source", "martian"),
        (lambda d: d["core"].update(precision="quad"), "core.precision", "'quad'"),
        (lambda d: d["core"].update(globalVarFreq=0), "core.globalVarFreq", "0"),
        (
            lambda d: d.update(lambda_functions={"lambda_harmonic": "import os"}),
            "lambda_functions",
            "import os",
        ),
        (lambda d: d.update(lambda_functions={"lambda": "lambda"}), "lambda_functions", "lambda"),
    ],
)
def test_field_errors_name_file_field_and_value(
    tmp_path: Path, change: Any, field: str, value: str
) -> None:
    data = _harmonic()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert value in message


def test_global_var_freq_must_divide_legs(tmp_path: Path) -> None:
    data = _harmonic()
    data["core"]["globalVarFreq"] = 300  # eq_steps is 250
    with pytest.raises(ConfigError, match=r"globalVarFreq=300 must divide eq_steps=250"):
        load_spec(_write(tmp_path, data))


def test_core_settings_accept_snake_case_too(tmp_path: Path) -> None:
    data = _harmonic()
    data["core"] = {"global_var_freq": 25, "disable_viewer": True}
    spec = load_spec(_write(tmp_path, data))
    assert spec.core.global_var_freq == 25 and spec.core.disable_viewer is True


def test_harmonic_and_alchemical_do_not_mix(tmp_path: Path) -> None:
    data = _harmonic()
    data["alchemical"] = {"atoms": [0]}
    with pytest.raises(ConfigError, match="'alchemical' does not apply"):
        load_spec(_write(tmp_path, data))
    data = _harmonic()
    data["lambda_functions"] = {"lambda_sterics": "lambda"}
    with pytest.raises(ConfigError, match="must drive exactly 'lambda_harmonic'"):
        load_spec(_write(tmp_path, data))


def test_alchemical_sources_need_a_region_with_valid_atoms(tmp_path: Path) -> None:
    data = yaml.safe_load(example_path("water").read_text())
    del data["alchemical"]
    with pytest.raises(ConfigError, match="'alchemical' is required"):
        load_spec(_write(tmp_path, data))
    data = yaml.safe_load(example_path("water").read_text())
    data["alchemical"]["atoms"] = [0, 0, 1]
    with pytest.raises(ConfigError, match=r"alchemical\.atoms: .*unique"):
        load_spec(_write(tmp_path, data))
    data["alchemical"]["atoms"] = [-1]
    with pytest.raises(ConfigError, match=r"alchemical\.atoms: .*>= 0"):
        load_spec(_write(tmp_path, data))


def test_unknown_testsystem_is_named(tmp_path: Path) -> None:
    data = yaml.safe_load(example_path("water").read_text())
    data["source"]["name"] = "NoSuchBox"
    with pytest.raises(ConfigError, match=r"source\.name: 'NoSuchBox' is not an openmmtools"):
        load_spec(_write(tmp_path, data))


def test_xml_source_paths_resolve_from_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "system.xml").write_text("<System/>")
    (tmp_path / "in" / "state.xml").write_text("<State/>")
    data = _water_xml_spec()
    spec = load_spec(_write(tmp_path, data))
    assert isinstance(spec.source, XmlSource)
    assert spec.source.system == tmp_path / "in" / "system.xml"
    data["source"]["state"] = "in/missing.xml"
    with pytest.raises(ConfigError, match=r"source\.state: file not found: .*missing\.xml"):
        load_spec(_write(tmp_path, data))
    data["source"]["pdb"] = "in/x.pdb"
    with pytest.raises(ConfigError, match="exactly one of 'state'"):
        load_spec(_write(tmp_path, data))


def _water_xml_spec() -> dict[str, Any]:
    data = yaml.safe_load(example_path("water").read_text())
    data["source"] = {"kind": "xml", "system": "in/system.xml", "state": "in/state.xml"}
    return data


def test_unreadable_or_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read spec"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(ConfigError, match="must be a YAML mapping, got list"):
        load_spec(_write(tmp_path, "- 1\n- 2\n"))


def test_parse_spec_round_trips_through_model_dump() -> None:
    spec = load_spec(example_path("harmonic"))
    again = parse_spec(spec.model_dump(mode="json", by_alias=True))
    assert again == spec
    assert isinstance(again, TransformationSpec)
