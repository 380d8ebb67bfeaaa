"""HTTPS clients of the Folding@home work server (WS) and assignment server (AS).

Both speak JSON over mutual TLS: the operator presents a certificate issued by the AS, and the
server's certificate is verified (against the system store, or a CA bundle such as the simulator's).
Every endpoint of DESIGN §1 is one short method over :meth:`_Client._call`, which owns the three
things that must be right everywhere:

* a timeout on every call (``(connect_s, read_s)``, never ``None``);
* retries with jittered exponential backoff, for transient failures only (connection errors,
  timeouts, 429, 502, 503, 504) and only for idempotent calls. Creating a CLONE and job actions are
  *not* idempotent: a create whose answer was lost may have happened, so it raises
  :class:`~fahflow.errors.TransientError` at once and the caller (the ledger) checks the job state
  before trying again. A request that certainly never left (connect timeout or refused) is retried
  for every method;
* one translation of failures into the typed tree of :mod:`fahflow.errors`, with messages that name
  the method, the URL and the server's answer, so callers never import ``requests``.

Retries live in :meth:`_Client._call` rather than in a urllib3 ``Retry`` on a mounted adapter
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
import re
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self, TypeVar, get_args
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
    TransientError,
    WorkServerError,
)
from fahflow.ws import certs
from fahflow.ws.models import (
    MAX_RUN_OR_CLONE,
    ASProjectData,
    ASWorkServerData,
    FileData,
    JobAction,
    JobData,
    JobResults,
    ProjectData,
)

logger = logging.getLogger(__name__)

CreateForm = Literal["clone", "run-offset", "run-count"]
"""How a CLONE is created (DESIGN §1: two forms are on record, and the WS version decides).

``"clone"``: ``PUT /api/projects/{p}/runs/{r}/clones/{c}/create``, no body (recommended by the WS
maintainer; needs WS ≥ 10.3.4).
``"run-offset"``: ``PUT /api/projects/{p}/runs/{r}/create`` with ``{"clones": 1, "offset": c}``.
``"run-count"``: ``PUT /api/projects/{p}/runs/{r}/create`` with ``{"clones": c + 1}`` (the previous
implementation's form).
"""
CREATE_FORMS: tuple[str, ...] = get_args(CreateForm)

Timeout = tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 60.0)
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
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


def _check_id(name: str, value: Any, maximum: int | None = MAX_RUN_OR_CLONE) -> int:
    """Ids become URL segments: they must be plain non-negative ints (never strings or bools)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value!r}")
    return value


def _file_path(path: str) -> str:
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


class _Client:
    """Shared machinery of the WS and AS clients: one session, timeouts, retries, errors."""

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
        idempotent: bool,
        params: dict[str, str] | None = None,
        json: Any = None,
        body: Body = None,
        timeout: Any = None,
    ) -> T:
        """Send one request (retrying when allowed) and give the successful answer to ``handle``.

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
                    retry_allowed = idempotent
            except requests.RequestException as exc:
                if _ssl_failure(exc) and (expired := self._expired()):
                    raise CertificateError(
                        f"{method} {url} failed: TLS refused: {expired}", method=method, url=url
                    ) from exc
                if _ssl_failure(exc):
                    raise CertificateError(
                        f"{method} {url} failed: TLS refused ({exc}); check the client "
                        f"certificate/key (cert=) and the server CA (verify=/--ca)",
                        method=method, url=url,
                    ) from exc  # fmt: skip
                failure = TransientError(
                    f"{method} {url} failed: {type(exc).__name__}: {exc}", method=method, url=url
                )
                failure.__cause__ = exc
                retry_allowed = idempotent or _never_sent(exc)
            if not retry_allowed:
                raise TransientError(
                    f"{failure}; not retried because {method} {path} is not idempotent: "
                    f"check the job state before trying again",
                    method=method, url=url, status=failure.status, body=failure.body,
                ) from failure  # fmt: skip
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
        return self._call("GET", path, _json_of, idempotent=True, params=params)

    def _get_model(self, path: str, model: type[M], **kw: Any) -> M:
        data = self._get_json(path, **kw)
        return _validate(model, data, f"GET {self.url}{path}")

    def _put_json(self, path: str, data: Any, *, idempotent: bool = True) -> None:
        self._call("PUT", path, _ignore, idempotent=idempotent, json=data)

    def _download(self, path: str, dest: str | os.PathLike[str]) -> Path:
        """Stream a file to ``dest`` atomically: ``dest`` is either the old file or the whole
        new one, even if the connection (or this process) dies mid-download."""
        target = Path(dest)

        def write(response: requests.Response) -> Path:
            with atomic_open(target, "wb") as handle:
                for chunk in response.iter_content(CHUNK_BYTES):
                    handle.write(chunk)
            return target

        return self._call("GET", path, write, idempotent=True)


def _json_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise WorkServerError(
            f"{response.request.method} {response.url} answered non-JSON: {_excerpt(response)!r}",
            method=str(response.request.method), url=response.url,
            status=response.status_code, body=_excerpt(response),
        ) from None  # fmt: skip


def _ignore(response: requests.Response) -> None:
    """Read (and drop) the answer, so that the connection goes back to the pool for reuse."""
    _ = response.content


def _validate(model: Any, data: Any, where: str) -> Any:
    """Validate a server answer; a shape we cannot use is a server error, named precisely."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise WorkServerError(f"{where} answered unexpected data: {exc}") from None


_FILES = TypeAdapter(list[FileData])
_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")


class WorkServerClient(_Client):
    """Client of one FAH work server's adaptive-sampling API (DESIGN §1).

    Parameters
    ----------
    url:
        Base URL of the WS, e.g. ``https://ws.example.org:8084`` (a trailing ``/api`` is ignored).
    cert:
        ``(certificate_path, key_path)`` issued by the AS; ``None`` only to test a refusal.
    verify:
        ``True`` (system CAs, default), or the path of a CA bundle (the simulator's ``ca_path``).
    timeout:
        ``(connect_s, read_s)`` for every call, overridable per call where it matters.
    retries, backoff_s:
        Attempts after the first, for transient failures of idempotent calls; the n-th wait is
        drawn between ``backoff_s·2ⁿ/2`` and ``backoff_s·2ⁿ`` seconds.
    create_form:
        How :meth:`create_clone` asks for a CLONE; see :data:`CreateForm`.
    max_backoff_s:
        Cap of one wait, and of a server's Retry-After.

    One client per thread: a ``requests.Session`` is not safe to share between threads.
    """

    _what = "work server"

    def __init__(
        self,
        url: str,
        *,
        cert: CertPair | None,
        verify: Verify = True,
        timeout: Any = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff_s: float = 0.5,
        create_form: CreateForm = "clone",
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        super().__init__(
            url,
            cert=cert,
            verify=verify,
            timeout=timeout,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )
        if create_form not in CREATE_FORMS:
            raise ConfigError(f"create_form must be one of {CREATE_FORMS}, got {create_form!r}")
        self.create_form: CreateForm = create_form

    # -- paths -----------------------------------------------------------------------------------

    @staticmethod
    def _project(p: int) -> str:
        return f"/api/projects/{_check_id('project', p, maximum=None)}"

    def _clone(self, p: int, r: int, c: int) -> str:
        return f"{self._project(p)}/runs/{_check_id('run', r)}/clones/{_check_id('clone', c)}"

    def _gen(self, p: int, r: int, c: int, g: int) -> str:
        return f"{self._clone(p, r, c)}/gens/{_check_id('gen', g, maximum=None)}"

    # -- projects --------------------------------------------------------------------------------

    def list_projects(self) -> list[int]:
        """Ids of the projects on this WS, sorted.

        The WS answers either a list of ids, a list of project objects (with ``id``/``project``)
        or an object keyed by id; all three are reduced to ids. Use :meth:`get_project` for data.
        """
        where = f"GET {self.url}/api/projects"
        data = self._get_json("/api/projects")
        if isinstance(data, dict):
            data = list(data)
        if not isinstance(data, list):
            raise WorkServerError(f"{where} answered unexpected data: {str(data)[:200]!r}")
        ids: set[int] = set()
        for item in data:
            value = item.get("id", item.get("project")) if isinstance(item, dict) else item
            try:
                ids.add(int(value))
            except (TypeError, ValueError):
                raise WorkServerError(f"{where} answered an item without id: {item!r}") from None
        return sorted(ids)

    def get_project(self, p: int) -> ProjectData:
        return self._get_model(self._project(p), ProjectData)

    def put_project(self, p: int, data: ProjectData) -> None:
        """Create or update a project (idempotent: the same PUT twice gives the same project)."""
        self._put_json(self._project(p), data.to_json())

    def delete_project(self, p: int) -> None:
        self._call("DELETE", self._project(p), _ignore, idempotent=True)

    # -- project, RUN and CLONE input files ------------------------------------------------------

    def list_project_files(self, p: int) -> list[FileData]:
        return _validate(_FILES, self._get_json(f"{self._project(p)}/files"), f"files of {p}")

    def put_file(self, p: int, path: str, src: Path | bytes) -> None:
        """Upload ``src`` (a file, streamed from disk, or bytes) as ``path``, e.g.
        ``RUN0/CLONE3/core.xml``. Idempotent, hence retried."""
        if not isinstance(src, bytes) and not Path(src).is_file():
            raise ConfigError(f"file to upload not found: {src}")
        self._call(
            "PUT", f"{self._project(p)}/files/{_file_path(path)}", _ignore,
            idempotent=True, body=src if isinstance(src, bytes) else Path(src),
        )  # fmt: skip

    def get_file(self, p: int, path: str, dest: str | os.PathLike[str]) -> Path:
        return self._download(f"{self._project(p)}/files/{_file_path(path)}", dest)

    def delete_file(self, p: int, path: str) -> None:
        self._call(
            "DELETE", f"{self._project(p)}/files/{_file_path(path)}", _ignore, idempotent=True
        )

    # -- jobs ------------------------------------------------------------------------------------

    def create_clone(self, p: int, r: int, c: int) -> None:
        """Ask the WS to create job P/R/C from the files already uploaded for it.

        The one place the create form lives (:data:`CreateForm`). Not retried on transient
        failures: the ledger checks :meth:`get_job` before trying again.
        """
        run = f"{self._project(p)}/runs/{_check_id('run', r)}/create"
        _check_id("clone", c)
        if self.create_form == "clone":
            path, body = f"{self._clone(p, r, c)}/create", None
        elif self.create_form == "run-offset":
            path, body = run, {"clones": 1, "offset": c}
        else:
            path, body = run, {"clones": c + 1}
        self._call("PUT", path, _ignore, idempotent=False, json=body)

    def get_job(self, p: int, r: int, c: int) -> JobData:
        return self._get_model(self._clone(p, r, c), JobData)

    def job_action(self, p: int, r: int, c: int, action: JobAction | str) -> None:
        """fail/reset/stop/restart a job. Not retried: the caller re-reads the job state."""
        try:
            verb = JobAction(action)
        except ValueError:
            choices = [a.value for a in JobAction]
            raise ConfigError(f"job action must be one of {choices}, got {action!r}") from None
        self._call("PUT", f"{self._clone(p, r, c)}/{verb.value}", _ignore, idempotent=False)

    def fail_job(self, p: int, r: int, c: int) -> None:
        self.job_action(p, r, c, JobAction.FAIL)

    def reset_job(self, p: int, r: int, c: int) -> None:
        self.job_action(p, r, c, JobAction.RESET)

    def stop_job(self, p: int, r: int, c: int) -> None:
        self.job_action(p, r, c, JobAction.STOP)

    def restart_job(self, p: int, r: int, c: int) -> None:
        self.job_action(p, r, c, JobAction.RESTART)

    def jobs_since(self, p: int, since: datetime | None = None) -> JobResults:
        """Jobs of project ``p`` changed since ``since`` (all jobs when ``None``).

        Pass the answer's ``ts`` as the next ``since``. ``since`` is sent in UTC to the second,
        rounded down: a change may be reported twice, never missed.
        """
        params = None
        if since is not None:
            if not isinstance(since, datetime):
                raise ConfigError(f"since must be a datetime, got {since!r}")
            moment = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
            params = {"since": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return self._get_model(f"{self._project(p)}/jobs", JobResults, params=params)

    # -- job output and GEN results ---------------------------------------------------------------

    def list_clone_files(self, p: int, r: int, c: int) -> list[FileData]:
        path = f"{self._clone(p, r, c)}/files"
        return _validate(_FILES, self._get_json(path), f"GET {self.url}{path}")

    def get_clone_file(self, p: int, r: int, c: int, path: str, dest: str | os.PathLike) -> Path:
        return self._download(f"{self._clone(p, r, c)}/files/{_file_path(path)}", dest)

    def put_clone_file(self, p: int, r: int, c: int, path: str, src: Path | bytes) -> None:
        """Upload into a CLONE's own directory (DESIGN §1 lists PUT for CLONE files)."""
        if not isinstance(src, bytes) and not Path(src).is_file():
            raise ConfigError(f"file to upload not found: {src}")
        self._call(
            "PUT", f"{self._clone(p, r, c)}/files/{_file_path(path)}", _ignore,
            idempotent=True, body=src if isinstance(src, bytes) else Path(src),
        )  # fmt: skip

    def list_gen_files(self, p: int, r: int, c: int, g: int) -> list[FileData]:
        path = f"{self._gen(p, r, c, g)}/files"
        return _validate(_FILES, self._get_json(path), f"GET {self.url}{path}")

    def get_gen_file(
        self, p: int, r: int, c: int, g: int, path: str, dest: str | os.PathLike[str]
    ) -> Path:
        return self._download(f"{self._gen(p, r, c, g)}/files/{_file_path(path)}", dest)

    def iter_gen_files(
        self, p: int, r: int, c: int, g: int, dest_dir: str | os.PathLike[str]
    ) -> Iterator[Path]:
        """Download every result file of a GEN under ``dest_dir`` (paths sanitized)."""
        for info in self.list_gen_files(p, r, c, g):
            yield self.get_gen_file(p, r, c, g, info.path, Path(dest_dir) / _local(info.path))


def _local(path: str) -> Path:
    """A server-supplied relative path as a local one, refusing ``..`` and absolute paths."""
    _file_path(path)
    return Path(*path.split("/"))


class AssignmentServerClient(_Client):
    """Client of the FAH assignment server: WS and project weights, certificate renewal."""

    _what = "assignment server"

    @staticmethod
    def _ws(ws_ip: str) -> str:
        if not isinstance(ws_ip, str) or not _HOST.match(ws_ip):
            raise ConfigError(f"ws_ip must be an IP address or host name, got {ws_ip!r}")
        return f"/api/ws/{quote(ws_ip, safe='')}"

    def get_ws(self, ws_ip: str) -> ASWorkServerData:
        return self._get_model(self._ws(ws_ip), ASWorkServerData)

    def put_ws(self, ws_ip: str, data: ASWorkServerData) -> None:
        self._put_json(self._ws(ws_ip), data.model_dump(mode="json", exclude_none=True))

    def get_project(self, ws_ip: str, p: int) -> ASProjectData:
        path = f"{self._ws(ws_ip)}/projects/{_check_id('project', p, maximum=None)}"
        return self._get_model(path, ASProjectData)

    def put_project(self, ws_ip: str, p: int, data: ASProjectData) -> None:
        path = f"{self._ws(ws_ip)}/projects/{_check_id('project', p, maximum=None)}"
        self._put_json(path, data.model_dump(mode="json", exclude_none=True))

    def renew_certificate(self, csr_pem: bytes) -> bytes:
        """POST a CSR with the current credentials; return the new PEM certificate.

        Not retried on transient failures (each success issues a certificate); the caller may
        simply call again, since the key, and so the CSR, stay the same.
        """
        if isinstance(csr_pem, str):
            csr_pem = csr_pem.encode()
        if b"CERTIFICATE REQUEST" not in csr_pem:
            raise ConfigError("renew_certificate needs a PEM certificate signing request (CSR)")

        def read(response: requests.Response) -> bytes:
            text = response.text.strip()
            if text.startswith(("{", '"')):
                data = _json_of(response)
                text = data if isinstance(data, str) else str(data.get("certificate", ""))
            if "-----BEGIN CERTIFICATE-----" not in text:
                raise WorkServerError(
                    f"POST {response.url} answered no PEM certificate: {text[:200]!r}",
                    method="POST", url=response.url, status=response.status_code,
                )  # fmt: skip
            return text.strip().encode() + b"\n"

        return self._call(
            "POST", "/api/auth/csr", read, idempotent=False, json={"csr": csr_pem.decode()}
        )


def client_from_options(
    url: str | None,
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
    ca: str | os.PathLike[str] | None = None,
    *,
    timeout: Any = DEFAULT_TIMEOUT,
    retries: int = 5,
    backoff_s: float = 0.5,
    create_form: CreateForm = "clone",
) -> WorkServerClient:
    """A :class:`WorkServerClient` from loose settings (CLI options, env vars, a config file).

    Says which setting is missing, by its option and environment variable names. ``ca=None``
    verifies the server against the system CAs.
    """
    if not url:
        raise ConfigError("no work server URL: pass --url or set FAHFLOW_WS_URL")
    if not cert or not key:
        missing = "--cert (FAHFLOW_CERT)" if not cert else "--key (FAHFLOW_KEY)"
        raise ConfigError(f"the work server needs a client certificate and key: missing {missing}")
    return WorkServerClient(
        url,
        cert=(cert, key),
        verify=ca if ca else True,
        timeout=timeout,
        retries=retries,
        backoff_s=backoff_s,
        create_form=create_form,
    )
