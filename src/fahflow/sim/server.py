"""HTTPS plumbing of the simulator: a threaded server that requires client certificates.

The TLS handshake happens in the worker thread of each connection (not in the accept loop), so
one slow or foreign client cannot stall the others. A client whose certificate is missing, expired
or not issued by the simulator's CA fails the handshake, as on a real WS. Routing and the WS/AS
semantics live in :mod:`fahflow.sim.api`; this module only moves bytes and maps errors to codes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ValidationError

from fahflow.errors import ConfigError, Conflict, NotFound, WorkServerError

logger = logging.getLogger("fahflow.sim")

MAX_BODY = 2 * 1024**3


class Forbidden(WorkServerError):
    """403: the certificate is valid but not allowed to call this endpoint."""


@dataclass
class Request:
    """What an endpoint sees: method, decoded path groups, query, body and the peer's name."""

    method: str
    path: str
    groups: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    peer_cn: str

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.method} {self.path}: body is not JSON: {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes | Path = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, value: Any, status: int = 200) -> Response:
        """JSON of a pydantic model, a list of models, or plain data."""
        return cls(status, json.dumps(_jsonable(value)).encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


Dispatch = Callable[[Request], Response]
"""Routes a request (``api.Api.dispatch``); raises NotFound/Conflict/ConfigError/Forbidden."""


class SimHTTPServer(ThreadingHTTPServer):
    """Threaded HTTPS server; TLS is wrapped per connection in its own thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        dispatch: Dispatch,
        log: Callable[..., None],
        draw_fault: Callable[[], str | None],
    ) -> None:
        super().__init__(address, SimHandler)
        self.context = context
        self.dispatch = dispatch
        self.log = log
        self.draw_fault = draw_fault

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        # Headers and body leave in separate writes: without this, Nagle + delayed ACK add ~40 ms.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.log(
                "tls.refused", client=f"{client_address[0]}:{client_address[1]}", error=str(exc)
            )
            request.close()
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


def server_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """TLS ≥1.2, our server certificate, client certificates required and checked against the CA
    (OpenSSL also refuses expired ones)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimHTTPServer
    server_version = "fahflow-sim"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    def _peer_cn(self) -> str:
        cert = self.connection.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return ""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True  # the unread body would be taken for the next request
            raise ConfigError(f"body of {length} bytes is over the limit of {MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        peer = self._peer_cn()
        fault = self.server.draw_fault() if url.path.startswith("/api/") else None
        try:
            body = self._read_body()
            if fault == "drop":
                response = Response(0)
            elif fault == "503":
                response = Response(503, b'{"error": "simulated overload (fault injection)"}')
            else:
                request = Request(method, url.path, {}, parse_qs(url.query), body, peer)
                response = self.server.dispatch(request)
        except NotFound as exc:
            response = _error(404, exc)
        except Forbidden as exc:
            response = _error(403, exc)
        except Conflict as exc:
            response = _error(409, exc)
        except (ConfigError, ValidationError, ValueError) as exc:
            response = _error(400, exc)
        except Exception as exc:
            logger.exception("simulator bug on %s %s", method, self.path)
            response = _error(500, exc)
        idle_poll = response.status == 204 and url.path == "/sim/assign"
        if not idle_poll:  # an idle volunteer polls all day: not an API call worth a line
            self.server.log(
                "api",
                method=method,
                path=self.path,
                status=response.status if fault not in ("drop", "drop_after") else fault,
                peer=peer,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        if fault in ("drop", "drop_after"):
            self._drop()
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        body = response.body
        size = body.stat().st_size if isinstance(body, Path) else len(body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(size))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if isinstance(body, Path):
            with body.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    self.wfile.write(chunk)
        else:
            self.wfile.write(body)


def _error(status: int, exc: Exception) -> Response:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        message = f"field {where!r}: {err['msg']} (got {err.get('input')!r})"
    else:
        message = str(exc)
    return Response(status, json.dumps({"error": message, "status": status}).encode())
