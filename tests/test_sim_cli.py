"""`fahflow sim ...` commands, and the simulator config file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from cryptography import x509

from fahflow.cli import cli
from fahflow.errors import ConfigError
from fahflow.sim import DEFAULT_SEND, FaultConfig, SimConfig, Simulator

FAHFLOW = [sys.executable, "-c", "import sys; from fahflow.cli import main; sys.exit(main())"]


def test_issue_cert_and_status(sim: Simulator, operator_identity, make_csr, tmp_path: Path) -> None:
    runner = CliRunner()
    csr = tmp_path / "me.csr"
    csr.write_bytes(make_csr("me@example.org").csr_pem)
    out = tmp_path / "me.pem"
    args = ["sim", "issue-cert", "--root", str(sim.root), "--csr", str(csr), "--out", str(out)]
    result = runner.invoke(cli, [*args, "--days", "2"])
    assert result.exit_code == 0, result.output
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=me@example.org"
    assert 1.9 < (cert.not_valid_after_utc - cert.not_valid_before_utc).days + 0.1 < 2.2
    session = operator_identity.session()
    project = {"core_id": "0x23", "contact": "me@example.org", "runs": 1, "clones": 2}
    assert session.put(f"{sim.url}/api/projects/3", json=project, timeout=10).ok
    for name in ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2"):
        session.put(f"{sim.url}/api/projects/3/files/RUN0/{name}", data=b"x", timeout=10)
    session.put(f"{sim.url}/api/projects/3/runs/0/create", json={"clones": 2}, timeout=10)
    session.put(f"{sim.url}/api/projects/3/runs/0/clones/1/stop", timeout=10)
    result = runner.invoke(cli, ["sim", "status", "--root", str(sim.root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["projects"] == {"3": {"READY": 1, "STOPPED": 1}}
    table = runner.invoke(cli, ["sim", "status", "--root", str(sim.root)])
    assert "READY" in table.output and "busy volunteers: 0" in table.output


def test_issue_cert_refuses_garbage(sim: Simulator, tmp_path: Path) -> None:
    (tmp_path / "bad.csr").write_text("not a csr")
    args = ["--root", str(sim.root), "--csr", str(tmp_path / "bad.csr"), "--out", "x.pem"]
    result = CliRunner().invoke(cli, ["sim", "issue-cert", *args])
    assert result.exit_code != 0 and "CSR" in str(result.exception)


def test_make_wu_and_run_core(tmp_path: Path) -> None:
    runner = CliRunner()
    wu, out = tmp_path / "wu", tmp_path / "out"
    assert runner.invoke(cli, ["sim", "make-wu", str(wu), "--steps", "100"]).exit_code == 0
    result = runner.invoke(cli, ["sim", "run-core", str(wu), str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "globals.csv").read_text().count("\n") == 3  # header, step 0, step 100


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "served"
    proc = subprocess.Popen(
        [*FAHFLOW, "sim", "serve", "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        info_path = root / "server.json"
        deadline = time.monotonic() + 30
        while not info_path.is_file():  # the server announces itself by writing this file
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server.json never appeared"
            time.sleep(0.05)
        info = json.loads(info_path.read_text())
        assert info["pid"] == proc.pid and info["volunteers"] == 1
        with pytest.raises(requests.exceptions.SSLError):  # up, and wants a certificate
            requests.get(f"{info['url']}/api/projects", verify=info["ca"], timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not (root / "server.json").exists()
    assert "sim.stop" in (root / "sim-log.jsonl").read_text()  # a clean shutdown


def test_config_yaml_and_xml(tmp_path: Path) -> None:
    (tmp_path / "sim.yaml").write_text(
        "seed: 7\ngens: 2\nfaults:\n  vanish_rate: 0.25\n  slow_s: 1.5\nclock_scale: 60\n"
    )
    config = SimConfig.from_root(tmp_path)
    assert (config.seed, config.gens, config.clock_scale) == (7, 2, 60)
    assert config.faults == FaultConfig(vanish_rate=0.25, slow_s=1.5)
    assert config.send == DEFAULT_SEND
    xml = tmp_path / "config.xml"
    xml.write_text(
        '<config><core type="0x23"><gens v="3"/>'
        "<send>$home/RUN$run/CLONE$clone/core.xml\n $home/RUN$run/system.xml.bz2</send></core>"
        '<sim seed="4" faults.http_503_rate="0.1"/></config>'
    )
    config = SimConfig.load(xml)
    assert config.send == ["$home/RUN$run/CLONE$clone/core.xml", "$home/RUN$run/system.xml.bz2"]
    assert (config.gens, config.seed, config.faults.http_503_rate) == (3, 4, 0.1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("faults:\n  vanish_rate: 2\n", "faults.vanish_rate"),
        ("gens: 0\n", "'gens'"),
        ("sendd: []\n", "'sendd'"),
        ("- a\n", "mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "sim.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        SimConfig.from_root(tmp_path)
    assert "sim.yaml" in str(info.value)


def test_certificate_expiry_fault(make_sim, make_identity, make_csr) -> None:
    """The AS renews with an already expired certificate: the next call is refused."""
    sim = make_sim(config=SimConfig(faults=FaultConfig(cert_lifetime_s=-60)))
    identity = make_identity(sim)
    renewal = make_csr(identity.email)
    answer = identity.session().post(
        f"{sim.url}/api/auth/csr", json={"csr": renewal.csr_pem.decode()}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    identity.cert_path.write_bytes(answer.content)
    identity.key_path.write_bytes(renewal.key_pem)
    with pytest.raises(requests.exceptions.SSLError):
        identity.session().get(f"{sim.url}/api/projects", timeout=10)
