"""The WS/AS client over real mutual TLS.

Part 1 runs against :class:`MiniServer`, a tiny stdlib HTTPS server that requires client
certificates and answers from a script, so retries, timeouts, refusals and renewal can be provoked
exactly and counted. Part 2 round-trips every endpoint against the simulator (``fahflow.sim``).
:class:`Pki` and :class:`MiniServer` are imported by ``test_certs.py`` and ``test_cli_ws_cert.py``.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from fahflow.atomic import write_bytes
from fahflow.errors import (
    CertificateError,
    ConfigError,
    Conflict,
    NotFound,
    OutcomeUnknown,
    TransientError,
    WorkServerError,
)
from fahflow.ws import certs
from fahflow.ws.client import AssignmentServerClient, Repeat, WorkServerClient, parse_timeout
from fahflow.ws.models import ASProjectData, ASWorkServerData, JobAction, JobState, ProjectData

EMAIL = "operator@example.org"

# --------------------------------------------------------------------------------------------------
# A test PKI and a scriptable mTLS server
# --------------------------------------------------------------------------------------------------


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Pki:
    """A throwaway certificate authority writing its files under ``root``."""

    def __init__(self, root: Path, name: str = "fahflow test CA") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self._client_key: rsa.RSAPrivateKey | None = None
        self.ca_path = root / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        public_key: Any,
        cn: str,
        *,
        not_before: datetime | None = None,
        days: float = 30,
        server: bool = False,
    ) -> bytes:
        start = not_before or datetime.now(UTC) - timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
        )
        if server:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def sign_csr(self, csr_pem: bytes, days: float = 30) -> bytes:
        csr = x509.load_pem_x509_csr(csr_pem)
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return self.issue(csr.public_key(), str(cn), days=days)

    def client(
        self, name: str, email: str = EMAIL, *, days: float = 30, not_before: datetime | None = None
    ) -> tuple[Path, Path]:
        """Write ``name.key`` and ``name.pem`` issued by this CA.

        All clients of one CA share one key (RSA key generation costs 0.1-0.4 s here); tests that
        need another key make one.
        """
        if self._client_key is None:
            self._client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key = self._client_key
        key_path = write_bytes(self.root / f"{name}.key", _pem_key(key), perms=0o600)
        cert_path = self.root / f"{name}.pem"
        cert_path.write_bytes(self.issue(key.public_key(), email, days=days, not_before=not_before))
        return cert_path, key_path

    def server_files(self) -> tuple[Path, Path]:
        key_path, cert_path = self.root / "server.key", self.root / "server.pem"
        if cert_path.exists():
            return cert_path, key_path
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_path.write_bytes(_pem_key(key))
        cert_path.write_bytes(self.issue(key.public_key(), "127.0.0.1", server=True))
        return cert_path, key_path


@dataclass
class Reply:
    """One scripted answer. ``hang``: wait until the test ends (or ``release``) before answering;
    ``truncate``: announce the full body but send half of it, then drop the connection."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    truncate: bool = False


@dataclass
class Seen:
    method: str
    path: str
    body: bytes
    client_serial: int | None


class MiniServer:
    """HTTPS on 127.0.0.1 that requires a client certificate from ``pki``.

    Answers come from ``script`` (first in, first out); without a script it behaves like a
    minimal WS/AS: stores PUT bodies, serves them on GET, signs CSRs on ``POST /api/auth/csr``
    and answers ``{}`` otherwise.
    """

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.script: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.store: dict[str, bytes] = {}
        self.release = threading.Event()
        self.renew_days = 30.0
        cert_path, key_path = pki.server_files()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        context.load_verify_locations(pki.ca_path)
        context.verify_mode = ssl.CERT_REQUIRED
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                der = self.connection.getpeercert(binary_form=True)
                serial = x509.load_der_x509_certificate(der).serial_number if der else None
                owner.seen.append(Seen(self.command, self.path, body, serial))
                reply = owner.script.popleft() if owner.script else owner.default(self, body)
                if reply.hang:
                    owner.release.wait(30)
                data = reply.body
                if not isinstance(data, bytes):
                    data = json.dumps({} if data is None else data).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if reply.truncate:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # refused handshakes are the point of some tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(
            self.httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def default(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> Reply:
        path = handler.path.split("?")[0]
        if handler.command == "POST" and path == "/api/auth/csr":
            csr = json.loads(body)["csr"].encode()
            return Reply(body=self.pki.sign_csr(csr, days=self.renew_days))
        if handler.command == "PUT" and "/files/" in path:
            self.store[path] = body
            return Reply()
        if handler.command == "GET" and path in self.store:
            return Reply(body=self.store[path])
        if handler.command == "GET" and path.endswith("/files"):
            names = [k[len(path) + 1 :] for k in self.store if k.startswith(path + "/")]
            return Reply(body=[{"path": n, "size": len(self.store[f"{path}/{n}"])} for n in names])
        return Reply()

    def __enter__(self) -> MiniServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def operator(pki: Pki) -> tuple[Path, Path]:
    return pki.client("operator")


@pytest.fixture
def server(pki: Pki) -> Any:
    with MiniServer(pki) as srv:
        yield srv


class Sleeps(list[float]):
    """Stands in for ``time.sleep`` in the client: records the backoff instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_ws(server: MiniServer, cert: tuple[Path, Path] | None, **kw: Any) -> WorkServerClient:
    kw.setdefault("retries", 3)
    kw.setdefault("timeout", (2.0, 5.0))
    ws = WorkServerClient(server.url, cert=cert, verify=server.pki.ca_path, **kw)
    ws._sleep = Sleeps()
    return ws


JOB = {
    "server": "127.0.0.1",
    "core": "0x23",
    "project": 90001,
    "run": 0,
    "clone": 3,
    "gen": 0,
    "state": "READY",
    "last": "2026-11-26T14:00:00Z",
    "retries": 0,
    "assigns": 1,
    "progress": 0.5,
    "a_field_from_a_newer_ws": {"x": 1},
}

# --------------------------------------------------------------------------------------------------
# Part 1: behaviour against the scripted server
# --------------------------------------------------------------------------------------------------


def test_answer_parsed_into_models_tolerating_unknown_fields(server, operator):
    server.script.append(Reply(body=JOB))
    with make_ws(server, operator) as ws:
        job = ws.get_job(90001, 0, 3)
    assert job.state is JobState.READY and job.core == 0x23 and job.clone == 3
    assert job.last == datetime(2026, 11, 26, 14, tzinfo=UTC)
    assert [(s.method, s.path) for s in server.seen] == [
        ("GET", "/api/projects/90001/runs/0/clones/3")
    ]


def test_transient_503_is_retried_with_growing_jittered_backoff(server, operator):
    server.script.extend([Reply(503, b"busy"), Reply(503, b"busy"), Reply(body=JOB)])
    ws = make_ws(server, operator, backoff_s=0.4)
    assert ws.get_job(90001, 0, 3).run == 0
    assert len(server.seen) == 3
    first, second = ws._sleep
    assert 0.2 <= first <= 0.4 and 0.4 <= second <= 0.8


def test_retries_exhausted_raise_transient_error_naming_request_and_answer(server, operator):
    server.script.extend(Reply(503, b"overloaded, come back later") for _ in range(4))
    ws = make_ws(server, operator, retries=3)
    with pytest.raises(TransientError) as info:
        ws.get_project(90001)
    err = info.value
    assert len(server.seen) == 4 and len(ws._sleep) == 3
    assert err.status == 503 and err.method == "GET"
    assert err.url == f"{server.url}/api/projects/90001"
    text = str(err)
    assert "GET" in text and err.url in text and "overloaded" in text and "4 attempts" in text


def test_retry_after_header_sets_the_minimum_wait(server, operator):
    server.script.extend([Reply(429, headers={"Retry-After": "3"}), Reply(body=[])])
    ws = make_ws(server, operator, backoff_s=0.01)
    assert ws.list_project_files(90001) == []
    assert ws._sleep == [3.0]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, NotFound),
        (400, Conflict),
        (409, Conflict),
        (401, CertificateError),
        (403, CertificateError),
        (500, WorkServerError),
    ],
)
def test_client_errors_are_typed_and_never_retried(server, operator, status, error):
    server.script.append(Reply(status, b'{"error": "Job 90001:0:3 not found"}'))
    ws = make_ws(server, operator)
    with pytest.raises(error) as info:
        ws.get_job(90001, 0, 3)
    assert type(info.value) is error
    assert len(server.seen) == 1 and ws._sleep == []
    assert info.value.status == status and "not found" in str(info.value)


@pytest.mark.parametrize("call", ["create", "restart"])
def test_non_idempotent_calls_are_not_retried_on_transient_failure(server, operator, call):
    server.script.append(Reply(503))
    ws = make_ws(server, operator)
    with pytest.raises(OutcomeUnknown, match="not idempotent") as info:
        if call == "create":
            ws.create_clone(90001, 0, 3)
        else:
            ws.restart_job(90001, 0, 3)
    assert len(server.seen) == 1 and ws._sleep == []
    assert not isinstance(info.value, TransientError)  # TransientError means "safe to retry"
    assert info.value.status == 503 and info.value.method == "PUT"
    check = "check with `fahflow ws job 90001 0 3` before trying again"
    why = "not retried because the call is not idempotent"
    assert info.value.check == check
    assert str(info.value).endswith(f"the outcome is unknown ({why}): {check}")


@pytest.mark.parametrize("lost", ["read timeout", "dropped", "502", "504"])
def test_create_whose_answer_was_lost_has_an_unknown_outcome(server, operator, lost):
    """The request went out; what the WS did is unknown: one attempt, then OutcomeUnknown."""
    server.script.append(
        {
            "read timeout": Reply(hang=True),
            "dropped": Reply(body=b"x" * 10_000, truncate=True),
            "502": Reply(502, b"bad gateway"),
            "504": Reply(504, b"gateway timeout"),
        }[lost]
    )
    ws = make_ws(server, operator, timeout=(2.0, 0.3))
    with pytest.raises(OutcomeUnknown, match=r"outcome is unknown.*fahflow ws job 7 0 3"):
        ws.create_clone(7, 0, 3)
    assert len(server.seen) == 1 and ws._sleep == []


def test_429_on_a_non_idempotent_call_is_retried(server, operator):
    """429 turns the request away before it is acted on, so even a create may be repeated."""
    server.script.extend([Reply(429, headers={"Retry-After": "2"}), Reply()])
    ws = make_ws(server, operator, backoff_s=0.01)
    ws.create_clone(7, 0, 3)
    assert [s.path for s in server.seen] == ["/api/projects/7/runs/0/clones/3/create"] * 2
    assert ws._sleep == [2.0]


def test_renewal_whose_answer_was_lost_is_transient_for_the_caller(server, operator):
    """A repeat of a renewal is harmless (same key, same CSR): TransientError, not retried here
    (each success issues a certificate), so that the next batch simply tries again."""
    server.script.append(Reply(503, b"busy"))
    with AssignmentServerClient(server.url, cert=operator, verify=server.pki.ca_path) as as_:
        as_._sleep = Sleeps()
        with pytest.raises(TransientError, match="renewing again is safe") as info:
            as_.renew_certificate(certs.csr_pem(operator[1], EMAIL))
    assert type(info.value) is TransientError and as_._sleep == []
    assert [(s.method, s.path) for s in server.seen] == [("POST", "/api/auth/csr")]


@pytest.mark.parametrize(
    ("form", "path", "body"),
    [
        ("clone", "/api/projects/7/runs/2/clones/5/create", b""),
        ("run-offset", "/api/projects/7/runs/2/create", {"clones": 1, "offset": 5}),
        ("run-count", "/api/projects/7/runs/2/create", {"clones": 6}),
    ],
)
def test_create_form_is_configurable(server, operator, form, path, body):
    make_ws(server, operator, create_form=form).create_clone(7, 2, 5)
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("PUT", path)
    assert (json.loads(seen.body) if seen.body else b"") == body


@pytest.mark.parametrize("action", list(JobAction))
def test_job_actions(server, operator, action):
    make_ws(server, operator).job_action(7, 1, 2, action)
    assert [(s.method, s.path) for s in server.seen] == [
        ("PUT", f"/api/projects/7/runs/1/clones/2/{action.value}")
    ]


def test_upload_is_streamed_from_disk_and_reread_on_retry(server, operator, tmp_path):
    src = tmp_path / "state.xml.bz2"
    payload = bytes(range(256)) * 5000
    src.write_bytes(payload)
    server.script.append(Reply(503))
    ws = make_ws(server, operator)
    ws.put_file(7, "RUN0/CLONE3/state.xml.bz2", src)
    assert [s.body == payload for s in server.seen] == [True, True]
    assert server.store["/api/projects/7/files/RUN0/CLONE3/state.xml.bz2"] == payload


def test_download_broken_mid_stream_is_retried_and_lands_whole(server, operator, tmp_path):
    payload = b"Step,Time,protocol_work\n" * 4000
    server.script.extend([Reply(body=payload, truncate=True), Reply(body=payload)])
    dest = tmp_path / "out" / "globals.csv"
    ws = make_ws(server, operator)
    assert ws.get_gen_file(7, 0, 3, 0, "globals.csv", dest) == dest
    assert dest.read_bytes() == payload and len(server.seen) == 2
    assert server.seen[0].path == "/api/projects/7/runs/0/clones/3/gens/0/files/globals.csv"


def test_failed_download_leaves_the_old_file_and_no_temp_files(server, operator, tmp_path):
    dest = tmp_path / "globals.csv"
    dest.write_bytes(b"old")
    server.script.append(Reply(body=b"x" * 100_000, truncate=True))
    with pytest.raises(TransientError):
        make_ws(server, operator, retries=0).get_clone_file(7, 0, 3, "globals.csv", dest)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["globals.csv"]


GEN_FILES = "/api/projects/7/runs/0/clones/3/gens/0/files"


def _partials(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.part-*"))


def test_download_gen_fetches_a_whole_set_then_replaces(server, operator, tmp_path):
    server.store[f"{GEN_FILES}/globals.csv"] = b"Step,Time\n0,0\n"
    server.store[f"{GEN_FILES}/logs/science.log"] = b"done\n"
    out = tmp_path / "results" / "p7-r0-c3-g0"
    ws = make_ws(server, operator)
    got = ws.download_gen(7, 0, 3, 0, out)
    assert sorted(got) == [out / "globals.csv", out / "logs" / "science.log"]
    assert (out / "logs" / "science.log").read_bytes() == b"done\n"
    assert _partials(out) == []
    # again into the same folder: files replaced in place, others left alone
    (out / "globals.csv").write_text("stale\n")
    (out / "mine.txt").write_text("kept\n")
    ws.download_gen(7, 0, 3, 0, out)
    assert (out / "globals.csv").read_bytes() == b"Step,Time\n0,0\n"
    assert (out / "mine.txt").read_text() == "kept\n" and _partials(out) == []


def test_download_gen_broken_midway_leaves_the_folder_as_it_was(server, operator, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "globals.csv").write_bytes(b"old")
    listing = [{"path": "globals.csv", "size": 3}, {"path": "science.log", "size": 5}]
    server.script.extend(
        [Reply(body=listing), Reply(body=b"new"), Reply(body=b"x" * 100_000, truncate=True)]
    )
    with pytest.raises(TransientError):
        make_ws(server, operator, retries=0).download_gen(7, 0, 3, 0, out)
    assert [p.name for p in out.iterdir()] == ["globals.csv"]
    assert (out / "globals.csv").read_bytes() == b"old" and _partials(out) == []


def test_download_gen_without_files_names_the_gen_and_the_job_state(server, operator, tmp_path):
    server.script.extend([Reply(body=[]), Reply(body=JOB)])
    out = tmp_path / "out"
    with pytest.raises(NotFound, match=r"GEN 0 of job 7:0:3 has no result files \(job is READY\)"):
        make_ws(server, operator).download_gen(7, 0, 3, 0, out)
    assert not out.exists() and _partials(out) == []
    out.write_text("a file")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        make_ws(server, operator).download_gen(7, 0, 3, 0, out)


def test_read_timeout_fires_and_is_retried_for_reads(server, operator):
    server.script.extend([Reply(hang=True), Reply(hang=True)])
    ws = make_ws(server, operator, timeout=(2.0, 0.3), retries=1)
    with pytest.raises(TransientError, match=r"(?i)timed? ?out"):
        ws.get_job(7, 0, 0)
    assert len(server.seen) == 2


def test_per_call_timeout_overrides_the_default(server, operator):
    server.script.append(Reply(hang=True))
    ws = make_ws(server, operator, timeout=(2.0, 30.0), retries=0)
    with pytest.raises(TransientError):
        ws._call(
            "GET", "/api/projects", lambda r: r.json(), repeat=Repeat.BY_CLIENT, timeout=(2.0, 0.2)
        )


def test_connection_refused_is_transient_and_retried(pki, operator):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ws = WorkServerClient(f"https://127.0.0.1:{port}", cert=operator, verify=pki.ca_path, retries=2)
    ws._sleep = sleeps = Sleeps()
    with pytest.raises(TransientError, match="3 attempts"):
        ws.create_clone(7, 0, 0)  # never sent, so even create may be retried
    assert len(sleeps) == 2


def test_client_without_certificate_is_refused(server):
    ws = make_ws(server, None)
    with pytest.raises(CertificateError, match="TLS"):
        ws.list_projects()
    assert ws._sleep == []


def test_client_certificate_from_another_ca_is_refused(server, tmp_path):
    foreign = Pki(tmp_path / "foreign", "some other CA").client("intruder")
    ws = make_ws(server, foreign)
    with pytest.raises(CertificateError):
        ws.list_projects()
    assert ws._sleep == []


def test_server_is_verified_by_default(server, operator):
    """Without the CA bundle the test server's certificate is untrusted: refused, not ignored."""
    ws = WorkServerClient(server.url, cert=operator, retries=0)
    with pytest.raises(CertificateError, match="verify"):
        ws.list_projects()
    assert server.seen == []


def test_renewed_certificate_is_used_by_the_next_call(server, pki, tmp_path):
    cert, key = pki.client("renewing", days=30, not_before=datetime.now(UTC) - timedelta(days=25))
    old_serial = certs.certificate_info(cert).serial
    ws = make_ws(server, (cert, key))
    ws.list_project_files(1)  # opens a kept-alive connection with the old certificate
    with AssignmentServerClient(server.url, cert=(cert, key), verify=pki.ca_path) as as_:
        assert certs.renew_if_needed(cert, key, as_, min_fraction_left=0.3) is True
        assert certs.renew_if_needed(cert, key, as_, min_fraction_left=0.3) is False
    new_serial = certs.certificate_info(cert).serial
    assert new_serial != old_serial
    assert certs.certificate_info(cert.with_name("renewing.pem.bak")).serial == old_serial
    ws.list_project_files(1)
    first, csr, second = server.seen
    assert (csr.method, csr.path, csr.client_serial) == ("POST", "/api/auth/csr", old_serial)
    assert first.client_serial == old_serial and second.client_serial == new_serial


def test_as_client_weights_round_trip_paths(server, operator):
    server.script.extend([Reply(body={"weight": 2.5, "constraints": "", "extra": 1}), Reply()])
    with AssignmentServerClient(server.url, cert=operator, verify=server.pki.ca_path) as as_:
        assert as_.get_project("10.0.0.1", 7).weight == 2.5
        as_.put_project("10.0.0.1", 7, ASProjectData(weight=0.5, constraints="beta"))
    get, put = server.seen
    assert get.path == put.path == "/api/ws/10.0.0.1/projects/7"
    assert json.loads(put.body) == {"weight": 0.5, "constraints": "beta"}


def test_jobs_since_sends_utc_second(server, operator):
    server.script.append(Reply(body={"jobs": [JOB], "ts": "2026-11-26T14:30:00Z"}))
    since = datetime(2026, 11, 26, 15, 29, 59, 900_000, tzinfo=timezone(timedelta(hours=1)))
    result = make_ws(server, operator).jobs_since(7, since)
    assert server.seen[0].path == "/api/projects/7/jobs?since=2026-11-26T14%3A29%3A59Z"
    assert result.ts == datetime(2026, 11, 26, 14, 30, tzinfo=UTC) and len(result.jobs) == 1


def test_unexpected_answer_is_a_work_server_error(server, operator):
    server.script.extend([Reply(body={"state": "EXPLODED"}), Reply(body=b"<html>")])
    ws = make_ws(server, operator)
    with pytest.raises(WorkServerError, match="unexpected data"):
        ws.get_job(7, 0, 0)
    with pytest.raises(WorkServerError, match="non-JSON"):
        ws.list_projects()


# -- bad inputs ------------------------------------------------------------------------------------


def test_bad_project_data_names_field_and_value():
    with pytest.raises(ValidationError, match=r"core_id[\s\S]*'23'"):
        ProjectData(core_id="23", contact=EMAIL)
    with pytest.raises(ValidationError, match=r"timeout[\s\S]*300"):
        ProjectData(core_id="0x23", contact=EMAIL, timeout=30)


@pytest.mark.parametrize(
    ("value", "expected"), [((5, 60), (5.0, 60.0)), (30, (30.0, 30.0)), ([1.5, 2], (1.5, 2.0))]
)
def test_timeout_forms(value, expected):
    assert parse_timeout(value) == expected


@pytest.mark.parametrize("value", [None, "30s", (5,), (0, 60), (5, -1), True, (5, None)])
def test_bad_timeout_says_which_form_to_use(value):
    with pytest.raises(ConfigError, match=r"\(connect_s, read_s\)"):
        parse_timeout(value)


def test_bad_client_arguments(server, operator, tmp_path):
    ca = server.pki.ca_path
    with pytest.raises(ConfigError, match=r"missing\.pem"):
        WorkServerClient(server.url, cert=(tmp_path / "missing.pem", operator[1]), verify=ca)
    with pytest.raises(ConfigError, match="CA bundle not found"):
        WorkServerClient(server.url, cert=operator, verify=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="https://"):
        WorkServerClient("http://127.0.0.1:1", cert=operator, verify=ca)
    with pytest.raises(ConfigError, match="create_form"):
        WorkServerClient(server.url, cert=operator, verify=ca, create_form="magic")  # type: ignore[arg-type]
    ws = make_ws(server, operator)
    with pytest.raises(ConfigError, match=r"not found: .*absent\.xml"):
        ws.put_file(7, "core.xml", tmp_path / "absent.xml")
    for path in ["../etc/passwd", "/abs", "RUN0//x", "a\\b", ""]:
        with pytest.raises(ConfigError, match="file path"):
            ws.get_file(7, path, tmp_path / "x")
    with pytest.raises(ConfigError, match="run must be at most 65535"):
        ws.get_job(7, 65536, 0)
    with pytest.raises(ConfigError, match="clone must be a non-negative integer"):
        ws.get_job(7, 0, "3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="job action"):
        ws.job_action(7, 0, 0, "explode")
    assert server.seen == []


def test_trailing_api_in_url_is_tolerated(server, operator):
    ws = WorkServerClient(server.url + "/api/", cert=operator, verify=server.pki.ca_path)
    server.script.append(Reply(body=[3, 1, 2]))
    assert ws.list_projects() == [1, 2, 3]
    assert server.seen[0].path == "/api/projects"


# --------------------------------------------------------------------------------------------------
# Part 2: every endpoint round-trips against the simulator
# --------------------------------------------------------------------------------------------------

PROJECT = 90001
RUN_FILES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")


def sim_ws(identity: Any, **kw: Any) -> WorkServerClient:
    kw.setdefault("retries", 2)
    kw.setdefault("backoff_s", 0.01)
    return WorkServerClient(identity.url, cert=identity.cert, verify=identity.ca_path, **kw)


def test_projects_round_trip(sim, operator_identity):
    data = ProjectData(core_id="0x23", contact=EMAIL, runs=2, clones=10, atoms=125, credit=50)
    with sim_ws(operator_identity) as ws:
        assert ws.list_projects() == []
        ws.put_project(PROJECT, data)
        ws.put_project(PROJECT, data)  # idempotent
        ws.put_project(PROJECT + 1, data.model_copy(update={"core_id": 0x22}))
        assert ws.list_projects() == [PROJECT, PROJECT + 1]
        assert ws.get_project(PROJECT) == data
        assert ws.get_project(PROJECT + 1).core_id == 0x22
        ws.delete_project(PROJECT + 1)
        assert ws.list_projects() == [PROJECT]
        with pytest.raises(NotFound, match=f"/api/projects/{PROJECT + 1}"):
            ws.get_project(PROJECT + 1)


def test_files_jobs_and_results_round_trip(sim, operator_identity, tiny_wu, tmp_path):
    with sim_ws(operator_identity) as ws:
        ws.put_project(PROJECT, ProjectData(core_id="0x23", contact=EMAIL, runs=1, clones=10))
        # project/RUN files, streamed from disk and from bytes
        for name in RUN_FILES:
            ws.put_file(PROJECT, f"RUN0/{name}", tiny_wu / name)
        ws.put_file(PROJECT, "RUN0/notes.txt", b"scratch")
        listing = {f.path: f.size for f in ws.list_project_files(PROJECT)}
        assert listing == {
            **{f"RUN0/{n}": (tiny_wu / n).stat().st_size for n in RUN_FILES},
            "RUN0/notes.txt": 7,
        }
        back = ws.get_file(PROJECT, "RUN0/system.xml.bz2", tmp_path / "dl" / "system.xml.bz2")
        assert back.read_bytes() == (tiny_wu / "system.xml.bz2").read_bytes()
        ws.delete_file(PROJECT, "RUN0/notes.txt")
        with pytest.raises(NotFound):
            ws.get_file(PROJECT, "RUN0/notes.txt", tmp_path / "notes.txt")
        assert not (tmp_path / "notes.txt").exists()

        # create: once per CLONE; a second create of the same job is refused, not repeated
        before = datetime.now(UTC) - timedelta(seconds=1)
        ws.create_clone(PROJECT, 0, 0)
        with pytest.raises(Conflict):
            ws.create_clone(PROJECT, 0, 0)
        assert sim.create_count(PROJECT, 0, 0) == 2  # our two calls, neither repeated
        job = ws.get_job(PROJECT, 0, 0)
        assert (job.project, job.run, job.clone, job.state) == (PROJECT, 0, 0, JobState.READY)
        with pytest.raises(NotFound):
            ws.get_job(PROJECT, 0, 9)

        # bulk poll, then the other create forms
        first = ws.jobs_since(PROJECT, before)
        assert [(j.run, j.clone) for j in first.jobs] == [(0, 0)]
        with sim_ws(operator_identity, create_form="run-offset") as ws2:
            ws2.create_clone(PROJECT, 0, 4)
        with sim_ws(operator_identity, create_form="run-count") as ws3:
            ws3.create_clone(PROJECT, 0, 1)  # {"clones": 2}: clone 0 exists, clone 1 is new
        clones = sorted(j.clone for j in ws.jobs_since(PROJECT, None).jobs)
        assert clones == [0, 1, 4]

        # job control
        ws.stop_job(PROJECT, 0, 4)
        assert ws.get_job(PROJECT, 0, 4).state is JobState.STOPPED
        ws.restart_job(PROJECT, 0, 4)
        assert ws.get_job(PROJECT, 0, 4).state is JobState.READY
        ws.fail_job(PROJECT, 0, 4)
        assert ws.get_job(PROJECT, 0, 4).state is JobState.FAILED
        with pytest.raises(Conflict, match="cannot stop"):
            ws.stop_job(PROJECT, 0, 4)
        ws.reset_job(PROJECT, 0, 4)
        assert ws.get_job(PROJECT, 0, 4).state is JobState.READY
        assert {j.clone for j in ws.jobs_since(PROJECT, first.ts).jobs} >= {1, 4}

        # CLONE files (up and down) and GEN results (written by the WS when a WU returns)
        ws.put_clone_file(PROJECT, 0, 1, "extra/input.dat", b"\x00\x01")
        results = sim.project_home(PROJECT) / "RUN0" / "CLONE1" / "results0"
        results.mkdir(parents=True)
        csv_text = "Step,Time,protocol_work\n0,0,0\n"
        (results / "globals.csv").write_text(csv_text)
        assert [f.path for f in ws.list_clone_files(PROJECT, 0, 1)] == [
            "extra/input.dat",
            "results0/globals.csv",
        ]
        got = ws.get_clone_file(PROJECT, 0, 1, "extra/input.dat", tmp_path / "input.dat")
        assert got.read_bytes() == b"\x00\x01"
        (gen_file,) = ws.list_gen_files(PROJECT, 0, 1, 0)
        assert (gen_file.path, gen_file.size) == ("globals.csv", len(csv_text))
        dest = tmp_path / "results" / "globals.csv"
        assert ws.get_gen_file(PROJECT, 0, 1, 0, "globals.csv", dest).read_text().startswith("Step")
        assert [p.name for p in ws.iter_gen_files(PROJECT, 0, 1, 0, tmp_path / "all")] == [
            "globals.csv"
        ]


def test_assignment_server_round_trip_and_renewal(sim, operator_identity):
    ident = operator_identity
    with AssignmentServerClient(ident.url, cert=ident.cert, verify=ident.ca_path) as as_:
        as_.put_ws("127.0.0.1", ASWorkServerData(weight=2.0, constraints="Age > 3"))
        got = as_.get_ws("127.0.0.1")
        assert (got.weight, got.constraints) == (2.0, "Age > 3")
        as_.put_project("127.0.0.1", PROJECT, ASProjectData(weight=0.25, constraints="beta"))
        project = as_.get_project("127.0.0.1", PROJECT)
        assert (project.weight, project.constraints) == (0.25, "beta")

        old = certs.certificate_info(ident.cert_path)
        assert certs.renew_if_needed(ident.cert_path, ident.key_path, as_) is False
        assert certs.renew_if_needed(ident.cert_path, ident.key_path, as_, force=True) is True
        new = certs.certificate_info(ident.cert_path)
        assert new.serial != old.serial and new.email == EMAIL
        assert new.issuer == old.issuer and new.not_after >= old.not_after
        certs.check_pair(ident.cert_path, ident.key_path)
    with sim_ws(ident) as ws:
        assert ws.list_projects() == []


def test_simulated_503s_are_absorbed_by_retries(make_sim, make_identity):
    from fahflow.sim import FaultConfig, SimConfig

    sim = make_sim(config=SimConfig(seed=7, faults=FaultConfig(http_503_rate=0.4)))
    ident = make_identity(sim)
    with sim_ws(ident, retries=10, backoff_s=0.001) as ws:
        ws._sleep = sleeps = Sleeps()
        ws.put_project(PROJECT, ProjectData(core_id="0x23", contact=EMAIL))
        for _ in range(15):
            assert ws.get_project(PROJECT).contact == EMAIL
    assert len(sleeps) >= 3  # about 40% of ≥ 16 calls were refused and retried


def test_expired_certificate_is_refused_by_the_simulator(sim, make_identity):
    ident = make_identity(sim, days=-1)
    with pytest.raises(CertificateError, match="expired"):
        certs.check_pair(ident.cert_path, ident.key_path)
    with pytest.raises(CertificateError), sim_ws(ident, retries=0) as ws:
        ws.list_projects()


@pytest.mark.parametrize("verify", [False, None, 0, ""])
def test_verification_cannot_be_switched_off(server, operator, verify):
    """Issue 8 item 2: no value turns TLS verification off, and it cannot be changed later."""
    for cls in (WorkServerClient, AssignmentServerClient):
        with pytest.raises(ConfigError, match=r"cannot be turned off .*CA bundle"):
            cls(server.url, cert=operator, verify=verify)
    ws = WorkServerClient(server.url, cert=operator, verify=True)
    with pytest.raises(AttributeError):
        ws.verify = False
