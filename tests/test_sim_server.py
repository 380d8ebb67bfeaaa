"""The simulator's WS/AS endpoints over real mutual-TLS HTTPS on loopback (no volunteers)."""

from __future__ import annotations

import http.client as httpclient
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography import x509

from fahflow.errors import ConfigError
from fahflow.sim import FaultConfig, SimConfig, Simulator
from fahflow.sim.errors import HttpError
from fahflow.sim.records import JobState as SimJobState
from fahflow.ws.models import FileData, JobData, JobResults, JobState, ProjectData

PROJECT = {"core_id": "0x23", "contact": "operator@example.org", "atoms": 125, "credit": 10}
RUN_FILES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")


@dataclass
class Caller:
    """``caller("GET", "/api/projects")``: one operator's requests against one simulator."""

    session: requests.Session
    url: str

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, f"{self.url}{path}", timeout=10, **kw)


def caller_for(identity, sim: Simulator) -> Caller:
    return Caller(identity.session(), sim.url)


@pytest.fixture
def http(operator_identity, sim: Simulator) -> Caller:
    caller = caller_for(operator_identity, sim)
    yield caller
    caller.session.close()


def make_project(http, project: int = 1, **fields) -> None:
    answer = http("PUT", f"/api/projects/{project}", json={**PROJECT, **fields})
    assert answer.status_code == 200, answer.text


def upload_run(http, project: int = 1, run: int = 0) -> None:
    for name in RUN_FILES:
        answer = http("PUT", f"/api/projects/{project}/files/RUN{run}/{name}", data=b"x")
        assert answer.status_code == 200, answer.text


def test_projects_round_trip(http, sim: Simulator) -> None:
    assert http("GET", "/api/projects").json() == {}
    make_project(http, 7, timeout=600, runs=4)
    got = ProjectData.model_validate(http("GET", "/api/projects/7").json())
    assert got.core_id == 0x23 and got.timeout == 600 and got.runs == 4
    # The shape alchemiscale-fah reads: {"<id>": ProjectData}.
    assert http("GET", "/api/projects").json() == {"7": got.to_json()}
    assert http("GET", "/api/projects/8").status_code == 404
    bad = http("PUT", "/api/projects/9", json={**PROJECT, "timeout": 30})
    assert bad.status_code == 400 and "timeout" in bad.json()["error"]
    assert http("DELETE", "/api/projects/7").status_code == 200
    assert http("GET", "/api/projects/7").status_code == 404


def test_project_files_round_trip(http, sim: Simulator) -> None:
    make_project(http)
    payload = bytes(range(256)) * 100
    assert http("PUT", "/api/projects/1/files/RUN0/CLONE3/core.xml", data=payload).ok
    assert (sim.project_home(1) / "RUN0" / "CLONE3" / "core.xml").read_bytes() == payload
    assert http("GET", "/api/projects/1/files/RUN0/CLONE3/core.xml").content == payload
    listing = [FileData.model_validate(f) for f in http("GET", "/api/projects/1/files").json()]
    assert [(f.path, f.size) for f in listing] == [("RUN0/CLONE3/core.xml", len(payload))]
    assert abs((listing[0].modified - datetime.now(UTC)).total_seconds()) < 60
    assert http("DELETE", "/api/projects/1/files/RUN0/CLONE3/core.xml").ok
    assert http("GET", "/api/projects/1/files/RUN0/CLONE3/core.xml").status_code == 404
    assert http("PUT", "/api/projects/2/files/x", data=b"x").status_code == 404


def test_create_forms_and_never_twice(http, sim: Simulator) -> None:
    make_project(http)
    upload_run(http)
    job = JobData.model_validate(http("PUT", "/api/projects/1/runs/0/clones/3/create").json())
    assert (job.project, job.run, job.clone, job.state) == (1, 0, 3, JobState.READY)
    again = http("PUT", "/api/projects/1/runs/0/clones/3/create")
    assert again.status_code == 409
    assert sim.create_count(1, 0, 3) == 2
    # RUN-level form: clones 2..4, the existing CLONE 3 is left untouched.
    jobs = http("PUT", "/api/projects/1/runs/0/create", json={"clones": 3, "offset": 2})
    assert jobs.status_code == 200, jobs.text
    assert [j["clone"] for j in jobs.json()] == [2, 3, 4]
    assert [sim.create_count(1, 0, c) for c in (2, 3, 4)] == [1, 3, 1]
    # The previous implementation's shape {"clones": c + 1}: offset 0, creates 0 and 1 only.
    assert http("PUT", "/api/projects/1/runs/0/create", json={"clones": 5}).ok
    assert [sim.create_count(1, 0, c) for c in range(5)] == [1, 1, 2, 4, 2]


def test_create_refuses_bad_ids(http, sim: Simulator) -> None:
    make_project(http)
    upload_run(http)
    answer = http("PUT", "/api/projects/1/runs/70000/clones/0/create")
    assert answer.status_code == 400 and "0..65535" in answer.json()["error"]
    answer = http("PUT", "/api/projects/1/runs/0/create", json={"clones": "two"})
    assert answer.status_code == 400 and "'clones'" in answer.json()["error"]
    assert http("PUT", "/api/projects/5/runs/0/clones/0/create").status_code == 404


def test_create_with_missing_send_files_fails_the_job(http, sim: Simulator) -> None:
    make_project(http)
    http("PUT", "/api/projects/1/files/RUN0/core.xml", data=b"x")
    job = http("PUT", "/api/projects/1/runs/0/clones/0/create").json()
    assert job["state"] == "FAILED"
    assert "system.xml.bz2" in sim.job_reason(1, 0, 0)


def test_send_list_naming_clone_files(make_sim, make_identity, tmp_path: Path) -> None:
    config = SimConfig(send=["$home/RUN$run/CLONE$clone/core.xml"])
    sim = make_sim(config=config, root=tmp_path / "clone-send")
    caller = caller_for(make_identity(sim), sim)
    make_project(caller)
    assert caller("PUT", "/api/projects/1/files/RUN0/CLONE1/core.xml", data=b"x").ok
    missing = caller("PUT", "/api/projects/1/runs/0/clones/0/create").json()
    present = caller("PUT", "/api/projects/1/runs/0/clones/1/create").json()
    assert (missing["state"], present["state"]) == ("FAILED", "READY")
    assert "CLONE0/core.xml" in sim.job_reason(1, 0, 0)


def test_job_actions_and_jobs_since(http, sim: Simulator) -> None:
    make_project(http)
    upload_run(http)
    before = JobResults.model_validate(http("GET", "/api/projects/1/jobs").json())
    assert before.jobs == []
    for clone in (0, 1):
        assert http("PUT", f"/api/projects/1/runs/0/clones/{clone}/create").ok
    first = JobResults.model_validate(
        http("GET", "/api/projects/1/jobs", params={"since": before.ts.isoformat()}).json()
    )
    assert sorted(j.clone for j in first.jobs) == [0, 1]
    assert http("PUT", "/api/projects/1/runs/0/clones/1/stop").json()["state"] == "STOPPED"
    since = http("GET", "/api/projects/1/jobs", params={"since": first.ts.isoformat()})
    changed = JobResults.model_validate(since.json())
    assert [(j.clone, j.state) for j in changed.jobs] == [(1, JobState.STOPPED)]
    assert http("PUT", "/api/projects/1/runs/0/clones/1/restart").json()["state"] == "READY"
    assert http("PUT", "/api/projects/1/runs/0/clones/1/fail").json()["state"] == "FAILED"
    assert http("PUT", "/api/projects/1/runs/0/clones/1/reset").json()["state"] == "READY"
    assert http("PUT", "/api/projects/1/runs/0/clones/9/stop").status_code == 404
    bad = http("GET", "/api/projects/1/jobs", params={"since": "yesterday"})
    assert bad.status_code == 400 and "yesterday" in bad.json()["error"]


def test_as_endpoints(http, sim: Simulator) -> None:
    assert http("GET", "/api/ws/127.0.0.1").status_code == 404
    put = http("PUT", "/api/ws/127.0.0.1", json={"weight": 2.5, "constraints": "x"})
    assert put.ok, put.text
    assert http("GET", "/api/ws/127.0.0.1").json()["weight"] == 2.5
    put = http("PUT", "/api/ws/127.0.0.1/projects/1", json={"weight": 0.5})
    assert put.ok, put.text
    got = http("GET", "/api/ws/127.0.0.1/projects/1").json()
    assert got["weight"] == 0.5 and got["ws"] == "127.0.0.1"
    assert http("PUT", "/api/ws/127.0.0.1", json={"weight": -1}).status_code == 400


def test_csr_renewal_signs_the_submitted_key(http, operator_identity, make_csr) -> None:
    mine = make_csr(operator_identity.email)
    answer = http("POST", "/api/auth/csr", json={"csr": mine.csr_pem.decode()})
    assert answer.status_code == 200, answer.text
    cert = x509.load_pem_x509_certificate(answer.content)
    assert cert.public_key().public_numbers() == mine.key.public_key().public_numbers()
    assert cert.subject.rfc4514_string() == f"CN={operator_identity.email}"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 29 < lifetime.total_seconds() / 86400 < 31
    other = make_csr("someone-else@example.org").csr_pem.decode()
    assert http("POST", "/api/auth/csr", json={"csr": other}).status_code == 403
    assert http("POST", "/api/auth/csr", json={"csr": "junk"}).status_code == 400


def _raw_get(identity, path: str) -> int:
    context = ssl.create_default_context(cafile=str(identity.ca_path))
    context.load_cert_chain(identity.cert_path, identity.key_path)
    host, port = identity.url.removeprefix("https://").split(":")
    conn = httpclient.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        conn.request("GET", path)  # sent as written: no client-side dot-segment cleanup
        return conn.getresponse().status
    finally:
        conn.close()


TRAVERSALS = [
    "/api/projects/1/files/../../ca/ca.key",
    "/api/projects/1/files/%2e%2e/%2e%2e/ca/ca.key",
    "/api/projects/1/files/..%2f..%2fca%2fca.key",
    "/api/projects/1/files/%2fetc%2fpasswd",
    "/api/projects/1/files/RUN0/./x",
    "/api/projects/1/runs/0/clones/0/gens/0/files/../../../../../ca/ca.key",
    "/api/projects/1/runs/0/clones/0/files/%2e%2e%2f%2e%2e%2f%2e%2e%2fsim.sqlite",
]


def test_path_traversal_refused(http, sim: Simulator, operator_identity) -> None:
    make_project(http)
    upload_run(http)
    http("PUT", "/api/projects/1/runs/0/clones/0/create")
    assert {path: _raw_get(operator_identity, path) for path in TRAVERSALS} == dict.fromkeys(
        TRAVERSALS, 400
    )
    put = http("PUT", "/api/projects/1/files/RUN0/%2e%2e/%2e%2e/%2e%2e/x", data=b"x")
    assert put.status_code == 400 and not (sim.root / "x").exists()


def test_symlink_escape_refused(http, sim: Simulator, operator_identity) -> None:
    make_project(http)
    (sim.project_home(1) / "link").symlink_to(sim.root / "ca")
    assert _raw_get(operator_identity, "/api/projects/1/files/link/ca.key") == 400


def test_client_without_valid_certificate_refused(
    sim: Simulator, operator_identity, make_identity, tmp_path: Path
) -> None:
    url = f"{sim.url}/api/projects"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=str(sim.ca_path), timeout=10)  # no client certificate
    expired = make_identity(sim, days=-1)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, cert=expired.cert, verify=str(sim.ca_path), timeout=10)
    foreign = Simulator(tmp_path / "foreign")  # its own CA; never started
    foreign_identity = make_identity(foreign)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, cert=foreign_identity.cert, verify=str(sim.ca_path), timeout=10)
    foreign.stop()
    ok = requests.get(url, cert=operator_identity.cert, verify=str(sim.ca_path), timeout=10)
    assert ok.status_code == 200
    assert len(_events(sim, "tls.refused", at_least=3)) >= 3


def test_volunteer_endpoints_need_the_volunteer_certificate(http, sim: Simulator) -> None:
    assert http("POST", "/sim/assign", json={}).status_code == 403


def test_every_call_is_logged(http, sim: Simulator) -> None:
    make_project(http)
    http("GET", "/api/projects/1")
    api = _events(sim, "api", at_least=2)
    assert [(e["method"], e["path"], e["status"]) for e in api[-2:]] == [
        ("PUT", "/api/projects/1", 200),
        ("GET", "/api/projects/1", 200),
    ]
    assert api[-1]["peer"] == "operator@example.org"


def _events(sim: Simulator, kind: str, at_least: int = 1) -> list[dict]:
    """Log events of ``kind``, waiting (up to 10 s) until ``at_least`` were written: a refused
    handshake is logged by the server thread just after the client already saw the alert."""
    deadline = time.monotonic() + 10
    while True:
        events = sim.log.read(kind)
        if len(events) >= at_least or time.monotonic() > deadline:
            return events
        time.sleep(0.02)


def test_drop_after_processing_still_changes_state(make_sim, make_identity) -> None:
    """The nastiest network fault: the WS did the work, the answer was lost."""
    sim = make_sim(config=SimConfig(faults=FaultConfig(drop_after_rate=1.0)))
    caller = caller_for(make_identity(sim), sim)
    with pytest.raises(requests.exceptions.ConnectionError):
        make_project(caller)
    for name in RUN_FILES:
        with pytest.raises(requests.exceptions.ConnectionError):
            caller("PUT", f"/api/projects/1/files/RUN0/{name}", data=b"x")
    with pytest.raises(requests.exceptions.ConnectionError):
        caller("PUT", "/api/projects/1/runs/0/clones/0/create")
    assert sim.store.get_job(1, 0, 0).state is SimJobState.READY
    assert sim.create_count(1, 0, 0) == 1


def test_timeouts_run_on_the_scaled_clock(make_sim, make_identity) -> None:
    sim = make_sim(config=SimConfig(clock_scale=1000))  # a 300 s timeout lasts 0.3 s
    caller = caller_for(make_identity(sim), sim)
    make_project(caller, timeout=300)
    upload_run(caller)
    caller("PUT", "/api/projects/1/runs/0/clones/0/create")
    assignment = sim.store.assign("test-volunteer")  # what /sim/assign does for a volunteer
    assert assignment is not None
    assert sim.status()["busy"] == {"test-volunteer": "P1 R0 C0 G0"}
    job = sim.wait_for_job(1, 0, 0, {"READY"}, timeout=10)
    assert (job.assigns, job.retries) == (1, 0)
    assert sim.status()["busy"] == {}


def test_late_returns_after_a_timeout(http, sim: Simulator) -> None:
    """First valid return of a GEN wins; a late fault does not disturb the new holder."""
    make_project(http, timeout=300)
    upload_run(http)
    http("PUT", "/api/projects/1/runs/0/clones/0/create")
    first = sim.store.assign("vol-a")
    sim.advance_clock(301)  # vol-a vanished
    second = sim.store.assign("vol-b")
    assert first and second and sim.store.get_job(1, 0, 0).assigns == 2
    job = sim.store.fault(first.token, "late fault", max_retries=1)
    assert (job.state, job.retries) == (SimJobState.ASSIGNED, 0)
    job = sim.store.finish(second.token, gens=1, write_results=lambda job: None)
    assert job.state is SimJobState.FINISHED
    with pytest.raises(HttpError) as refused:
        sim.store.finish(first.token, gens=1, write_results=lambda job: None)
    assert refused.value.status == 409


def test_a_handler_bug_is_a_500_with_the_traceback_logged(http, sim: Simulator, caplog) -> None:
    """A ValueError inside a handler is the simulator's fault, not the caller's: never a 400."""
    make_project(http)

    def broken(*args: object) -> None:
        raise ValueError("unexpected value in the store")

    sim.store.get_job = broken  # the instance attribute shadows the method for this simulator
    with caplog.at_level(logging.ERROR, logger="fahflow.sim"):
        answer = http("GET", "/api/projects/1/runs/0/clones/0")
    assert answer.status_code == 500
    assert answer.json()["error"] == "simulator bug: ValueError: unexpected value in the store"
    assert "simulator bug on GET /api/projects/1/runs/0/clones/0" in caplog.text
    assert "Traceback" in caplog.text and "in broken" in caplog.text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([1, 2], "project must be a JSON object, got [1, 2]"),
        ({**PROJECT, "core_id": "35"}, "'core_id': must be a hex string 0x00..0xff like '0x23'"),
        ({**PROJECT, "core_id": "0x100"}, "got 256"),
        ({"core_id": "0x23"}, "field 'contact' is required (a string), got None"),
        ({**PROJECT, "runs": "4"}, "field 'runs': must be an integer 0..65536, got '4'"),
        ({**PROJECT, "gens": 0}, "field 'gens': must be an integer 1..2147483647, got 0"),
        ({**PROJECT, "atoms": True}, "field 'atoms': must be an integer"),
        ({**PROJECT, "compression": "ZIP"}, "field 'compression': must be one of"),
    ],
)  # fmt: skip
def test_bad_project_bodies_are_400s_naming_the_field(http, body, words: str) -> None:
    answer = http("PUT", "/api/projects/3", json=body)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]
    assert http("GET", "/api/projects/3").status_code == 404


def test_bad_bodies_elsewhere_are_400s(http, sim: Simulator) -> None:
    answer = http("PUT", "/api/projects/1", data=b"{not json")
    assert answer.status_code == 400 and "body is not JSON" in answer.json()["error"]
    answer = http("PUT", "/api/ws/127.0.0.1/projects/1", json={"ws": 7})
    assert answer.status_code == 400 and "'ws' must be a string, got 7" in answer.json()["error"]
    answer = http("PUT", "/api/ws/127.0.0.1", json={"weight": "heavy"})
    assert answer.status_code == 400 and "'weight': must be a number" in answer.json()["error"]
    answer = http("POST", "/api/auth/csr", json={"csr": "junk"})
    assert answer.status_code == 400 and "field 'csr'" in answer.json()["error"]


def test_a_misspelt_send_variable_is_refused_when_the_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text("send: ['$home/RUN$runn/core.xml']\n")
    with pytest.raises(ConfigError) as refused:
        SimConfig.load(path)
    message = str(refused.value)
    assert str(path) in message and "'send'" in message and "$home/RUN$runn/core.xml" in message
    assert "'runn'" in message and "$clone" in message
