"""The workflow config: defaults, clear errors naming file/key/value, and a schema in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fahflow.config import EstimateSettings, SimulatorFaultSettings, json_schema, load_config
from fahflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_shipped_configs_load() -> None:
    for path in [REPO / "config" / "config.yaml", *REPO.glob(".test/*/config.yaml")]:
        config = load_config(path)
        assert config.ws.url.startswith("https://")
    assert load_config(REPO / "config" / "config.yaml").ws.create_form == "clone"


def test_schema_file_is_generated_from_the_model() -> None:
    shipped = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert shipped == json_schema(), "run: fahflow config-schema > workflow/schemas/..."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["ws"].update(url="http://ws"), r"ws\.url: .*HTTPS only.*'http://ws'"),
        (lambda c: c["ws"].update(timeout_s=[5]), r"ws\.timeout_s"),
        (lambda c: c["ws"].update(create_form="post"), r"ws\.create_form: .*'post'"),
        (lambda c: c["ws"].pop("data_dir"), r"ws: .*data_dir is required"),
        (lambda c: c["projects"][0].update(timeout=30), r"projects\.0\.timeout: .*300.*30"),
        (lambda c: c["projects"][0].update(nonbonded_method="PPPM"), r"nonbonded_method.*PPPM"),
        (lambda c: c.update(projects=[]), r"projects: .*at least 1"),
        (lambda c: c["tasks"].update(claim_max=-1), r"tasks\.claim_max"),
        (lambda c: c.update(typo_key=1), r"typo_key: Extra inputs are not permitted"),
    ],
)
def test_bad_values_name_file_key_and_value(tmp_path: Path, change, message: str) -> None:
    config = _base()
    change(config)
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["false", "no", "off", "Off", "0", "'0'", "'off'", "null", "''"])
def test_tls_verification_cannot_be_switched_off(tmp_path: Path, text: str) -> None:
    """Issue 8 item 2: every spelling of "off" is refused, naming the key and what to set."""
    path = tmp_path / "config.yaml"
    lines = (REPO / "config" / "config.yaml").read_text().splitlines()
    lines = [f"  ca: {text}" if line.startswith("  ca:") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"ws\.ca: .*cannot be turned off.*CA bundle") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_tls_verification_accepts_a_bundle_or_the_system_cas(tmp_path: Path) -> None:
    config = _base()
    config["ws"]["ca"] = True
    assert load_config(_write(tmp_path, config)).ws.ca is True
    config["ws"]["ca"] = "run/sim/ca/ca.pem"
    assert load_config(_write(tmp_path, config)).ws.ca == Path("run/sim/ca/ca.pem")


def test_schema_admits_no_false_for_ca() -> None:
    ca = json_schema()["$defs"]["WorkServerSettings"]["properties"]["ca"]
    booleans = [branch for branch in ca["anyOf"] if branch.get("type") == "boolean"]
    assert booleans == [{"const": True, "type": "boolean"}]


def test_not_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("ws:\n  url: https://x\n  send: [a,\nprojects: {\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line ")
    assert "column" in message and "not valid YAML" in message
    assert "\n" not in message and "<unicode string>" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- ws\n- projects\n", "expected a mapping of settings .* got a list"),
        ("just words\n", "expected a mapping of settings .* got a str"),
    ],
)
def test_empty_or_non_mapping_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


# --- the simulator: block (read by the demo only) ---------------------------------------------


def test_simulator_fault_settings_mirror_the_simulators_own() -> None:
    """The config cannot import the simulator (every batch command reads it), so its fault
    model repeats FaultConfig's fields: same names, types, bounds and defaults."""
    from fahflow.sim.config import FaultConfig

    ours = SimulatorFaultSettings.model_json_schema()["properties"]
    assert ours == FaultConfig.model_json_schema()["properties"]


def test_simulator_block_is_checked_where_the_config_is_read(tmp_path: Path) -> None:
    settings = load_config(REPO / ".test" / "config_faults" / "config.yaml").simulator
    assert settings is not None
    assert (settings.volunteers, settings.seed, settings.clock_scale) == (2, 1, 10)
    assert settings.faults.vanish_rate == 0.2 and settings.faults.drop_after_rate == 0.0
    data = _base()
    data["simulator"]["faults"] = {"vanish_rate": 2}
    with pytest.raises(ConfigError, match=r"simulator\.faults\.vanish_rate: .*less than or equal"):
        load_config(_write(tmp_path, data))
    data["simulator"] = {"volunteers": 2, "port": 18443}  # the port is ws.url's
    with pytest.raises(ConfigError, match=r"config.yaml: simulator\.port: Extra inputs"):
        load_config(_write(tmp_path, data))


def test_the_two_analysis_settings_have_different_names() -> None:
    from fahflow.analysis import report

    assert type(load_config(REPO / "config" / "config.yaml").analysis) is EstimateSettings
    assert EstimateSettings.__name__ != report.AnalysisSettings.__name__
