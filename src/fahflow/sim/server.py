"""HTTPS plumbing of the simulator: a threaded server that requires client certificates.

The TLS handshake happens in the worker thread of each connection (not in the accept loop), so
one slow or foreign client cannot stall the others. A client whose certificate is missing, expired
or not issued by the simulator's CA fails the handshake, as on a real WS. Routing and the WS/AS
semantics live in :mod:`fahflow.sim.api`; this module only moves bytes and maps errors to codes:
an :class:`~fahflow.sim.errors.HttpError` becomes its status, anything else a handler raises is a
simulator bug (500, traceback logged), ``ValueError`` included.

Request bodies are never held whole in memory: an endpoint reads :class:`Body` in pieces of at most
:data:`PIECE` bytes (uploads go straight to a file), for both framings (``Content-Length`` and
``Transfer-Encoding: chunked``), and the total is bounded by :class:`Limits` (413 past it). Slow
clients are bounded in time too: every read or write waits at most ``socket_timeout_s``, the TLS
handshake and the headers must arrive within ``header_timeout_s`` and a body within
``body_timeout_s``, so a client dribbling bytes (slowloris) holds a thread for a bounded time.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from fahflow.sim.errors import HttpError

logger = logging.getLogger("fahflow.sim")

PIECE = 1 << 20
"""Most bytes of a body read at once: what an upload costs in memory, whatever its size."""

JSON_LIMIT = 16 * 1024**2
"""Largest JSON body (project settings, create, CSR): far above any real one."""

DRAIN_LIMIT = 1 << 20
"""Unread body bytes discarded to keep a connection alive; beyond that the connection closes."""

LINGER_S = 5.0
"""After refusing a body, how long its remaining bytes are read and dropped, so that the client
(which sends the whole body before reading an answer) gets the 413 rather than a reset."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what one connection may cost (from :class:`~fahflow.sim.config.SimConfig`)."""

    max_body_bytes: int = 2 * 1024**3
    socket_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 600.0


class PayloadTooLarge(HttpError):
    """413: the request body is over :attr:`Limits.max_body_bytes`."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BadFraming(HttpError):
    """400: the body's framing (chunk sizes, Content-Length) is broken; the connection closes."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class _TimedReader(io.RawIOBase):
    """The socket as a raw stream whose reads wait at most ``idle_s`` each, and never past a
    deadline once one is set (``TimeoutError`` then): a slow client cannot stretch a request."""

    def __init__(self, sock: socket.socket, idle_s: float) -> None:
        self.sock = sock
        self.idle_s = idle_s
        self.deadline: float | None = None
        self._arm_s: float | None = None
        self.what = "request"

    def readable(self) -> bool:
        return True

    def expect_request(self, within_s: float) -> None:
        """Wait idle (keep-alive) up to ``idle_s``; from the first byte on, ``within_s``."""
        self.deadline, self._arm_s, self.what = None, within_s, "request headers"

    def set_deadline(self, within_s: float, what: str) -> None:
        self.deadline, self._arm_s, self.what = time.monotonic() + within_s, None, what

    def readinto(self, buffer: Any) -> int:
        timeout = self.idle_s
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.what} not received in time")
            timeout = min(timeout, left)
        self.sock.settimeout(timeout)
        n = self.sock.recv_into(buffer)
        if n and self._arm_s is not None:
            self.deadline, self._arm_s = time.monotonic() + self._arm_s, None
        return n


class Body:
    """A request body read on demand, in pieces of at most :data:`PIECE` bytes.

    Both framings are handled, and the total is checked as it arrives: past ``max_bytes`` the
    reading stops with :class:`PayloadTooLarge` (a ``Content-Length`` over the bound is refused
    before any byte is read). Endpoints that store a body stream it to a file (:meth:`pieces`);
    small JSON bodies are read whole (:meth:`read`).
    """

    def __init__(self, rfile: IO[bytes], headers: Any, max_bytes: int) -> None:
        self._rfile = rfile
        self.max_bytes = max_bytes
        self.received = 0
        encoding = headers.get("Transfer-Encoding", "").lower()
        self.chunked = encoding.rsplit(",", 1)[-1].strip() == "chunked"
        self._length = 0
        if not self.chunked:
            raw = headers.get("Content-Length") or "0"
            try:
                self._length = int(raw)
            except ValueError:
                raise BadFraming(f"Content-Length {raw!r} is not a number") from None
            if self._length < 0:
                raise BadFraming(f"Content-Length {raw!r} is negative")
            if self._length > max_bytes:
                raise self._too_large(self._length)
        self.done = not self.chunked and self._length == 0

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body of {'at least ' if self.chunked else ''}{size} bytes is over the "
            f"limit of {self.max_bytes} bytes (max_body_bytes in the simulator config)"
        )

    def _exactly(self, size: int) -> bytes:
        data = self._rfile.read(size)
        if len(data) < size:
            raise ConnectionError(
                f"client closed the connection after {self.received + len(data)} body bytes"
            )
        return data

    def _chunk_size(self) -> int:
        line = self._rfile.readline(1024)
        if not line.endswith(b"\n"):
            if not line:
                raise ConnectionError("client closed the connection in a chunked body")
            raise BadFraming(f"chunk size line too long or cut: {line[:40]!r}")
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadFraming(f"bad chunk size line {line[:40]!r}") from None

    def _end_chunked(self) -> None:
        for _ in range(100):  # trailers, then the blank line
            line = self._rfile.readline(8192)
            if line in (b"\r\n", b"\n"):
                return
            if not line:
                raise ConnectionError("client closed the connection in the chunked trailer")
        raise BadFraming("more than 100 trailer lines after a chunked body")

    def _count(self, n: int) -> None:
        self.received += n
        if self.received > self.max_bytes:
            raise self._too_large(self.received)

    def pieces(self) -> Iterator[bytes]:
        """The body, piece by piece (each at most :data:`PIECE` bytes); each byte once."""
        if not self.chunked:
            while not self.done:
                piece = self._exactly(min(PIECE, self._length - self.received))
                self._count(len(piece))
                self.done = self.received == self._length
                yield piece
            return
        while not self.done:
            size = self._chunk_size()
            if size == 0:
                self._end_chunked()
                self.done = True
                return
            if self.received + size > self.max_bytes:  # refused before its bytes are read
                raise self._too_large(self.received + size)
            while size:
                piece = self._exactly(min(PIECE, size))
                size -= len(piece)
                self._count(len(piece))
                yield piece
            if self._rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadFraming("chunk data not followed by CRLF")

    def read(self, limit: int = JSON_LIMIT) -> bytes:
        """The whole body, refused (413) over ``limit`` bytes: for small JSON bodies only."""
        out = bytearray()
        for piece in self.pieces():
            out += piece
            if len(out) > limit:
                raise PayloadTooLarge(f"JSON body over {limit} bytes")
        return bytes(out)

    def drain(self, limit: int = DRAIN_LIMIT) -> bool:
        """Read and drop what an endpoint left unread, up to ``limit`` bytes; ``True`` when the
        body is then complete (the connection can carry the next request)."""
        start = self.received
        return all(self.received - start <= limit for _ in self.pieces())


@dataclass
class Request:
    """What an endpoint sees: method, decoded path groups, query, body and the peer's name."""

    method: str
    path: str
    groups: dict[str, str]
    query: dict[str, list[str]]
    body: Body
    peer_cn: str

    def json(self) -> Any:
        data = self.body.read()
        if not data:
            return {}
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise HttpError(400, f"{self.method} {self.path}: body is not JSON: {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes | Path = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, value: Any, status: int = 200) -> Response:
        """JSON of a record (anything with ``to_json()``), a list or dict of them, or plain
        data."""
        return cls(status, json.dumps(_jsonable(value)).encode())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


Dispatch = Callable[[Request], Response]
"""Routes a request (``api.Api.dispatch``); raises :class:`HttpError` for any refusal."""


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
        limits: Limits | None = None,
    ) -> None:
        super().__init__(address, SimHandler)
        self.context = context
        self.dispatch = dispatch
        self.log = log
        self.draw_fault = draw_fault
        self.limits = limits or Limits()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Headers and body leave in separate writes: without this, Nagle + delayed ACK add ~40 ms.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self._handshake(request)
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

    def _handshake(self, sock: socket.socket) -> ssl.SSLSocket:
        """TLS handshake within ``header_timeout_s`` in all (not per read: a client sending its
        hello byte by byte would otherwise hold the thread for many timeouts)."""
        deadline = time.monotonic() + self.limits.header_timeout_s
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        try:
            tls.setblocking(False)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    ready = select.select([tls], [], [], max(0.0, deadline - time.monotonic()))[0]
                except ssl.SSLWantWriteError:
                    ready = select.select([], [tls], [], max(0.0, deadline - time.monotonic()))[1]
                if not ready:
                    limit = self.limits.header_timeout_s
                    raise TimeoutError(f"TLS handshake not done within {limit} s")
            tls.settimeout(self.limits.socket_timeout_s)
        except BaseException:
            tls.close()
            raise
        return tls

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

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain makefile() stream: reads go through the timed reader
        self._reader = _TimedReader(self.connection, self.server.limits.socket_timeout_s)
        self.rfile = io.BufferedReader(self._reader, 1 << 16)

    def handle_one_request(self) -> None:
        """One request: idle up to ``socket_timeout_s``, then headers in ``header_timeout_s``
        (a ``TimeoutError`` here closes the connection: ``BaseHTTPRequestHandler`` does that)."""
        self._reader.expect_request(self.server.limits.header_timeout_s)
        super().handle_one_request()

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

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _linger(self) -> None:
        """Read and drop what the client still sends, for at most :data:`LINGER_S`, so that it
        reads our answer, not a reset (closing with unread input makes the kernel send RST)."""
        self._reader.set_deadline(LINGER_S, "rest of a refused body")
        with contextlib.suppress(OSError, ValueError):
            while self.rfile.read1(1 << 16):
                pass

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        peer = self._peer_cn()
        fault = self.server.draw_fault() if url.path.startswith("/api/") else None
        limits = self.server.limits
        self._reader.set_deadline(limits.body_timeout_s, "request body")
        body: Body | None = None
        linger = False
        try:
            body = Body(self.rfile, self.headers, limits.max_body_bytes)
            if fault == "drop":
                response = Response(0)
            elif fault == "503":
                response = Response(503, b'{"error": "simulated overload (fault injection)"}')
            else:
                request = Request(method, url.path, {}, parse_qs(url.query), body, peer)
                response = self.server.dispatch(request)
        except (TimeoutError, ConnectionError) as exc:  # a slow or vanished client: no answer
            self.server.log(
                "api.abandoned", method=method, path=self.path, peer=peer, error=str(exc)
            )
            self._drop()
            return
        except (PayloadTooLarge, BadFraming) as exc:
            response, linger = _error(exc.status, exc.message), True
        except HttpError as exc:
            response = _error(exc.status, exc.message)
        except Exception as exc:  # ValueError too: a simulator bug, not the caller's fault
            logger.exception("simulator bug on %s %s", method, self.path)
            response = _error(500, f"simulator bug: {type(exc).__name__}: {exc}")
        if not linger and fault not in ("drop", "drop_after"):
            linger = not self._drained(body)
        if linger:  # the rest of the body cannot be told from the next request: close after
            self.close_connection = True
            response.headers["Connection"] = "close"
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
        if linger:
            self._linger()

    def _drained(self, body: Body | None) -> bool:
        """Whether the body an endpoint left (partly) unread was read to its end."""
        if body is None or body.done:
            return body is not None
        try:
            return body.drain()
        except (OSError, HttpError):
            return False

    def _send(self, response: Response) -> None:
        self.connection.settimeout(self.server.limits.socket_timeout_s)  # not a body's leftover
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


def _error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message, "status": status}).encode())
