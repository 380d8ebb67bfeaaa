"""Issue 8 item 7: every failure an operator can meet says where, and what to do, in one line.

Each case runs the real ``fahflow`` entry point in-process (the ``run`` fixture) or Snakemake in a
subprocess, and checks the exit code, that the message names the file or key, and that no
traceback reaches the operator.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fahflow.errors import StorageError

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, **changes: object) -> Path:
    """A complete config whose every path lies under ``tmp_path`` (no AS: claim stays local)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["ws"].pop("as_url", None)
    config["ws"]["ca"] = True
    config["ws"]["data_dir"] = str(tmp_path / "ws")
    config["tasks"]["local"]["path"] = str(tmp_path / "run" / "queue.sqlite")
    config["ledger"] = {"path": str(tmp_path / "run" / "ledger.sqlite")}
    config["batch"] = {"results_dir": str(tmp_path / "results")}
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        config[section][key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _one_clear_line(code: int, err: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("fahflow: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- the config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ws: [1,\n  projects: {\n", r", line \d+, column \d+: not valid YAML"),
        ("", "the file is empty"),
        ("- 1\n- 2\n", "expected a mapping of settings .* got a list"),
    ],
)
def test_config_that_is_not_a_mapping(run, tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    line = _one_clear_line(*run("status", "--config", path)[::2])
    assert str(path) in line
    assert re.search(expected, line), line


def _snakemake(tmp_path: Path, config: dict) -> subprocess.CompletedProcess[str]:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    snakemake = Path(sys.executable).with_name("snakemake")
    return subprocess.run(
        [str(snakemake), "-s", str(REPO / "Snakefile"), "-n", "-c1", "--configfile", str(bad)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
    )  # fmt: skip


def test_snakemake_schema_error_names_the_config_file_and_key(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["projects"][0]["timeout"] = 30
    result = _snakemake(tmp_path, config)
    assert result.returncode != 0
    assert f"{tmp_path / 'bad.yaml'} over config/config.yaml: projects.0.timeout" in result.stdout
    assert "got 30" in result.stdout


def test_snakemake_refuses_tls_verification_off(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["ws"]["ca"] = False
    result = _snakemake(tmp_path, config)
    assert result.returncode != 0
    assert "ws.ca: " in result.stdout and "cannot be turned off" in result.stdout


# --- databases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["ledger", "queue"])
def test_corrupt_database_is_named(run, tmp_path: Path, which: str) -> None:
    config = _config(tmp_path)
    path = tmp_path / "run" / f"{which}.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not SQLite at all\n" * 200)
    line = _one_clear_line(*run("status", "--config", config)[::2])
    assert f"database {path}: file is not a database" in line
    assert "restore it from a backup" in line


def test_ledger_path_that_is_a_directory(run, tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / "run" / "ledger.sqlite").mkdir(parents=True)
    line = _one_clear_line(
        *run("batch", "claim", "--config", config, "--out", tmp_path / "c.json")[::2]
    )
    assert f"database {tmp_path / 'run' / 'ledger.sqlite'} is a directory" in line
    assert "ledger.path" in line


def test_disk_io_error_of_the_database_names_it(tmp_path: Path) -> None:
    error = StorageError.from_sqlite_error(sqlite3.OperationalError("disk I/O error"), tmp_path)
    assert str(error).startswith(f"database {tmp_path}: disk I/O error: check free space")


def test_a_bare_sqlite_error_is_one_line(run, tmp_path: Path, monkeypatch) -> None:
    import fahflow.cli.render

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(fahflow.cli.render, "print_status", broken)
    line = _one_clear_line(*run("status", "--config", _config(tmp_path))[::2])
    assert "disk I/O error" in line and "ledger and queue files" in line


# --- full disk, read-only results ---------------------------------------------------------------


def _claim(run, tmp_path: Path) -> tuple[int, str, str]:
    return run(
        "batch",
        "claim",
        "--config",
        _config(tmp_path),
        "--out",
        tmp_path / "results" / "claim.json",
    )


def test_full_disk_names_the_file_being_written(run, tmp_path: Path, monkeypatch) -> None:
    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    code, _, err = _claim(run, tmp_path)
    line = _one_clear_line(code, err)
    target = tmp_path / "results" / "claim.json"
    assert f"cannot write {target}: no space left on device" in line
    assert f"df -h {target.parent}" in line
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_full_disk_while_writing_bytes(tmp_path: Path, monkeypatch) -> None:
    from fahflow import atomic

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(StorageError, match=r"cannot write .*x\.json: no space left") as info:
        atomic.write_text(tmp_path / "x.json", "{}")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_caller_errors_inside_an_atomic_write_are_left_alone(tmp_path: Path) -> None:
    from fahflow import atomic

    with pytest.raises(FileNotFoundError), atomic.atomic_open(tmp_path / "x.json") as handle:
        handle.write((tmp_path / "missing").read_bytes())


def test_permission_denied_names_the_results_folder(run, tmp_path: Path, monkeypatch) -> None:
    import tempfile

    def denied(*args: object, dir: object = None, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    line = _one_clear_line(*_claim(run, tmp_path)[::2])
    target = tmp_path / "results" / "claim.json"
    assert f"cannot write {target}: permission denied: make {target.parent} writable" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder(run, tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results").chmod(0o555)
    try:
        line = _one_clear_line(*_claim(run, tmp_path)[::2])
    finally:
        (tmp_path / "results").chmod(0o755)
    assert "permission denied" in line and str(tmp_path / "results") in line


# --- arguments ----------------------------------------------------------------------------------


def test_submit_zero_tasks_is_a_usage_error(run, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    code, _, err = run("submit", "--config", _config(tmp_path), spec, "--tasks", "0")
    assert code == 1 and "Traceback" not in err
    assert "--tasks" in err and "0 is not in the range x>=1" in err


# --- certificates -------------------------------------------------------------------------------


def test_expired_operator_certificate_is_named_before_any_call(run, sim, make_identity) -> None:
    ident = make_identity(sim, days=-1)
    code, _, err = run(
        "ws", "--url", sim.url, "--cert", ident.cert_path, "--key", ident.key_path,
        "--ca", ident.ca_path, "projects",
    )  # fmt: skip
    line = _one_clear_line(code, err)
    assert f"operator certificate {ident.cert_path} expired at " in line
    assert "fahflow cert create-csr" in line and "EOF" not in line


def test_expired_certificate_named_when_the_handshake_fails(sim, make_identity, monkeypatch):
    from fahflow.errors import CertificateError
    from fahflow.ws.client import WorkServerClient, _Client

    ident = make_identity(sim, days=-1)
    real = _Client._expired
    calls: list[int] = []

    def late(self: _Client) -> str | None:
        calls.append(1)  # valid when the call starts, expired by the time the server answers
        return None if len(calls) == 1 else real(self)

    monkeypatch.setattr(_Client, "_expired", late)
    expired = r"TLS refused: operator certificate .* expired"
    ws = WorkServerClient(sim.url, cert=ident.cert, verify=ident.ca_path, retries=0)
    with ws, pytest.raises(CertificateError, match=expired):
        ws.list_projects()


def test_key_readable_by_others_is_warned_about(sim, make_identity) -> None:
    """Through the console script, so that the warning is seen where an operator sees it."""
    ident = make_identity(sim)
    ident.key_path.chmod(0o644)
    fahflow = Path(sys.executable).with_name("fahflow")
    result = subprocess.run(
        [fahflow, "cert", "show", "--cert", ident.cert_path, "--key", ident.key_path],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"private key {ident.key_path} is readable by group or others" in result.stderr
    assert f"chmod 600 {ident.key_path}" in result.stderr


def test_client_warns_about_a_readable_key(sim, make_identity, caplog) -> None:
    from fahflow.ws.client import WorkServerClient

    ident = make_identity(sim, email="other@example.org")
    ident.key_path.chmod(0o640)
    with caplog.at_level("WARNING"):
        WorkServerClient(sim.url, cert=ident.cert, verify=ident.ca_path).close()
    assert f"chmod 600 {ident.key_path}" in caplog.text
    ident.key_path.chmod(0o600)
    caplog.clear()
    with caplog.at_level("WARNING"):
        WorkServerClient(sim.url, cert=ident.cert, verify=ident.ca_path).close()
    assert "readable by group" not in caplog.text
