"""The transport under both FAH clients: one HTTPS session, certificate reload, the retry loop
and the translation of failures into :mod:`fahflow.errors`.

The WS and AS APIs (:mod:`fahflow.ws.work_server`, :mod:`fahflow.ws.assignment_server`) are short
methods over :meth:`Transport._call`, which owns the things that must be right everywhere:

* a timeout on every call (``(connect_s, read_s)``, never ``None``);
* retries with jittered exponential backoff, for transient failures only (connection errors,
  timeouts, 429, 502, 503, 504), as each call's :class:`Repeat` allows. Reads, uploads and
  deletes are idempotent and retried here. Creating a CLONE and job actions are not: a create
  whose answer was lost may have happened, so it raises :class:`~fahflow.errors.OutcomeUnknown`
  at once, and the caller (the ledger's intent row, or the operator) looks at the job before
  trying again. A request that certainly had no effect (connect timeout or refused, or turned
  away with 429) is retried for every call;
* one translation of failures into the typed tree of :mod:`fahflow.errors`, with messages that name
  the method, the URL and the server's answer, so callers never import ``requests``.

Retries live in :meth:`Transport._call` rather than in a urllib3 ``Retry`` on a mounted adapter
(what STYLE.md suggests): streamed uploads must be reopened from disk for each attempt, a download
broken mid-stream must be retried as a whole, and the create call needs the "never sent" nuance.

Certificates last about a month and are renewed in place (:mod:`fahflow.ws.certs`). urllib3 keeps
TLS connections in a pool, and a pooled connection keeps the certificate it was opened with, so each
call compares the certificate and key files' identity (inode, size, mtime) with those the session
was built with and rebuilds the session when they changed: the next call after a renewal, in this
process or another, presents the new certificate.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self, TypeVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, TypeAdapter, ValidationError
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from fahflow.atomic import atomic_open
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
from fahflow.ws.models import MAX_RUN_OR_CLONE

logger = logging.getLogger(__name__)

Timeout = tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 60.0)
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
REFUSED_STATUS = 429  # turned away before it was acted on: safe to repeat, whatever the call
MAX_BACKOFF_S = 60.0
CHUNK_BYTES = 1 << 20
_BODY_EXCERPT = 500

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Verify = Literal[True] | str | os.PathLike[str]
"""``True`` (the system CAs) or a CA bundle. Never ``False``: verification cannot be turned off."""
CertPair = tuple[str | os.PathLike[str], str | os.PathLike[str]]
Body = Path | bytes | None


def parse_timeout(value: Any, *, field: str = "timeout") -> Timeout:
    """Return ``(connect_s, read_s)`` from a pair or a single number (used for both).

    ``None`` is refused on purpose: requests would then wait forever on a silent server.
    """
    hint = f"{field} must be (connect_s, read_s) with positive numbers, e.g. (5, 60); got {value!r}"
    if isinstance(value, bool) or value is None:
        raise ConfigError(hint)
    if isinstance(value, int | float):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(hint)
    try:
        connect_s, read_s = (float(v) for v in value if not isinstance(v, bool))
    except (TypeError, ValueError):
        raise ConfigError(hint) from None
    if not (connect_s > 0 and read_s > 0):
        raise ConfigError(hint)
    return connect_s, read_s


class Repeat(Enum):
    """Who may repeat a call whose answer did not come back (the table is in :mod:`fahflow.errors`).

    Whatever the kind, a request that certainly had no effect (it never reached the server, or
    the server turned it away with 429) is repeated here.
    """

    BY_CLIENT = "by the client"
    """Idempotent (reads, uploads, deletes, PUT of settings): retried here with backoff;
    :class:`~fahflow.errors.TransientError` when the retries ran out."""
    BY_CALLER = "by the caller"
    """A repeat is harmless but not free (certificate renewal issues a certificate each time):
    not retried here; :class:`~fahflow.errors.TransientError` at once, the caller may call again."""
    AFTER_CHECK = "after a check"
    """Not idempotent (create a CLONE, job actions): a lost answer is
    :class:`~fahflow.errors.OutcomeUnknown`; look at the server before trying again."""


def check_id(name: str, value: Any, maximum: int | None = MAX_RUN_OR_CLONE) -> int:
    """Ids become URL segments: they must be plain non-negative ints (never strings or bools)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value!r}")
    return value


def file_url_path(path: str) -> str:
    """Quote a relative file path such as ``RUN0/CLONE3/core.xml`` for the URL, refusing
    anything that could climb out of the project (``..``, absolute paths, backslashes)."""
    if not isinstance(path, str) or not path:
        raise ConfigError(f"file path must be a non-empty string, got {path!r}")
    parts = path.split("/")
    bad = path.startswith("/") or "\\" in path or "\x00" in path
    if bad or any(part in ("", ".", "..") for part in parts):
        raise ConfigError(f"file path must be relative like 'RUN0/CLONE3/core.xml', got {path!r}")
    return "/".join(quote(part, safe="") for part in parts)


def _check_url(url: str, field: str) -> str:
    """Base URL of a server: ``https://host[:port]`` (a trailing ``/api`` is tolerated)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{field} must be an https:// URL (https://host:port), got {url!r}")
    base = url.rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


def _excerpt(response: requests.Response) -> str:
    try:
        text = response.text
    except (requests.RequestException, UnicodeDecodeError):
        return ""
    text = " ".join(text.split())
    return text[:_BODY_EXCERPT] + ("…" if len(text) > _BODY_EXCERPT else "")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: requests and urllib3 nest the real error two or three
    levels deep (``ConnectionError(MaxRetryError(reason=NewConnectionError(...)))``)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        stack += list(current.args[:1])


def _ssl_failure(exc: BaseException) -> bool:
    """True when a low-level error is a TLS failure (bad, missing or foreign certificate, or an
    untrusted server). Such a failure does not heal by itself, so it is never retried.

    Under TLS 1.3 the server's refusal of a client certificate may arrive after the handshake, as
    an alert that urllib3 wraps in other errors; hence the walk through the causes.
    """
    return any(isinstance(e, ssl.SSLError | requests.exceptions.SSLError) for e in _causes(exc))


def _never_sent(exc: BaseException) -> bool:
    """A connect timeout or refused connection: the request never reached the server, so even a
    non-idempotent call may be repeated safely."""
    never = (requests.exceptions.ConnectTimeout, NewConnectionError, ConnectTimeoutError)
    return any(isinstance(e, never) for e in _causes(exc))


class Transport:
    """One server over HTTPS: one session, timeouts, retries, errors (the base of the WS and AS
    clients, whose methods are the APIs)."""

    _what = "server"

    def __init__(
        self,
        url: str,
        *,
        cert: CertPair | None,
        verify: Verify = True,
        timeout: Any = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.url = _check_url(url, f"{self._what} url")
        self.timeout = parse_timeout(timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be a non-negative integer, got {retries!r}")
        if not backoff_s >= 0 or not max_backoff_s >= 0:
            raise ConfigError(f"backoff_s must be >= 0 seconds, got {backoff_s!r}")
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.cert = self._check_cert(cert)
        self._verify = self._check_verify(verify)
        self._session: requests.Session | None = None
        self._stamp: tuple[Any, ...] | None = None
        self._not_after: datetime | None = None
        self._sleep: Callable[[float], None] = time.sleep

    # -- configuration ---------------------------------------------------------------------------

    @staticmethod
    def _check_cert(cert: CertPair | None) -> tuple[str, str] | None:
        if cert is None:
            return None
        if not isinstance(cert, tuple | list) or len(cert) != 2:
            raise ConfigError(f"cert must be (certificate_path, key_path), got {cert!r}")
        paths = tuple(str(Path(p).expanduser()) for p in cert)
        for label, path in zip(("certificate", "key"), paths, strict=True):
            if not Path(path).is_file():
                raise ConfigError(f"client {label} file not found: {path}")
        certs.warn_if_key_exposed(paths[1])
        return paths[0], paths[1]

    @property
    def verify(self) -> Literal[True] | str:
        """What the server's certificate is checked against; read-only, never ``False``."""
        return self._verify

    @staticmethod
    def _check_verify(verify: Verify) -> Literal[True] | str:
        """``True`` or an existing CA bundle. Anything meaning "off" is refused: the operator's
        certificate and the WUs must never go to a server whose identity is unchecked."""
        if verify is True:
            return True
        if not isinstance(verify, str | os.PathLike) or not str(verify).strip():
            raise ConfigError(
                f"TLS verification cannot be turned off (verify={verify!r}): pass True for the "
                "system CAs or the path of the CA bundle that signed the server's certificate"
            )
        path = Path(verify).expanduser()
        if not path.exists():
            raise ConfigError(f"CA bundle not found: {path} (verify= / --ca / FAHFLOW_CA)")
        return str(path)

    def _cert_stamp(self) -> tuple[Any, ...]:
        """Identity of the certificate and key files; changes when either is replaced."""
        if self.cert is None:
            return ()
        stamp: list[Any] = []
        for path in self.cert:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise ConfigError(f"client certificate or key file disappeared: {path}") from None
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(stamp)

    @property
    def session(self) -> requests.Session:
        """The one session, rebuilt when the certificate files changed (renewal)."""
        stamp = self._cert_stamp()
        if self._session is None or stamp != self._stamp:
            if self._session is not None:
                logger.info("client certificate changed on disk; reopening connections")
                self._session.close()
            # verify/cert are also passed on every request: requests lets REQUESTS_CA_BUNDLE or
            # CURL_CA_BUNDLE override a *session's* verify, which would silently drop our CA.
            session = requests.Session()
            session.cert = self.cert
            session.verify = self.verify
            session.headers["User-Agent"] = "fahflow"
            self._session, self._stamp = session, stamp
            self._not_after = self._read_not_after()
        return self._session

    def _read_not_after(self) -> datetime | None:
        """When the client certificate expires; ``None`` if there is none or it is unreadable
        (the TLS handshake will then say what is wrong)."""
        if self.cert is None:
            return None
        try:
            return certs.load_certificate(self.cert[0]).not_valid_after_utc
        except ConfigError:
            return None

    def _expired(self) -> str | None:
        """The message for an expired client certificate, or ``None`` while it is valid.

        A server refuses an expired certificate with a bare TLS alert ("EOF"), which says
        nothing; so the date is checked before every call and again when a handshake fails.
        """
        if self.cert is None or self._not_after is None:
            return None
        if self._not_after > datetime.now(UTC):
            return None
        return certs.expired_message(self.cert[0], self._not_after)

    def reset(self) -> None:
        """Close pooled connections so that the next call opens new ones (after a renewal)."""
        if self._session is not None:
            self._session.close()
        self._session = None

    def close(self) -> None:
        self.reset()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the one request path --------------------------------------------------------------------

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        """Jittered exponential backoff; a server's Retry-After (seconds) is a floor."""
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        delay = base / 2 + random.uniform(0, base / 2)
        if response is not None:
            with suppress(KeyError, ValueError):
                delay = max(delay, min(self.max_backoff_s, float(response.headers["Retry-After"])))
        return delay

    def _call(
        self,
        method: str,
        path: str,
        handle: Callable[[requests.Response], T],
        *,
        repeat: Repeat,
        check: str = "",
        params: dict[str, str] | None = None,
        json: Any = None,
        body: Body = None,
        timeout: Any = None,
    ) -> T:
        """Send one request (retrying as ``repeat`` allows) and give the successful answer to
        ``handle``; ``check`` tells the caller what to do before trying a call that was not
        repeated (it ends the message of the error).

        ``handle`` runs inside the retry loop, so a download that breaks mid-stream is retried
        whole; it must not leave partial state behind (downloads write atomically).
        """
        url = f"{self.url}{path}"
        limit = parse_timeout(timeout) if timeout is not None else self.timeout
        _ = self.session  # (re)built when the certificate changed; reads its expiry
        if expired := self._expired():
            raise CertificateError(f"{method} {url} not sent: {expired}", method=method, url=url)
        attempts = 1 + self.retries
        failure: TransientError | None = None
        for attempt in range(attempts):
            response: requests.Response | None = None
            try:
                with ExitStack() as stack:
                    data = self._open_body(body, stack)
                    response = stack.enter_context(
                        self.session.request(
                            method, url, params=params, json=json, data=data,
                            timeout=limit, stream=True, verify=self.verify, cert=self.cert,
                        )
                    )  # fmt: skip
                    logger.debug("%s %s -> %s", method, url, response.status_code)
                    if response.status_code not in TRANSIENT_STATUS:
                        self._raise_for(method, url, response)
                        return handle(response)
                    failure = TransientError(
                        f"{method} {url} failed: HTTP {response.status_code} "
                        f"{_excerpt(response)!r}",
                        method=method, url=url, status=response.status_code,
                        body=_excerpt(response), response=response,
                    )  # fmt: skip
                    no_effect = response.status_code == REFUSED_STATUS
            except requests.RequestException as exc:
                self._raise_if_tls(method, url, exc)
                failure = TransientError(
                    f"{method} {url} failed: {type(exc).__name__}: {exc}", method=method, url=url
                )
                failure.__cause__ = exc
                no_effect = _never_sent(exc)
            if not (no_effect or repeat is Repeat.BY_CLIENT):
                raise self._not_repeated(failure, repeat, check) from failure
            if attempt + 1 < attempts:
                delay = self._delay(attempt, response)
                logger.info("%s; retry %d/%d in %.2f s", failure, attempt + 1, self.retries, delay)
                self._sleep(delay)
        assert failure is not None
        raise TransientError(
            f"{failure} (gave up after {attempts} attempts)",
            method=method, url=url, status=failure.status, body=failure.body,
        ) from failure  # fmt: skip

    @staticmethod
    def _not_repeated(failure: TransientError, repeat: Repeat, check: str) -> WorkServerError:
        """The error for a call that failed in flight and is not repeated here: the outcome is
        unknown for a non-idempotent call; a harmless repeat is left to the caller."""
        where = dict(method=failure.method, url=failure.url, status=failure.status)
        why = "not retried because the call is not idempotent"
        if repeat is Repeat.AFTER_CHECK:
            check = check or "check what the server did before trying again"
            return OutcomeUnknown(
                f"{failure}: the outcome is unknown ({why}): {check}",
                check=check, body=failure.body, **where,
            )  # fmt: skip
        check = check or "calling again is safe"
        return TransientError(f"{failure}; {why}: {check}", body=failure.body, **where)

    def _raise_if_tls(self, method: str, url: str, exc: requests.RequestException) -> None:
        """A refused handshake does not heal by itself: a :class:`CertificateError`, never
        retried, naming the expiry when that is the reason."""
        if not _ssl_failure(exc):
            return
        if expired := self._expired():
            raise CertificateError(
                f"{method} {url} failed: TLS refused: {expired}", method=method, url=url
            ) from exc
        raise CertificateError(
            f"{method} {url} failed: TLS refused ({exc}); check the client "
            f"certificate/key (cert=) and the server CA (verify=/--ca)",
            method=method, url=url,
        ) from exc  # fmt: skip

    @staticmethod
    def _open_body(body: Body, stack: ExitStack) -> bytes | IO[bytes] | None:
        """Uploads stream from disk; each attempt reopens the file from its start."""
        if body is None or isinstance(body, bytes):
            return body
        try:
            return stack.enter_context(Path(body).open("rb"))
        except FileNotFoundError:
            raise ConfigError(f"file to upload not found: {body}") from None

    @staticmethod
    def _raise_for(method: str, url: str, response: requests.Response) -> None:
        """Translate an error answer into the typed tree (non-transient statuses only)."""
        status = response.status_code
        if status < 400:
            return
        body = _excerpt(response)
        message = f"{method} {url} failed: HTTP {status} {body!r}"
        if status == 404:
            cls: type[WorkServerError] = NotFound
        elif status in (400, 409, 422):
            cls = Conflict
        elif status in (401, 403):
            cls = CertificateError
            message += " (is the client certificate valid and authorized for this server?)"
        else:
            cls = WorkServerError
        raise cls(message, method=method, url=url, status=status, body=body, response=response)

    # -- verbs -----------------------------------------------------------------------------------

    def _get_json(self, path: str, *, params: dict[str, str] | None = None) -> Any:
        return self._call("GET", path, json_answer, repeat=Repeat.BY_CLIENT, params=params)

    def _get_model(self, path: str, model: type[M], **kw: Any) -> M:
        data = self._get_json(path, **kw)
        return validate_answer(model, data, f"GET {self.url}{path}")

    def _put_json(self, path: str, data: Any) -> None:
        """PUT settings (a project, weights): the same PUT twice gives the same state."""
        self._call("PUT", path, drop_answer, repeat=Repeat.BY_CLIENT, json=data)

    def _download(self, path: str, dest: str | os.PathLike[str]) -> Path:
        """Stream a file to ``dest`` atomically: ``dest`` is either the old file or the whole
        new one, even if the connection (or this process) dies mid-download."""
        target = Path(dest)

        def write(response: requests.Response) -> Path:
            with atomic_open(target, "wb") as handle:
                for chunk in response.iter_content(CHUNK_BYTES):
                    handle.write(chunk)
            return target

        return self._call("GET", path, write, repeat=Repeat.BY_CLIENT)


def json_answer(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise WorkServerError(
            f"{response.request.method} {response.url} answered non-JSON: {_excerpt(response)!r}",
            method=str(response.request.method), url=response.url,
            status=response.status_code, body=_excerpt(response),
        ) from None  # fmt: skip


def drop_answer(response: requests.Response) -> None:
    """Read (and drop) the answer, so that the connection goes back to the pool for reuse."""
    _ = response.content


def validate_answer(model: Any, data: Any, where: str) -> Any:
    """Validate a server answer; a shape we cannot use is a server error, named precisely."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise WorkServerError(f"{where} answered unexpected data: {exc}") from None
