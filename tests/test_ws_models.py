"""fahflow's WS/AS models and client against the JSON shapes on record (tests/data/ws_shapes/).

The shapes come from alchemiscale-fah's models, the only client known to have run against a real
work server (see tests/data/ws_shapes/README.md for the file and model of each). A model that
rejects one of them would fail on every call against a real WS.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from fahflow.sim import Simulator
from fahflow.ws.client import WorkServerClient
from fahflow.ws.models import (
    ASProjectData,
    ASWorkServerData,
    Compression,
    FileData,
    JobData,
    JobResults,
    JobState,
    ProjectData,
)

SHAPES = Path(__file__).parent / "data" / "ws_shapes"
PEER_PROJECT_FIELDS = {
    "core_id", "contact", "runs", "clones", "gens", "atoms", "credit", "timeout", "deadline",
    "compression",
}  # fmt: skip
PEER_JOB_FIELDS = {
    "server", "core", "project", "run", "clone", "gen", "state", "last", "retries", "assigns",
    "progress",
}  # fmt: skip


def shape(name: str) -> Any:
    return json.loads((SHAPES / name).read_text())


def test_job_with_integer_server_and_null_counters() -> None:
    job = JobData.model_validate(shape("job.json"))
    assert job.server == 1 and job.core == 0x23 and job.state is JobState.FINISHED
    assert (job.retries, job.assigns, job.progress) == (None, None, None)
    assert JobData.model_validate({**shape("job.json"), "server": "127.0.0.1"}).server == (
        "127.0.0.1"
    )


def test_jobs_since_answer() -> None:
    answer = JobResults.model_validate(shape("jobs.json"))
    assert [j.clone for j in answer.jobs] == [3, 4]
    assert answer.jobs[1].last is None and answer.jobs[1].core is None
    assert answer.ts.tzinfo is not None


def test_project_defaults_are_the_peers() -> None:
    recorded = shape("project.json")
    assert ProjectData.model_validate(recorded).to_json() == recorded
    minimal = ProjectData(core_id="0x23", contact="operator@example.org", atoms=2000, credit=15202)
    assert (minimal.runs, minimal.clones, minimal.compression) == (0, 0, Compression.ZLIB)
    assert minimal.to_json() == recorded  # what fahflow sends has the peer's fields and values


@pytest.mark.parametrize("field", ["atoms", "credit"])
def test_project_without_atoms_or_credit_warns_naming_the_field(field: str, caplog) -> None:
    data = ProjectData.model_validate({**shape("project.json"), field: 0})
    with caplog.at_level(logging.WARNING, logger="fahflow.ws.models"):
        data.to_json()
    assert f"{field} is 0: give a positive {field}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fahflow.ws.models"):
        ProjectData.model_validate(shape("project.json")).to_json()
    assert caplog.text == ""


def test_files_and_as_shapes() -> None:
    files = TypeAdapter(list[FileData]).validate_python(shape("files.json"))
    assert [f.size for f in files] == [48213, 211]
    assert ASWorkServerData.model_validate(shape("as_ws.json")).constraints == "beta"
    assert ASProjectData.model_validate(shape("as_project.json")).constraints == "beta"


def test_client_reads_projects_as_an_object_or_a_list(monkeypatch, tmp_path: Path) -> None:
    ws = WorkServerClient("https://ws.example.org", cert=None)
    answers: list[Any] = [shape("projects.json"), [10002, 10001], {}]
    monkeypatch.setattr(ws, "_get_json", lambda path, **kw: answers.pop(0))
    assert ws.list_projects() == [10001, 10002]
    assert ws.list_projects() == [10001, 10002]
    assert ws.list_projects() == []


def test_simulator_answers_the_shapes_on_record(sim: Simulator, operator_identity) -> None:
    """The peer's flow: a project with runs=0, clones=0, a CLONE created on it; every answer
    has the recorded shape (object of projects, integer server)."""
    http = operator_identity.session()
    url = f"{sim.url}/api/projects"
    assert http.put(f"{url}/10001", json=shape("project.json"), timeout=10).ok
    for name in ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2"):
        assert http.put(f"{url}/10001/files/RUN0/{name}", data=b"x", timeout=10).ok
    # alchemiscale-fah's create_clone: the RUN-level form with {"clones": clone_id + 1}.
    assert http.put(f"{url}/10001/runs/0/create", json={"clones": 4}, timeout=10).ok
    projects = http.get(url, timeout=10).json()
    assert projects == {"10001": shape("project.json")}
    job = http.get(f"{url}/10001/runs/0/clones/3", timeout=10).json()
    assert set(job) == PEER_JOB_FIELDS and isinstance(job["server"], int)
    assert set(projects["10001"]) == PEER_PROJECT_FIELDS
    with WorkServerClient(sim.url, cert=operator_identity.cert, verify=str(sim.ca_path)) as ws:
        assert ws.list_projects() == [10001]
        assert ws.get_job(10001, 0, 3).server == 1


def test_jobs_table_copes_with_null_counters(run, monkeypatch, sim, operator_identity) -> None:
    answer = JobResults.model_validate(shape("jobs.json"))
    monkeypatch.setattr(WorkServerClient, "jobs_since", lambda self, p, since=None: answer)
    code, out, err = run(
        "ws", "--url", sim.url, "--cert", operator_identity.cert_path,
        "--key", operator_identity.key_path, "--ca", sim.ca_path, "jobs", "10001",
    )  # fmt: skip
    assert code == 0, err
    assert "1 FINISHED, 1 READY" in out
