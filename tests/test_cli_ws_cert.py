"""`fahflow ws ...` and `fahflow cert ...` through ``fahflow.cli.main`` (exit codes included),
against the simulator over real mutual TLS."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import click
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fahflow.cli import cli
from fahflow.ws import certs
from fahflow.ws.client import WorkServerClient
from fahflow.ws.models import JobState, ProjectData

EMAIL = "operator@example.org"
PROJECT = 90001
RUN_FILES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")


@pytest.fixture
def env(operator_identity, monkeypatch: pytest.MonkeyPatch):
    """Connection settings through the environment, as cron would set them."""
    ident = operator_identity
    monkeypatch.setenv("FAHFLOW_WS_URL", ident.url)
    monkeypatch.setenv("FAHFLOW_CERT", str(ident.cert_path))
    monkeypatch.setenv("FAHFLOW_KEY", str(ident.key_path))
    monkeypatch.setenv("FAHFLOW_CA", str(ident.ca_path))
    return ident


def _commands(group: click.Group, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize(
    "path",
    _commands(cli.get_command(None, "ws"), ("ws",))
    + _commands(cli.get_command(None, "cert"), ("cert",)),
    ids=" ".join,
)
def test_help_everywhere(run, path):
    code, out, _ = run(*path, "--help")
    assert code == 0 and "Usage: fahflow" in out and len(out.splitlines()) > 3


def test_projects_and_jobs_through_the_cli(run, env, sim, tiny_wu):
    code, out, err = run(
        "ws", "create-project", PROJECT, "--core-id", "0x23", "--contact", EMAIL,
        "--runs", 1, "--clones", 5, "--atoms", 125,
    )  # fmt: skip
    assert (code, out.strip(), err) == (0, f"created project {PROJECT}", "")
    code, _, err = run("ws", "create-project", PROJECT, "--core-id", "0x23", "--contact", EMAIL)
    assert code == 1 and "already exists; use --update" in err
    assert run("ws", "create-project", PROJECT, "--core-id", "0x22", "--update")[0] == 0
    code, _, err = run("ws", "create-project", PROJECT + 1, "--core-id", "0x22", "--update")
    assert code == 1 and "does not exist" in err
    code, _, err = run("ws", "create-project", PROJECT + 1, "--core-id", "0x22")
    assert code == 1 and "--contact is required" in err

    code, out, _ = run("ws", "projects")
    assert code == 0 and str(PROJECT) in out and "0x22" in out and EMAIL in out
    code, out, _ = run("ws", "project", PROJECT, "--json")
    data = ProjectData.model_validate_json(out)
    assert (data.core_id, data.clones, data.atoms, data.contact) == (0x22, 5, 125, EMAIL)

    with WorkServerClient(env.url, cert=env.cert, verify=env.ca_path) as ws:
        for name in RUN_FILES:
            ws.put_file(PROJECT, f"RUN0/{name}", tiny_wu / name)
        for clone in (0, 1, 2):
            ws.create_clone(PROJECT, 0, clone)
    code, out, _ = run("ws", "files", PROJECT)
    assert code == 0 and all(f"RUN0/{n}" in out for n in RUN_FILES)

    code, out, err = run("ws", "stop", PROJECT, 0, 1, "--yes")
    assert (code, out.strip()) == (0, f"stop: job {PROJECT}:0:1 is now STOPPED"), err
    code, out, _ = run("ws", "jobs", PROJECT)
    assert code == 0 and "2 READY, 1 STOPPED" in out
    code, out, _ = run("ws", "jobs", PROJECT, "--state", "stopped", "--json")
    (job,) = json.loads(out)["jobs"]
    assert (job["clone"], job["state"]) == (1, "STOPPED")
    code, out, _ = run("ws", "restart", PROJECT, 0, 1, "--yes")
    assert code == 0 and "is now READY" in out
    code, out, _ = run("ws", "job", PROJECT, 0, 1, "--json")
    assert json.loads(out)["state"] == JobState.READY.value
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, out, _ = run("ws", "jobs", PROJECT, "--since", future, "--json")
    assert code == 0 and json.loads(out)["jobs"] == []


def test_job_actions_ask_for_confirmation(run, env, sim, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    code, _, err = run("ws", "fail", PROJECT, 0, 0)
    assert code == 1 and "Aborted" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--core-id", "23"], "--core-id '23': core_id must be a hex string like '0x23'"),
        (["--core-id", "0xzz"], "--core-id '0xzz': core id must be hex"),
        (["--core-id", "0x23", "--timeout", "30"], "--timeout 30: Input should be greater than"),
        (["--core-id", "0x23", "--deadline", "5"], "--deadline 5"),
    ],
)
def test_bad_project_settings_name_option_and_value(run, env, sim, args, message):
    code, out, err = run("ws", "create-project", PROJECT, "--contact", EMAIL, *args)
    assert code == 1 and message in err and out == ""
    assert sim.store.list_projects() == []


def test_missing_or_bad_connection_settings(run, tmp_path, sim, operator_identity):
    ident = operator_identity
    code, _, err = run("ws", "projects")
    assert code == 1 and "--url or set FAHFLOW_WS_URL" in err
    code, _, err = run("ws", "--url", ident.url, "projects")
    assert code == 1 and "missing --cert (FAHFLOW_CERT)" in err
    base = ["ws", "--url", ident.url, "--key", ident.key_path, "--ca", ident.ca_path]
    code, _, err = run(*base, "--cert", tmp_path / "gone.pem", "projects")
    assert code == 1 and "certificate file not found" in err and "gone.pem" in err
    code, _, err = run(*base, "--cert", ident.cert_path, "--http-timeout", "0", "5", "projects")
    assert code == 1 and "--http-timeout" in err
    code, _, err = run(*base, "--cert", ident.cert_path, "jobs", PROJECT, "--since", "yesterday")
    assert code == 1 and "ISO 8601" in err
    code, _, err = run(*base, "--cert", ident.cert_path, "project", 4242)
    assert code == 1 and "HTTP 404" in err and "/api/projects/4242" in err
    # without --ca the simulator's certificate is not trusted: refused, never ignored
    code, _, err = run("ws", "--url", ident.url, "--cert", ident.cert_path, "--key",
                       ident.key_path, "--retries", "0", "projects")  # fmt: skip
    assert code == 1 and "TLS refused" in err


def test_certificate_life_cycle_through_the_cli(run, sim, tmp_path, monkeypatch):
    key, csr, cert = tmp_path / "op.key", tmp_path / "op.csr", tmp_path / "op.pem"
    code, out, _ = run("cert", "create-key", "--key", key)
    assert code == 0 and stat.S_IMODE(key.stat().st_mode) == 0o600 and "0600" in out
    code, _, err = run("cert", "create-key", "--key", key)
    assert code == 1 and "already exists" in err
    code, _, err = run("cert", "create-csr", "--key", key, "--email", "not-an-email", "--out", csr)
    assert code == 1 and "email must look like" in err and not csr.exists()
    assert run("cert", "create-csr", "--key", key, "--email", EMAIL, "--out", csr)[0] == 0
    request = x509.load_pem_x509_csr(csr.read_bytes())
    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == EMAIL

    # the FAH team signs the first certificate
    cert.write_bytes(sim.issue_certificate(csr.read_bytes(), days=30))
    code, out, err = run("cert", "show", "--cert", cert, "--key", key)
    assert code == 0 and EMAIL in out and "valid until" in out and "matches key" in err
    code, out, _ = run("cert", "show", "--cert", cert, "--json")
    assert json.loads(out)["email"] == EMAIL

    monkeypatch.setenv("FAHFLOW_AS_URL", sim.url)
    monkeypatch.setenv("FAHFLOW_CA", str(sim.ca_path))
    renew = ["cert", "renew", "--cert", cert, "--key", key]
    code, out, _ = run(*renew)
    assert code == 0 and out.startswith("not due:")
    serial = certs.certificate_info(cert).serial
    code, out, _ = run(*renew, "--force")
    assert code == 0 and out.startswith("renewed:")
    assert certs.certificate_info(cert).serial != serial
    assert certs.certificate_info(cert.with_name("op.pem.bak")).serial == serial
    code, _, err = run(*renew, "--min-fraction-left", "1.5")
    assert code == 1 and "--min-fraction-left" in err


def test_cert_show_and_renew_fail_loudly_on_bad_certificates(run, sim, make_identity, tmp_path):
    expired = make_identity(sim, days=-1)
    code, out, err = run("cert", "show", "--cert", expired.cert_path)
    assert code == 1 and "EXPIRED" in out and "expired at" in err
    code, _, err = run(
        "cert", "renew", "--cert", expired.cert_path, "--key", expired.key_path,
        "--as-url", sim.url, "--ca", sim.ca_path,
    )  # fmt: skip
    assert code == 1 and "can no longer be renewed" in err
    other = make_identity(sim, email="someone@example.org")
    code, _, err = run("cert", "show", "--cert", other.cert_path, "--key", expired.key_path)
    assert code == 1 and "does not match private key" in err
