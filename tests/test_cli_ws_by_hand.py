"""One work unit end to end by hand, through ``fahflow.cli.main`` only: an operator certificate
from ``fahflow cert`` + ``fahflow sim issue-cert``, then ``fahflow ws create-project``,
``put-file``, ``create-clone``, ``job`` and ``results`` against a simulator with one volunteer.

These are the commands of "Run a WU by hand" in docs/simulator.md; keep the two in step.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from fahflow.ws.models import JobState

EMAIL = "me@example.org"
PROJECT = 5
RUN_FILES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")


@pytest.fixture
def operator(run, make_sim, sim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A simulator with one volunteer, and the environment of an operator whose certificate
    came from the CLI alone (create-key, create-csr, sim issue-cert)."""
    simulator = make_sim(volunteers=1)
    key, csr, pem = tmp_path / "me.key", tmp_path / "me.csr", tmp_path / "me.pem"
    assert run("cert", "create-key", "--key", key)[0] == 0
    assert run("cert", "create-csr", "--key", key, "--email", EMAIL, "--out", csr)[0] == 0
    code, out, err = run("sim", "issue-cert", "--root", sim_root, "--csr", csr, "--out", pem)
    assert code == 0, err
    ca = sim_root / "ca" / "ca.pem"
    assert ca == simulator.ca_path and str(ca) in out
    monkeypatch.setenv("FAHFLOW_WS_URL", simulator.url)
    monkeypatch.setenv("FAHFLOW_CERT", str(pem))
    monkeypatch.setenv("FAHFLOW_KEY", str(key))
    monkeypatch.setenv("FAHFLOW_CA", str(ca))
    return simulator


def _partials(out: Path) -> list[Path]:
    """Staging directories ``results`` left next to ``--out`` (there must be none)."""
    return list(out.parent.glob(f".{out.name}.part-*"))


def test_one_wu_by_hand(run, operator, tiny_wu: Path, tmp_path: Path):
    sim = operator
    code, out, err = run(
        "ws", "create-project", PROJECT, "--core-id", "0x23", "--contact", EMAIL,
        "--runs", 2, "--clones", 2, "--atoms", 125,
    )  # fmt: skip
    assert (code, out.strip()) == (0, f"created project {PROJECT}"), err

    for name in RUN_FILES:
        code, out, err = run("ws", "put-file", PROJECT, tiny_wu / name, f"RUN0/{name}")
        assert code == 0 and f"as RUN0/{name}" in out, err
    code, out, _ = run("ws", "files", PROJECT, "--json")
    listed = {f["path"]: f["size"] for f in json.loads(out)}
    assert listed == {f"RUN0/{n}": (tiny_wu / n).stat().st_size for n in RUN_FILES}
    copy = tmp_path / "core-back.xml"
    assert run("ws", "get-file", PROJECT, "RUN0/core.xml", "--out", copy)[0] == 0
    assert copy.read_bytes() == (tiny_wu / "core.xml").read_bytes()

    code, out, err = run("ws", "create-clone", PROJECT, 0, 0)
    assert code == 0 and out.startswith(f"created job {PROJECT}:0:0: "), err
    sim.wait_for_job(PROJECT, 0, 0, {"FINISHED"}, timeout=60)
    code, out, _ = run("ws", "job", PROJECT, 0, 0)
    assert code == 0 and "FINISHED" in out
    code, out, _ = run("ws", "job", PROJECT, 0, 0, "--json")
    job = json.loads(out)
    assert (job["state"], job["gen"]) == (JobState.FINISHED.value, 0)

    dest = tmp_path / "results" / "p5-r0-c0-g0"
    code, out, err = run("ws", "results", PROJECT, 0, 0, "--out", dest)
    assert code == 0 and f"GEN 0 to {dest}" in err, err
    names = {p.name for p in dest.iterdir()}
    assert {"globals.csv", "science.log"} <= names
    assert all(str(dest / n) in out for n in names)
    served = sim.project_home(PROJECT) / "RUN0" / "CLONE0" / "results0"
    for name in names:
        assert (dest / name).read_bytes() == (served / name).read_bytes()
    core = ET.parse(tiny_wu / "core.xml").getroot()
    n_steps, every = (int(core.findtext(f, "")) for f in ("numSteps", "globalVarFreq"))
    steps = pd.read_csv(dest / "globals.csv")["Step"].tolist()
    assert steps == list(range(0, n_steps + 1, every))
    assert _partials(dest) == []

    # again, explicitly GEN 0 and into the same directory: replaced in place, nothing left over
    (dest / "globals.csv").write_text("stale\n")
    assert run("ws", "results", PROJECT, 0, 0, "--gen", 0, "--out", dest)[0] == 0
    assert (dest / "globals.csv").read_bytes() == (served / "globals.csv").read_bytes()
    assert _partials(dest) == []

    # the other create form, on the same uploaded RUN files
    code, out, err = run("ws", "create-clone", PROJECT, 0, 1, "--create-form", "run-offset")
    assert code == 0 and out.startswith(f"created job {PROJECT}:0:1: "), err
    assert sim.create_count(PROJECT, 0, 1) == 1


def test_by_hand_mistakes_are_named(run, operator, tiny_wu: Path, tmp_path: Path):
    sim = operator
    assert run("ws", "create-project", PROJECT, "--core-id", "0x23", "--contact", EMAIL,
               "--runs", 2, "--clones", 2)[0] == 0  # fmt: skip
    code, _, err = run("ws", "put-file", PROJECT, tiny_wu / "core.xml", "../core.xml")
    assert code == 1 and "file path must be relative" in err and "'../core.xml'" in err
    code, _, err = run("ws", "put-file", PROJECT, tmp_path / "nope.xml", "RUN0/core.xml")
    assert code == 1 and "nope.xml" in err and "does not exist" in err
    for name in RUN_FILES:
        assert run("ws", "put-file", PROJECT, tiny_wu / name, "RUN0/")[0] == 0
    code, out, _ = run("ws", "files", PROJECT)
    assert all(f"RUN0/{n}" in out for n in RUN_FILES)

    # RUN1 has no files: the WS fails the job at create, and the command says so
    code, _, err = run("ws", "create-clone", PROJECT, 1, 0)
    assert code == 1 and "is FAILED" in err and f"fahflow ws files {PROJECT}" in err
    # ids are never reused: a second create is refused, and counted once by the WS
    assert run("ws", "create-clone", PROJECT, 0, 0)[0] == 0
    code, _, err = run("ws", "create-clone", PROJECT, 0, 0)
    assert code == 1 and "it already exists" in err and "HTTP 409" in err
    assert sim.create_count(PROJECT, 0, 0) == 2  # both calls reached the job; one job exists
    # (CLONE ids above the project's `clones` are fine: alchemiscale-fah creates on clones=0)
    code, _, err = run("ws", "create-clone", PROJECT + 1, 0, 9)
    assert code == 1 and "HTTP 404" in err and "Project 6 not found" in err
    assert "already exists" not in err
    code, _, err = run("ws", "create-clone", PROJECT, 0, 0, "--create-form", "sideways")
    assert code == 1 and "--create-form" in err

    sim.wait_for_job(PROJECT, 0, 0, {"FINISHED"}, timeout=60)
    dest = tmp_path / "out"
    code, out, err = run("ws", "results", PROJECT, 0, 0, "--gen", 3, "--out", dest)
    assert code == 1 and out == "" and "GEN 3" in err
    assert not dest.exists() and _partials(dest) == []
    code, _, err = run("ws", "get-file", PROJECT, "RUN0/missing.xml", "--out", dest / "m.xml")
    assert code == 1 and "HTTP 404" in err and not (dest / "m.xml").exists()
