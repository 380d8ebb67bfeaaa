"""What one connection may cost the simulator: body size, memory, time; and who may call what.

Uploads stream to disk with a bound on the total, for both framings; slow clients (slowloris)
are cut off after bounded times; the volunteers' certificate cannot use the operator API.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from conftest import Identity, new_key_and_csr

from fahflow.atomic import write_bytes
from fahflow.sim import SimConfig, Simulator
from fahflow.sim.ca import VOLUNTEER_CN, CertificateAuthority

PROJECT = {"core_id": "0x23", "contact": "operator@example.org", "atoms": 125, "credit": 10}
MiB = 1024**2


def _session(cert: tuple[str, str], ca: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace session.verify
    session.cert, session.verify = cert, str(ca)
    return session


def _pieces(total: int, piece: int = MiB) -> Iterator[bytes]:
    """A body of ``total`` bytes that requests sends chunked (a generator has no length)."""
    block = b"x" * piece
    sent = 0
    while sent < total:
        out = block[: min(piece, total - sent)]
        sent += len(out)
        yield out


@pytest.fixture
def small(make_sim, make_identity) -> tuple[Simulator, requests.Session]:
    """A simulator whose bodies are bounded at 1 MiB, and an operator session for it."""
    sim = make_sim(config=SimConfig(max_body_bytes=MiB))
    session = make_identity(sim).session()
    assert session.put(f"{sim.url}/api/projects/1", json=PROJECT, timeout=10).ok
    yield sim, session
    session.close()


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_body_over_the_bound_is_refused_and_leaves_no_file(small, framing: str) -> None:
    sim, session = small
    url = f"{sim.url}/api/projects/1/files/RUN0/system.xml.bz2"
    assert session.put(url, data=b"old", timeout=10).ok
    body = _pieces(4 * MiB) if framing == "chunked" else b"x" * (4 * MiB)
    answer = session.put(url, data=body, timeout=30)
    assert answer.status_code == 413, answer.text
    assert "max_body_bytes" in answer.json()["error"]
    run_dir = sim.project_home(1) / "RUN0"
    assert sorted(p.name for p in run_dir.iterdir()) == ["system.xml.bz2"]  # no partial file
    assert (run_dir / "system.xml.bz2").read_bytes() == b"old"  # the old file is untouched
    # At the bound exactly it is accepted, and the server is still healthy.
    assert session.put(url, data=_pieces(MiB, 4096), timeout=30).ok
    assert (run_dir / "system.xml.bz2").stat().st_size == MiB


def test_chunked_upload_is_stored_whole(small) -> None:
    sim, session = small
    url = f"{sim.url}/api/projects/1/files/RUN0/core.xml"
    answer = session.put(url, data=iter([b"<config>", b"", b"x" * 1000, b"</config>"]), timeout=10)
    assert answer.ok and answer.json()["size"] == 1017
    assert (sim.project_home(1) / "RUN0" / "core.xml").read_bytes().endswith(b"x</config>")


def test_bad_chunk_framing_is_a_400_naming_it(small) -> None:
    sim, session = small
    raw = (
        b"PUT /api/projects/1/files/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nabc\r\n0\r\n\r\n"
    )
    status, text = _raw_exchange(sim, session.cert, raw)
    assert status == 400 and "chunk size" in text
    assert not (sim.project_home(1) / "a").exists()


def _tls_socket(sim: Simulator, cert: tuple[str, str]) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(sim.ca_path))
    context.load_cert_chain(*cert)
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=10)
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def _raw_exchange(sim: Simulator, cert: tuple[str, str], raw: bytes) -> tuple[int, str]:
    with _tls_socket(sim, cert) as tls:
        tls.sendall(raw)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = tls.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def _seconds_until_disconnect(sock: socket.socket, payload: bytes, every_s: float) -> float:
    """Send ``payload`` one byte every ``every_s`` seconds until the server closes; the wait
    between bytes is a wait for the server's close (select), so none is blind."""
    started = time.monotonic()
    for i in range(len(payload)):
        try:
            sock.send(payload[i : i + 1])
            if select.select([sock], [], [], every_s)[0] and not sock.recv(4096):
                return time.monotonic() - started
        except (ConnectionError, ssl.SSLError):
            return time.monotonic() - started
    raise AssertionError(f"still connected after {time.monotonic() - started:.1f} s")


SLOW_HEADERS = b"GET /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 400


def test_slow_headers_are_cut_off_within_the_bound(make_sim, make_identity) -> None:
    sim = make_sim(config=SimConfig(header_timeout_s=1.0))
    identity = make_identity(sim)
    with _tls_socket(sim, identity.cert) as tls:
        elapsed = _seconds_until_disconnect(tls, SLOW_HEADERS, every_s=0.1)
    assert 0.8 < elapsed < 2.5, elapsed  # 1 s from the first byte; 30 s socket timeout unused


def test_slow_body_is_cut_off_within_the_bound(make_sim, make_identity) -> None:
    sim = make_sim(config=SimConfig(body_timeout_s=1.0))
    identity = make_identity(sim)
    _session(identity.cert, sim.ca_path).put(f"{sim.url}/api/projects/1", json=PROJECT)
    head = b"PUT /api/projects/1/files/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n"
    with _tls_socket(sim, identity.cert) as tls:
        tls.sendall(head)
        elapsed = _seconds_until_disconnect(tls, b"b" * 400, every_s=0.1)
    assert 0.8 < elapsed < 2.5, elapsed
    assert not (sim.project_home(1) / "slow").exists()
    assert sim.log.read("api.abandoned")[-1]["path"] == "/api/projects/1/files/slow"


def test_silent_tls_handshake_is_cut_off_within_the_bound(make_sim) -> None:
    sim = make_sim(config=SimConfig(header_timeout_s=1.0))
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as sock:
        started = time.monotonic()
        assert select.select([sock], [], [], 10)[0]  # the server's close wakes us
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 2.5


def test_volunteer_certificate_refused_on_the_operator_api(sim: Simulator) -> None:
    volunteer = _session(
        (str(sim.ca.volunteer_cert_path), str(sim.ca.volunteer_key_path)), sim.ca_path
    )
    for method, path in [("GET", "/api/projects"), ("PUT", "/api/projects/1")]:
        answer = volunteer.request(method, f"{sim.url}{path}", json=PROJECT, timeout=10)
        assert answer.status_code == 403, answer.text
        message = answer.json()["error"]
        assert "role volunteer" in message and VOLUNTEER_CN in message
    assert sim.store.list_projects() == []
    # ...and it still may use its own routes.
    assert volunteer.post(f"{sim.url}/sim/assign", json={}, timeout=30).status_code == 204


def test_operator_certificate_refused_on_the_volunteer_routes(
    sim: Simulator, operator_identity: Identity
) -> None:
    session = operator_identity.session()
    answer = session.post(f"{sim.url}/sim/assign", json={}, timeout=10)
    assert answer.status_code == 403
    assert "role operator" in answer.json()["error"]
    assert session.get(f"{sim.url}/api/projects", timeout=10).ok


def _peak_rss_bytes(pid: int) -> int:
    """VmHWM: the process's peak resident memory so far (a peak, not a sample)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_large_chunked_upload_streams_to_disk(tmp_path: Path) -> None:
    """200 MiB chunked into a separate simulator process: its peak RSS grows < 50 MiB."""
    root = tmp_path / "served"
    cmd = [sys.executable, "-c", "import sys; from fahflow.cli import main; sys.exit(main())"]
    proc = subprocess.Popen([*cmd, "sim", "serve", "--root", str(root), "--volunteers", "0"])
    try:
        info_path = root / "server.json"
        deadline = time.monotonic() + 60
        while not info_path.is_file():  # the server announces itself by writing this file
            assert proc.poll() is None and time.monotonic() < deadline, "server never came up"
            time.sleep(0.05)
        info = json.loads(info_path.read_text())
        pair = new_key_and_csr("operator@example.org")
        pem = CertificateAuthority.load_or_create(root / "ca").issue(pair.csr_pem, timedelta(1))
        cert = (str(write_bytes(tmp_path / "op.pem", pem)), str(tmp_path / "op.key"))
        write_bytes(tmp_path / "op.key", pair.key_pem, perms=0o600)
        session = _session(cert, Path(info["ca"]))
        assert session.put(f"{info['url']}/api/projects/1", json=PROJECT, timeout=30).ok
        before = _peak_rss_bytes(proc.pid)
        url = f"{info['url']}/api/projects/1/files/RUN0/big.bin"
        answer = session.put(url, data=_pieces(200 * MiB), timeout=120)
        assert answer.ok and answer.json()["size"] == 200 * MiB, answer.text
        growth = _peak_rss_bytes(proc.pid) - before
        assert (root / "PROJ1" / "RUN0" / "big.bin").stat().st_size == 200 * MiB
        assert growth < 50 * MiB, f"simulator peak RSS grew by {growth / MiB:.0f} MiB"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
