"""What Snakemake knows of the workflow: the config file the rules pass on, the products each
rule declares (so `--summary`, `--delete-all-output` and `--report` see them), and the `.test/`
configs, which must build a DAG (and, in the slow suite, run a whole campaign).

No simulator here: claim reads the local queue, poll has nothing in flight, and serialize
builds the harmonic example's WU files with OpenMM in a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fahflow.config import load_config
from fahflow.ledger import Ledger
from fahflow.protocol.build import FILE_NAMES
from fahflow.protocol.spec import example_path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TEST_CONFIGS = sorted((REPO / ".test").glob("config_*/config.yaml"))


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def snakemake(wd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`snakemake` on the repository's Snakefile, in ``wd``; stdout and stderr together."""
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-c1", *args],
        cwd=wd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=300,
    )  # fmt: skip


def fahflow(wd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "fahflow", *args], cwd=wd, env=_env(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def test_test_configs_exist() -> None:
    assert {p.parent.name for p in TEST_CONFIGS} == {"config_sim", "config_faults"}


# --- which config file the commands read ---------------------------------------------------


def shell_commands(output: str) -> list[str]:
    return [line for line in output.splitlines() if "fahflow batch" in line]


def test_commands_read_the_configfile_given_on_the_command_line(tmp_path: Path) -> None:
    """Snakemake appends the Snakefile's `configfile:` after the command line's: the rules once
    passed config/config.yaml on to every command even under --configfile."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config/config.yaml").read_text())
    given = REPO / ".test" / "config_sim" / "config.yaml"
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(given))
    assert result.returncode == 0, result.stdout[-3000:]
    (claim,) = [c for c in shell_commands(result.stdout) if "batch claim" in c]
    assert f"--config {given} " in claim


def test_profile_alone_reads_config_config_yaml(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config/config.yaml").read_text())
    result = snakemake(tmp_path, "-n", "-p", "--profile", str(REPO / "fah"))
    assert result.returncode == 0, result.stdout[-3000:]
    commands = shell_commands(result.stdout)
    assert commands and all(f"--config {tmp_path}/config/config.yaml " in c for c in commands)


@pytest.mark.parametrize("how", ["partial file", "--config override"])
def test_settings_the_commands_would_not_see_are_refused(tmp_path: Path, how: str) -> None:
    """The merged view Snakemake validates must be the one file the commands read."""
    (tmp_path / "config").mkdir()
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())
    default["batch"]["max_restarts"] = 5
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(default))
    mine = yaml.safe_load((REPO / ".test/config_sim/config.yaml").read_text())
    extra: list[str] = []
    if how == "partial file":
        del mine["batch"]["max_restarts"]  # filled in from config/config.yaml by Snakemake
        key = "batch.max_restarts"
    else:
        mine["batch"]["max_restarts"] = 5
        extra = ["--config", "analysis={'seed': 3}"]
        key = "analysis.seed"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine))
    result = snakemake(tmp_path, "-n", "--configfile", str(path), *extra)
    assert result.returncode != 0
    assert f"commands read only {path}, but this run's settings differ from it at {key}:" in (
        result.stdout
    )


# --- the .test configs ---------------------------------------------------------------------


@pytest.mark.parametrize("config", TEST_CONFIGS, ids=lambda p: p.parent.name)
def test_test_config_builds_a_dag_on_an_empty_ledger(tmp_path: Path, config: Path) -> None:
    load_config(config)  # a complete, valid config
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "checkpoint claim:" in result.stdout
    assert all(f"--config {config} " in c for c in shell_commands(result.stdout))
    lint = snakemake(tmp_path, "--lint", "--configfile", str(config))
    assert lint.returncode == 0, lint.stdout[-3000:]


def _demo_dir(tmp_path: Path) -> Path:
    """A working directory that looks like the repository (the demo runs `snakemake --profile
    fah` in its working directory) without writing into it."""
    for name in ("Snakefile", "workflow", "fah", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / ".test").mkdir()
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("config", TEST_CONFIGS, ids=lambda p: p.parent.name)
def test_test_config_runs_the_harmonic_campaign(tmp_path: Path, config: Path) -> None:
    wd = _demo_dir(tmp_path)
    case = wd / ".test" / config.parent.name
    case.mkdir()
    (case / "config.yaml").write_text(config.read_text())
    rel = case.relative_to(wd) / "config.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "fahflow", "demo", "--config", str(rel), "--example", "harmonic"],
        cwd=wd, env=_env(), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert "harmonic: ΔF = " in result.stdout
    status = fahflow(wd, "status", "--all", "--config", str(rel)).stdout
    assert "4 Task(s): 4 done" in status


# --- declared products ---------------------------------------------------------------------


@pytest.fixture()
def claimed(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """One harmonic Task claimed into the ledger, this batch's claim and poll records written:
    (working directory, config, Task id, Transformation id)."""
    config = REPO / ".test" / "config_sim" / "config.yaml"
    harmonic = str(example_path("harmonic"))
    fahflow(tmp_path, "submit", harmonic, "--tasks", "1", "--config", str(config))
    ledger_path = load_config(config).ledger.path
    for step in ("claim", "poll"):
        out = ledger_path.parent / "batch" / f"{step}.json"
        fahflow(tmp_path, "batch", step, "--config", str(config), "--out", str(out))
    with Ledger(tmp_path / ledger_path) as ledger:
        (task,) = ledger.tasks()
    return tmp_path, config, task.task_id, task.transformation_id


def rule_block(output: str, rule: str) -> str:
    """The dry run's lines about ``rule``'s job (each job's start with a ``[date]`` line)."""
    start = output.index(f"rule {rule}:\n")
    lines = output[start:].splitlines()[1:]
    block = [f"rule {rule}:"]
    for line in lines:
        if not line.startswith("    "):
            break
        block.append(line)
    return "\n".join(block)


def transformation_files(tf: str) -> list[str]:
    folder = f".test/config_sim/results/transformations/{tf}"
    names = ("manifest.json", "transformation.json", "units", *FILE_NAMES)
    return [f"{folder}/{name}" for name in names]


def test_dry_run_lists_what_serialize_and_collect_write(claimed) -> None:
    wd, config, task, tf = claimed
    target = f".test/config_sim/results/tasks/{task}/pushed.json"
    result = snakemake(wd, target, "-n", "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    serialize = rule_block(result.stdout, "serialize")
    for path in transformation_files(tf):
        assert path in serialize, (path, serialize)
    assert "input:" not in serialize  # the spec comes from the ledger, not from claim's files
    collect = rule_block(result.stdout, "collect")
    assert f".test/config_sim/results/tasks/{task}/globals" in collect.split("output:")[1]


def summary_files(wd: Path, config: Path) -> dict[str, str]:
    """`snakemake --summary`: each output file Snakemake knows, with the rule that makes it."""
    result = snakemake(wd, "--summary", "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    return {row[0]: row[2] for row in rows[1:]}


def test_summary_and_delete_all_output_see_every_file_serialize_writes(claimed) -> None:
    wd, config, _task, tf = claimed
    manifest = transformation_files(tf)[0]
    built = snakemake(wd, manifest, "--configfile", str(config))
    assert built.returncode == 0, built.stdout[-3000:]
    folder = wd / Path(manifest).parent
    on_disk = {p.relative_to(wd).as_posix() for p in folder.iterdir()}
    assert on_disk == set(transformation_files(tf))  # every product is declared
    known = summary_files(wd, config)
    assert {known[path] for path in on_disk} == {"serialize"}
    data_dir = load_config(config).ws.data_dir.as_posix()
    assert not [path for path in known if path.startswith(data_dir)]  # the WS's files: never
    deleting = snakemake(wd, "--delete-all-output", "--dry-run", "--configfile", str(config))
    assert deleting.returncode == 0, deleting.stdout[-3000:]
    for path in on_disk:
        assert path in deleting.stdout, (path, deleting.stdout[-3000:])
    assert all(p.exists() for p in folder.iterdir())  # a dry run: nothing deleted
