"""Client of a Folding@home work server's adaptive-sampling API (DESIGN §1).

Every endpoint is one short method over the transport (:mod:`fahflow.ws.transport`), and each
says whether it may be repeated (:class:`~fahflow.ws.transport.Repeat`): reads, uploads, deletes
and project settings are idempotent and retried; creating a CLONE and job actions are not, and a
lost answer to them is :class:`~fahflow.errors.OutcomeUnknown`, whose message says to look at the
job first. The create form, of which two are on record, lives in
:meth:`WorkServerClient.create_clone`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import TypeAdapter

from fahflow.errors import ConfigError, NotFound, WorkServerError
from fahflow.ws.models import FileData, JobAction, JobData, JobResults, ProjectData
from fahflow.ws.transport import (
    DEFAULT_TIMEOUT,
    MAX_BACKOFF_S,
    CertPair,
    Repeat,
    Transport,
    Verify,
    check_id,
    drop_answer,
    file_url_path,
    validate_answer,
)

CreateForm = Literal["clone", "run-offset", "run-count"]
"""How a CLONE is created (DESIGN §1: two forms are on record, and the WS version decides).

``"clone"``: ``PUT /api/projects/{p}/runs/{r}/clones/{c}/create``, no body (recommended by the WS
maintainer; needs WS ≥ 10.3.4).
``"run-offset"``: ``PUT /api/projects/{p}/runs/{r}/create`` with ``{"clones": 1, "offset": c}``.
``"run-count"``: ``PUT /api/projects/{p}/runs/{r}/create`` with ``{"clones": c + 1}`` (the previous
implementation's form).
"""
CREATE_FORMS: tuple[str, ...] = get_args(CreateForm)

_FILES = TypeAdapter(list[FileData])


class WorkServerClient(Transport):
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
        return f"/api/projects/{check_id('project', p, maximum=None)}"

    def _clone(self, p: int, r: int, c: int) -> str:
        return f"{self._project(p)}/runs/{check_id('run', r)}/clones/{check_id('clone', c)}"

    def _gen(self, p: int, r: int, c: int, g: int) -> str:
        return f"{self._clone(p, r, c)}/gens/{check_id('gen', g, maximum=None)}"

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
        self._call("DELETE", self._project(p), drop_answer, repeat=Repeat.BY_CLIENT)

    # -- project, RUN and CLONE input files ------------------------------------------------------

    def list_project_files(self, p: int) -> list[FileData]:
        return validate_answer(_FILES, self._get_json(f"{self._project(p)}/files"), f"files of {p}")

    def put_file(self, p: int, path: str, src: Path | bytes) -> None:
        """Upload ``src`` (a file, streamed from disk, or bytes) as ``path``, e.g.
        ``RUN0/CLONE3/core.xml``. Idempotent, hence retried."""
        if not isinstance(src, bytes) and not Path(src).is_file():
            raise ConfigError(f"file to upload not found: {src}")
        self._call(
            "PUT", f"{self._project(p)}/files/{file_url_path(path)}", drop_answer,
            repeat=Repeat.BY_CLIENT, body=src if isinstance(src, bytes) else Path(src),
        )  # fmt: skip

    def get_file(self, p: int, path: str, dest: str | os.PathLike[str]) -> Path:
        return self._download(f"{self._project(p)}/files/{file_url_path(path)}", dest)

    def delete_file(self, p: int, path: str) -> None:
        path = f"{self._project(p)}/files/{file_url_path(path)}"
        self._call("DELETE", path, drop_answer, repeat=Repeat.BY_CLIENT)

    # -- jobs ------------------------------------------------------------------------------------

    def create_clone(self, p: int, r: int, c: int) -> None:
        """Ask the WS to create job P/R/C from the files already uploaded for it.

        The one place the create form lives (:data:`CreateForm`). Not idempotent (ids are never
        reused, so a second create is refused): a lost answer raises
        :class:`~fahflow.errors.OutcomeUnknown`, and the ledger checks :meth:`get_job` before
        trying again.
        """
        run = f"{self._project(p)}/runs/{check_id('run', r)}/create"
        check_id("clone", c)
        if self.create_form == "clone":
            path, body = f"{self._clone(p, r, c)}/create", None
        elif self.create_form == "run-offset":
            path, body = run, {"clones": 1, "offset": c}
        else:
            path, body = run, {"clones": c + 1}
        self._call(
            "PUT", path, drop_answer, repeat=Repeat.AFTER_CHECK, check=_look_at(p, r, c), json=body
        )

    def get_job(self, p: int, r: int, c: int) -> JobData:
        return self._get_model(self._clone(p, r, c), JobData)

    def job_action(self, p: int, r: int, c: int, action: JobAction | str) -> None:
        """fail/reset/stop/restart a job. Not idempotent (a restart counts against the job's
        limit): a lost answer raises :class:`~fahflow.errors.OutcomeUnknown`, and the caller
        re-reads the job state."""
        try:
            verb = JobAction(action)
        except ValueError:
            choices = [a.value for a in JobAction]
            raise ConfigError(f"job action must be one of {choices}, got {action!r}") from None
        path = f"{self._clone(p, r, c)}/{verb.value}"
        self._call("PUT", path, drop_answer, repeat=Repeat.AFTER_CHECK, check=_look_at(p, r, c))

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
        return validate_answer(_FILES, self._get_json(path), f"GET {self.url}{path}")

    def get_clone_file(self, p: int, r: int, c: int, path: str, dest: str | os.PathLike) -> Path:
        return self._download(f"{self._clone(p, r, c)}/files/{file_url_path(path)}", dest)

    def put_clone_file(self, p: int, r: int, c: int, path: str, src: Path | bytes) -> None:
        """Upload into a CLONE's own directory (DESIGN §1 lists PUT for CLONE files)."""
        if not isinstance(src, bytes) and not Path(src).is_file():
            raise ConfigError(f"file to upload not found: {src}")
        self._call(
            "PUT", f"{self._clone(p, r, c)}/files/{file_url_path(path)}", drop_answer,
            repeat=Repeat.BY_CLIENT, body=src if isinstance(src, bytes) else Path(src),
        )  # fmt: skip

    def list_gen_files(self, p: int, r: int, c: int, g: int) -> list[FileData]:
        path = f"{self._gen(p, r, c, g)}/files"
        return validate_answer(_FILES, self._get_json(path), f"GET {self.url}{path}")

    def get_gen_file(
        self, p: int, r: int, c: int, g: int, path: str, dest: str | os.PathLike[str]
    ) -> Path:
        return self._download(f"{self._gen(p, r, c, g)}/files/{file_url_path(path)}", dest)

    def iter_gen_files(
        self, p: int, r: int, c: int, g: int, dest_dir: str | os.PathLike[str]
    ) -> Iterator[Path]:
        """Download every result file of a GEN under ``dest_dir`` (paths sanitized)."""
        for info in self.list_gen_files(p, r, c, g):
            yield self.get_gen_file(p, r, c, g, info.path, Path(dest_dir) / _local(info.path))

    def download_gen(
        self, p: int, r: int, c: int, g: int, out_dir: str | os.PathLike[str]
    ) -> list[Path]:
        """Download every result file of GEN ``g`` of job P/R/C into ``out_dir`` (created), as
        one set: the files are first fetched into a staging folder beside ``out_dir``, and only
        when all arrived do they replace those in ``out_dir``. An interrupted download leaves
        ``out_dir`` as it was and no staging folder behind. Returns the paths in ``out_dir``.

        A GEN without files is :class:`~fahflow.errors.NotFound`, naming the job's state.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out} exists and is not a directory: give a folder for the results")
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.parent / f".{out.name}.part-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            fetched = [f.relative_to(staging) for f in self.iter_gen_files(p, r, c, g, staging)]
            if not fetched:
                state = self.get_job(p, r, c).state.value
                raise NotFound(f"GEN {g} of job {p}:{r}:{c} has no result files (job is {state})")
            _replace_into(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [out / rel for rel in fetched]


def _replace_into(staging: Path, out: Path) -> None:
    """Move every file of ``staging`` to the same place under ``out`` (each rename atomic), or
    ``staging`` itself into place when ``out`` does not exist yet."""
    if not out.exists():
        staging.rename(out)
        return
    for source in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = out / source.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def _look_at(p: int, r: int, c: int) -> str:
    """What to do before repeating a job call whose answer was lost."""
    return f"check with `fahflow ws job {p} {r} {c}` before trying again"


def _local(path: str) -> Path:
    """A server-supplied relative path as a local one, refusing ``..`` and absolute paths."""
    file_url_path(path)
    return Path(*path.split("/"))
