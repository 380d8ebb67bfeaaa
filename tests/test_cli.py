"""The `fahflow` entry point: every command reachable, lazily loaded, errors as exit codes."""

from __future__ import annotations

import importlib
import subprocess
import sys

from click.testing import CliRunner

from fahflow.cli import LAZY_COMMANDS, cli, main
from fahflow.cli import status as exit_status


def test_lazy_table_matches_every_modules_commands() -> None:
    modules = {target.split(":")[0] for target in LAZY_COMMANDS.values()}
    exported = {
        command.name: f"{module}:{command.callback.__name__}"
        for module in modules
        for command in importlib.import_module(module).COMMANDS
    }
    assert set(exported) == set(LAZY_COMMANDS)
    for name, target in LAZY_COMMANDS.items():
        assert cli.get_command(None, name).name == name, target


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in LAZY_COMMANDS:
        assert name in result.output


def test_batch_step_does_not_import_openmm_or_matplotlib() -> None:
    code = (
        "import sys; from fahflow.cli import cli; cli.get_command(None, 'batch'); "
        "print(sorted(m for m in ('openmm', 'matplotlib', 'fahflow.sim') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fahflow_error_exits_1_with_one_line(tmp_path, capsys) -> None:
    code = main(["status", "--config", str(tmp_path / "missing.yaml")])
    assert code == exit_status.ERROR
    err = capsys.readouterr().err
    assert "missing.yaml: file not found" in err
    assert "Traceback" not in err
    assert err.count("file not found") == 1
