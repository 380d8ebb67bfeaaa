"""Contract tests: the client and the simulator are each pinned to the JSON on record.

``tests/data/ws_shapes/`` holds the WS/AS answers in the shapes of alchemiscale-fah's models, the
only client known to have run against a real work server (the README there names the model of
each file; docs/simulator.md lists every assumption next to its evidence). Two checks, one per
side, so that neither side is pinned to the other:

1. The client (``fahflow.ws.client``, public methods only) parses each recorded answer, served
   byte for byte by a stub HTTPS server that knows nothing of fahflow's models.
2. The simulator answers with the recorded shapes: the same keys, and for each key only JSON
   types seen on record (``null`` on record means the field may be null).

A third check keeps the simulator's own reading: it imports neither the client's models nor its
errors.
"""

from __future__ import annotations

import ast
import http.server
import json
import re
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fahflow.sim import Simulator
from fahflow.sim.ca import CertificateAuthority
from fahflow.ws.client import AssignmentServerClient, WorkServerClient

SHAPES = Path(__file__).parent / "data" / "ws_shapes"
SIM_SOURCES = Path(__file__).parents[1] / "src" / "fahflow" / "sim"
CLIENT_ERRORS = {
    "WorkServerError", "NotFound", "Conflict", "CertificateError", "TransientError",
    "OutcomeUnknown", "OutcomeUnknownError",
}  # fmt: skip
P, R, C = 10001, 0, 3


def shape(name: str) -> Any:
    return json.loads((SHAPES / name).read_text())


# --------------------------------------------------------------------------------------------------
# 1. The client reads the recorded answers
# --------------------------------------------------------------------------------------------------

RECORDED = {
    "/api/projects": "projects.json",
    f"/api/projects/{P}": "project.json",
    f"/api/projects/{P}/files": "files.json",
    f"/api/projects/{P}/runs/{R}/clones/{C}": "job.json",
    f"/api/projects/{P}/jobs": "jobs.json",
    f"/api/projects/{P}/runs/{R}/clones/{C}/files": "files.json",
    f"/api/projects/{P}/runs/{R}/clones/{C}/gens/0/files": "files.json",
    "/api/ws/10.0.0.1": "as_ws.json",
    f"/api/ws/10.0.0.1/projects/{P}": "as_project.json",
}
"""GET path -> the recorded file served as its answer (the query string is ignored)."""


class RecordServer:
    """HTTPS on 127.0.0.1 answering GETs with the recorded files' bytes (404 otherwise); the
    certificate comes from a throwaway simulator CA. No client certificate is asked for: this
    pins the parsing, not the TLS (tests/test_ws_client.py does that)."""

    def __init__(self, ca_dir: Path) -> None:
        self.ca = CertificateAuthority.load_or_create(ca_dir)
        self.seen: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.server_cert_path, self.ca.server_key_path)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                owner.seen.append(self.path)
                name = RECORDED.get(path)
                body = (SHAPES / name).read_bytes() if name else b'{"error": "not recorded"}'
                self.send_response(200 if name else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def record_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordServer]:
    server = RecordServer(tmp_path_factory.mktemp("record-ca"))
    yield server
    server.close()


@pytest.fixture
def ws(record_server: RecordServer) -> Iterator[WorkServerClient]:
    verify = str(record_server.ca.ca_path)
    with WorkServerClient(record_server.url, cert=None, verify=verify, retries=0) as client:
        yield client


def test_client_reads_recorded_projects(ws: WorkServerClient) -> None:
    assert ws.list_projects() == [10001, 10002]  # the object keyed by id
    project = ws.get_project(P)
    assert (project.core_id, project.runs, project.clones, project.atoms) == (0x23, 0, 0, 2000)
    assert project.to_json() == shape("project.json")


def test_client_reads_a_recorded_job(ws: WorkServerClient) -> None:
    job = ws.get_job(P, R, C)
    assert (job.server, job.core, job.project, job.run, job.clone, job.gen) == (1, 35, P, R, C, 0)
    assert job.state == "FINISHED"
    assert job.last == datetime(2026, 11, 26, 14, 30, 0, 123456, tzinfo=UTC)
    assert (job.retries, job.assigns, job.progress) == (None, None, None)


def test_client_reads_a_recorded_jobs_answer(ws: WorkServerClient) -> None:
    answer = ws.jobs_since(P, datetime(2026, 11, 26, tzinfo=UTC))
    assert [(j.clone, j.state) for j in answer.jobs] == [(3, "FINISHED"), (4, "READY")]
    assert answer.jobs[1].core is None and answer.jobs[1].last is None
    assert answer.ts == datetime(2026, 11, 26, 14, 31, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize("listing", ["project", "clone", "gen"])
def test_client_reads_recorded_file_listings(ws: WorkServerClient, listing: str) -> None:
    files = {
        "project": lambda: ws.list_project_files(P),
        "clone": lambda: ws.list_clone_files(P, R, C),
        "gen": lambda: ws.list_gen_files(P, R, C, 0),
    }[listing]()
    assert [(f.path, f.size) for f in files] == [
        ("RUN0/CLONE3/state.xml.bz2", 48213),
        ("alchemiscale-project.txt", 211),
    ]
    assert files[0].modified == datetime(2026, 11, 26, 14, 29, 58, 500000, tzinfo=UTC)


def test_client_reads_recorded_as_answers(record_server: RecordServer) -> None:
    verify = str(record_server.ca.ca_path)
    with AssignmentServerClient(record_server.url, cert=None, verify=verify) as as_:
        ws_data = as_.get_ws("10.0.0.1")
        assert (ws_data.max_assign_rate, ws_data.weight, ws_data.constraints) == (1.0, 1.0, "beta")
        project = as_.get_project("10.0.0.1", P)
        assert (project.ws, project.weight, project.constraints) == ("10.0.0.1", 0.5, "beta")


# --------------------------------------------------------------------------------------------------
# 2. The simulator answers in the recorded shapes
# --------------------------------------------------------------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def types_on_record(*examples: dict[str, Any]) -> dict[str, set[str]]:
    """Key -> the JSON types seen for it across the recorded examples of one shape."""
    seen: dict[str, set[str]] = {}
    for example in examples:
        for key, value in example.items():
            seen.setdefault(key, set()).add(json_type(value))
    return seen


def assert_shape(answer: Any, record: dict[str, set[str]], what: str) -> None:
    assert isinstance(answer, dict), f"{what}: not an object: {answer!r}"
    assert set(answer) == set(record), f"{what}: keys {sorted(answer)} != {sorted(record)}"
    wrong = {k: json_type(v) for k, v in answer.items() if json_type(v) not in record[k]}
    assert not wrong, f"{what}: types {wrong} not on record ({record})"


def assert_time(text: str, what: str) -> None:
    """Times on record are ISO 8601 in UTC with a ``Z``."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), f"{what}: {text!r}"


JOB = types_on_record(shape("job.json"), *shape("jobs.json")["jobs"])
PROJECT = types_on_record(shape("project.json"), *shape("projects.json").values())
FILE = types_on_record(*shape("files.json"))
AS_WS = types_on_record(shape("as_ws.json"))
AS_PROJECT = types_on_record(shape("as_project.json"))


@pytest.fixture
def sim_answers(sim: Simulator, operator_identity) -> dict[str, Any]:
    """The peer's flow against the simulator (project with runs=0, clones=0; RUN files; CLONEs
    created with both forms; AS settings), and every answer as raw JSON."""
    http = operator_identity.session()

    def call(method: str, path: str, **kw: Any) -> Any:
        answer = http.request(method, f"{sim.url}{path}", timeout=10, **kw)
        assert answer.status_code == 200, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    project = f"/api/projects/{P}"
    out = {"put_project": call("PUT", project, json=shape("project.json"))}
    for name in ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2"):
        call("PUT", f"{project}/files/RUN{R}/{name}", data=b"x")
    out["create_run"] = call("PUT", f"{project}/runs/{R}/create", json={"clones": C + 1})
    out["create_clone"] = call("PUT", f"{project}/runs/{R}/clones/{C + 1}/create")
    out["projects"] = call("GET", "/api/projects")
    out["project"] = call("GET", project)
    out["job"] = call("GET", f"{project}/runs/{R}/clones/{C}")
    out["stop"] = call("PUT", f"{project}/runs/{R}/clones/{C}/stop")
    out["jobs"] = call("GET", f"{project}/jobs", params={"since": "2000-01-01T00:00:00Z"})
    out["files"] = call("GET", f"{project}/files")
    (sim.project_home(P) / f"RUN{R}" / f"CLONE{C}" / "results0").mkdir(parents=True)
    (sim.project_home(P) / f"RUN{R}" / f"CLONE{C}" / "results0" / "globals.csv").write_text("x")
    out["clone_files"] = call("GET", f"{project}/runs/{R}/clones/{C}/files")
    out["gen_files"] = call("GET", f"{project}/runs/{R}/clones/{C}/gens/0/files")
    call("PUT", "/api/ws/10.0.0.1", json={"max_assign_rate": 1.0, "weight": 1.0})
    call("PUT", f"/api/ws/10.0.0.1/projects/{P}", json={"weight": 0.5, "contraints": "beta"})
    out["as_ws"] = call("GET", "/api/ws/10.0.0.1")
    out["as_project"] = call("GET", f"/api/ws/10.0.0.1/projects/{P}")
    http.close()
    return out


def test_simulator_projects_have_the_recorded_shape(sim_answers: dict[str, Any]) -> None:
    assert sim_answers["project"] == sim_answers["put_project"] == shape("project.json")
    assert list(sim_answers["projects"]) == [str(P)]  # an object keyed by id, as on record
    for what in ("project", "put_project"):
        assert_shape(sim_answers[what], PROJECT, what)
    assert_shape(sim_answers["projects"][str(P)], PROJECT, "projects[10001]")
    assert re.fullmatch(r"0x[0-9a-f]{2}", sim_answers["project"]["core_id"])


def test_simulator_jobs_have_the_recorded_shape(sim_answers: dict[str, Any]) -> None:
    runs = sim_answers["create_run"]
    assert isinstance(runs, list) and [j["clone"] for j in runs] == list(range(C + 1))
    jobs = sim_answers["jobs"]
    assert set(jobs) == {"jobs", "ts"} and isinstance(jobs["jobs"], list)
    assert_time(jobs["ts"], "jobs.ts")
    every = [
        *runs, sim_answers["create_clone"], sim_answers["job"], sim_answers["stop"],
        *jobs["jobs"],
    ]  # fmt: skip
    for job in every:
        assert_shape(job, JOB, f"job {job.get('clone')}")
        assert_time(job["last"], "job.last")
    assert sim_answers["job"]["core"] == 0x23  # an integer, as JobData.core on record
    assert sim_answers["job"]["server"] == 1


def test_simulator_file_listings_have_the_recorded_shape(sim_answers: dict[str, Any]) -> None:
    for what in ("files", "clone_files", "gen_files"):
        listing = sim_answers[what]
        assert isinstance(listing, list) and listing, what
        for entry in listing:
            assert_shape(entry, FILE, what)
            assert_time(entry["modified"], f"{what}.modified")
    assert [f["path"] for f in sim_answers["gen_files"]] == ["globals.csv"]


def test_simulator_as_answers_have_the_recorded_shape(sim_answers: dict[str, Any]) -> None:
    assert_shape(sim_answers["as_ws"], AS_WS, "AS work server")
    assert_shape(sim_answers["as_project"], AS_PROJECT, "AS project")
    assert sim_answers["as_project"] == shape("as_project.json")


# --------------------------------------------------------------------------------------------------
# 3. The simulator keeps its own reading
# --------------------------------------------------------------------------------------------------


def _imports(path: Path) -> Iterator[tuple[str, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.module, alias.name) for alias in node.names)


def test_simulator_imports_neither_client_models_nor_client_errors() -> None:
    sources = sorted(SIM_SOURCES.rglob("*.py"))
    assert len(sources) > 10
    found = [
        f"{path.relative_to(SIM_SOURCES)}: {module} {name}".strip()
        for path in sources
        for module, name in _imports(path)
        if module.startswith("fahflow.ws")
        or (module == "fahflow" and name == "ws")
        or (module == "fahflow.errors" and name in CLIENT_ERRORS)
    ]
    assert found == []
