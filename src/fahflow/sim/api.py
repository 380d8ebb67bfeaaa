"""The WS and AS endpoints of DESIGN §1, plus the volunteers' internal ``/sim/`` endpoints.

Every JSON answer is a model of :mod:`fahflow.ws.models`, so client and simulator cannot drift.
Layout on disk, under the simulator root::

    PROJ{p}/                          project home ($home in the send list)
    PROJ{p}/RUN{r}/...                RUN inputs (core.xml, system/state/integrator .xml.bz2)
    PROJ{p}/RUN{r}/CLONE{c}/...       CLONE inputs
    PROJ{p}/RUN{r}/CLONE{c}/results{g}/   returned results of GEN g
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from typing import IO

from fahflow.atomic import atomic_open
from fahflow.errors import ConfigError, NotFound
from fahflow.sim.ca import VOLUNTEER_CN, CertificateAuthority, common_name, load_csr
from fahflow.sim.config import SimConfig
from fahflow.sim.faults import behaviour
from fahflow.sim.paths import list_files, resolve_under
from fahflow.sim.server import Body, Forbidden, Request, Response
from fahflow.sim.store import Assignment, Store
from fahflow.ws.models import (
    MAX_RUN_OR_CLONE,
    ASProjectData,
    ASWorkServerData,
    JobAction,
    JobData,
    ProjectData,
)

DEFAULT_CERT_LIFETIME_S = 30 * 86400.0
MAX_PROJECT = 2**31 - 1

Handler = Callable[["Api", Request], Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register an endpoint; ``{p}``-style groups are digits, ``{path}`` is the rest."""
    regex = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>[0-9]+)", pattern)
    regex = regex.replace("(?P<path>[0-9]+)", "(?P<path>.+)")
    regex = regex.replace("(?P<ip>[0-9]+)", "(?P<ip>[A-Za-z0-9.:_-]+)")
    compiled = re.compile(f"^{regex}$")

    def register(func: Handler) -> Handler:
        ROUTES.append((method, compiled, func))
        return func

    return register


def _int(req: Request, name: str, high: int = MAX_RUN_OR_CLONE) -> int:
    value = int(req.groups[name])
    if value > high:
        raise ConfigError(f"{name} id {value} is out of range 0..{high}")
    return value


class Api:
    """Endpoint logic over a :class:`Store`, the project files and the CA."""

    def __init__(self, root: Path, store: Store, ca: CertificateAuthority, config: SimConfig):
        self.root = root
        self.store = store
        self.ca = ca
        self.config = config
        self.stopping = False

    def dispatch(self, req: Request) -> Response:
        _check_role(req)
        path_matched = False
        for method, regex, func in ROUTES:
            match = regex.match(req.path)
            if match:
                path_matched = True
                if method == req.method:
                    req.groups = match.groupdict()
                    return func(self, req)
        if path_matched:
            return Response(405, b'{"error": "method not allowed"}')
        raise NotFound(f"no endpoint {req.method} {req.path}")

    # -- helpers ----------------------------------------------------------------------------

    def project_home(self, project: int) -> Path:
        return self.root / f"PROJ{project}"

    def clone_dir(self, project: int, run: int, clone: int) -> Path:
        return self.project_home(project) / f"RUN{run}" / f"CLONE{clone}"

    def send_files(self, project: int, run: int, clone: int, gen: int) -> list[Path]:
        """The ``<send>`` list expanded for one job ($home, $project, $run, $clone, $gen)."""
        values = {
            "home": str(self.project_home(project)),
            "project": project,
            "run": run,
            "clone": clone,
            "gen": gen,
        }
        out = []
        for item in self.config.send:
            try:
                out.append(Path(Template(item).substitute(values)))
            except (KeyError, ValueError) as exc:
                raise ConfigError(
                    f"simulator config: send entry {item!r}: bad variable {exc}"
                ) from None
        return out

    def _project_checked(self, req: Request) -> tuple[int, ProjectData]:
        project = _int(req, "p", MAX_PROJECT)
        return project, self.store.get_project(project)

    def _job_ids(self, req: Request) -> tuple[int, int, int]:
        project, _ = self._project_checked(req)
        run, clone = _int(req, "r"), _int(req, "c")
        return project, run, clone

    def create(self, project: int, run: int, clone: int, *, exist_ok: bool) -> JobData:
        """Create one job. RUN/CLONE ids are not checked against the project's ``runs``/
        ``clones``: alchemiscale-fah, used against a real WS, creates its projects with
        ``runs=0, clones=0`` and then creates CLONEs on them (docs/simulator.md)."""
        missing = [str(p) for p in self.send_files(project, run, clone, 0) if not p.is_file()]
        job, _ = self.store.create_job(project, run, clone, missing, exist_ok=exist_ok)
        return job

    # -- volunteers -------------------------------------------------------------------------

    def wu_files(self, a: Assignment) -> list[tuple[str, Path]]:
        """Files of the WU for GEN ``a.gen``: the send list, with the previous GEN's final state
        standing in for ``state.xml*`` from GEN 1 on (as FAH continues a trajectory)."""
        files = []
        for path in self.send_files(a.project, a.run, a.clone, a.gen):
            name = path.name
            if a.gen > 0 and name.startswith("state.xml"):
                prev = self.clone_dir(a.project, a.run, a.clone) / f"results{a.gen - 1}"
                path = next((prev / n for n in CHECKPOINT_NAMES if (prev / n).is_file()), path)
                name = "state.xml.bz2" if path.suffix == ".bz2" else "state.xml"
            if not path.is_file():
                raise FileNotFoundError(f"send file {path} is missing")
            files.append((name, path))
        return files

    def write_results(self, job: JobData, tar_file: IO[bytes]) -> None:
        """Unpack returned results into ``results{gen}/``, replacing an earlier return."""
        dest = self.clone_dir(job.project, job.run, job.clone) / f"results{job.gen}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".results{job.gen}.", dir=dest.parent))
        try:
            with tarfile.open(fileobj=tar_file, mode="r:") as tar:
                members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
                tar.extractall(tmp, members=members, filter="data")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ConfigError(f"returned results are not a valid tar: {exc}") from exc


CHECKPOINT_NAMES = ("checkpointState.xml.bz2", "checkpointState.xml")


def _role(cn: str) -> str:
    return "volunteer" if cn == VOLUNTEER_CN else "operator"


def _check_role(req: Request) -> None:
    """The adaptive-sampling API (``/api/``) is for operator certificates only: the volunteers'
    certificate (shared by every volunteer process) must not create, fail or read jobs."""
    if req.path.startswith("/api/") and _role(req.peer_cn) == "volunteer":
        raise Forbidden(
            f"{req.method} {req.path}: the certificate {req.peer_cn!r} has the role volunteer, "
            "which may use only the volunteer routes /sim/*; the /api/ routes need an operator "
            "certificate issued by the AS",
            status=403,
        )


def _volunteer(req: Request) -> None:
    if _role(req.peer_cn) != "volunteer":
        raise Forbidden(
            f"{req.method} {req.path} is for simulated volunteers only: the certificate "
            f"{req.peer_cn!r} has the role operator; only {VOLUNTEER_CN!r} may use /sim/*",
            status=403,
        )


# -- WS: projects --------------------------------------------------------------------------


@route("GET", "/api/projects")
def list_projects(api: Api, req: Request) -> Response:
    """``{"<id>": ProjectData}``: the shape alchemiscale-fah's ``list_projects`` reads from a real
    WS (``compute/client.py``)."""
    return Response.of({str(p): api.store.get_project(p) for p in api.store.list_projects()})


@route("GET", "/api/projects/{p}")
def get_project(api: Api, req: Request) -> Response:
    return Response.of(api._project_checked(req)[1])


@route("PUT", "/api/projects/{p}")
def put_project(api: Api, req: Request) -> Response:
    project = _int(req, "p", MAX_PROJECT)
    data = ProjectData.model_validate(req.json())
    api.project_home(project).mkdir(parents=True, exist_ok=True)
    return Response.of(api.store.put_project(project, data))


@route("DELETE", "/api/projects/{p}")
def delete_project(api: Api, req: Request) -> Response:
    api.store.delete_project(_int(req, "p", MAX_PROJECT))
    return Response.of({})


# -- WS: project files -----------------------------------------------------------------------


@route("GET", "/api/projects/{p}/files")
def list_project_files(api: Api, req: Request) -> Response:
    project, _ = api._project_checked(req)
    return Response.of(list_files(api.project_home(project), skip_results=True))


def _get_file(base: Path, raw: str) -> Response:
    path = resolve_under(base, raw)
    if not path.is_file():
        raise NotFound(f"file {raw} not found")
    return Response(200, path, "application/octet-stream")


def _put_file(base: Path, raw: str, body: Body) -> Response:
    """Stream the body into a temporary file beside the target, fsync, rename: the target is
    the old file or the whole new one, and a refused (413) or broken upload leaves nothing."""
    path = resolve_under(base, raw)
    if path.is_dir():
        raise ConfigError(f"refused path {raw!r}: is a directory")
    size = 0
    with atomic_open(path, "wb") as handle:
        for piece in body.pieces():
            handle.write(piece)
            size += len(piece)
    return Response.of({"path": path.relative_to(base.resolve()).as_posix(), "size": size})


@route("GET", "/api/projects/{p}/files/{path}")
def get_project_file(api: Api, req: Request) -> Response:
    project, _ = api._project_checked(req)
    return _get_file(api.project_home(project), req.groups["path"])


@route("PUT", "/api/projects/{p}/files/{path}")
def put_project_file(api: Api, req: Request) -> Response:
    project, _ = api._project_checked(req)
    return _put_file(api.project_home(project), req.groups["path"], req.body)


@route("DELETE", "/api/projects/{p}/files/{path}")
def delete_project_file(api: Api, req: Request) -> Response:
    project, _ = api._project_checked(req)
    path = resolve_under(api.project_home(project), req.groups["path"])
    if not path.is_file():
        raise NotFound(f"file {req.groups['path']} not found")
    path.unlink()
    return Response.of({})


# -- WS: jobs ------------------------------------------------------------------------------


@route("PUT", "/api/projects/{p}/runs/{r}/clones/{c}/create")
def create_clone(api: Api, req: Request) -> Response:
    """Per-CLONE create: an existing job is a 409, never re-created."""
    project, run, clone = api._job_ids(req)
    return Response.of(api.create(project, run, clone, exist_ok=False))


@route("PUT", "/api/projects/{p}/runs/{r}/create")
def create_run(api: Api, req: Request) -> Response:
    """RUN-level create ``{"clones": N, "offset": C}``: clones C..C+N-1 that do not exist yet;
    existing ones are left untouched. Answers every job of the range."""
    project, _ = api._project_checked(req)
    run = _int(req, "r")
    body = req.json()
    if not isinstance(body, dict):
        raise ConfigError(f"create body must be a JSON object, got {body!r}")
    clones, offset = body.get("clones", 1), body.get("offset", 0)
    for name, value in (("clones", clones), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"create body field {name!r} must be an integer ≥ 0, got {value!r}")
    if offset + clones > MAX_RUN_OR_CLONE + 1:
        raise ConfigError(f"clones {offset}..{offset + clones - 1} exceed {MAX_RUN_OR_CLONE}")
    jobs = [api.create(project, run, c, exist_ok=True) for c in range(offset, offset + clones)]
    return Response.of(jobs)


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}")
def get_job(api: Api, req: Request) -> Response:
    return Response.of(api.store.get_job(*api._job_ids(req)))


for _action in JobAction:

    def _job_action(api: Api, req: Request, action: JobAction = _action) -> Response:
        return Response.of(api.store.job_action(*api._job_ids(req), action))

    route("PUT", f"/api/projects/{{p}}/runs/{{r}}/clones/{{c}}/{_action.value}")(_job_action)


@route("GET", "/api/projects/{p}/jobs")
def jobs_since(api: Api, req: Request) -> Response:
    project, _ = api._project_checked(req)
    raw = (req.query.get("since") or [""])[0]
    since = None
    if raw:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise ConfigError(f"since={raw!r} is not an ISO 8601 time") from None
    return Response.of(api.store.jobs_since(project, since))


# -- WS: CLONE and GEN files -----------------------------------------------------------------


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/files")
def list_clone_files(api: Api, req: Request) -> Response:
    return Response.of(list_files(api.clone_dir(*api._job_ids(req))))


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/files/{path}")
def get_clone_file(api: Api, req: Request) -> Response:
    return _get_file(api.clone_dir(*api._job_ids(req)), req.groups["path"])


@route("PUT", "/api/projects/{p}/runs/{r}/clones/{c}/files/{path}")
def put_clone_file(api: Api, req: Request) -> Response:
    base = api.clone_dir(*api._job_ids(req))
    return _put_file(base, req.groups["path"], req.body)


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/gens/{g}/files")
def list_gen_files(api: Api, req: Request) -> Response:
    base = api.clone_dir(*api._job_ids(req)) / f"results{_int(req, 'g', 2**31)}"
    return Response.of(list_files(base))


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/gens/{g}/files/{path}")
def get_gen_file(api: Api, req: Request) -> Response:
    base = api.clone_dir(*api._job_ids(req)) / f"results{_int(req, 'g', 2**31)}"
    return _get_file(base, req.groups["path"])


# -- AS ----------------------------------------------------------------------------------------


@route("GET", "/api/ws/{ip}")
def get_as_ws(api: Api, req: Request) -> Response:
    return Response.of(api.store.get_as_ws(req.groups["ip"]))


@route("PUT", "/api/ws/{ip}")
def put_as_ws(api: Api, req: Request) -> Response:
    data = ASWorkServerData.model_validate(req.json())
    return Response.of(api.store.put_as_ws(req.groups["ip"], data))


@route("GET", "/api/ws/{ip}/projects/{p}")
def get_as_project(api: Api, req: Request) -> Response:
    return Response.of(api.store.get_as_project(req.groups["ip"], _int(req, "p", MAX_PROJECT)))


@route("PUT", "/api/ws/{ip}/projects/{p}")
def put_as_project(api: Api, req: Request) -> Response:
    data = ASProjectData.model_validate(req.json())
    project = _int(req, "p", MAX_PROJECT)
    return Response.of(api.store.put_as_project(req.groups["ip"], project, data))


@route("POST", "/api/auth/csr")
def renew_certificate(api: Api, req: Request) -> Response:
    """Sign the submitted CSR for the holder of a valid certificate with the same CN
    (assumption: the AS does not let one operator obtain another's certificate)."""
    body = req.json()
    csr_pem = body.get("csr") if isinstance(body, dict) else None
    if not isinstance(csr_pem, str):
        raise ConfigError('renewal body must be JSON {"csr": "<PEM>"}')
    csr = load_csr(csr_pem.encode())
    cn = common_name(csr.subject)
    if cn != req.peer_cn:
        raise Forbidden(f"CSR is for {cn!r} but the caller is {req.peer_cn!r}", status=403)
    lifetime = api.config.faults.cert_lifetime_s or DEFAULT_CERT_LIFETIME_S
    pem = api.ca.issue(csr_pem.encode(), timedelta(seconds=lifetime))
    api.store.log("as.csr.signed", cn=cn, lifetime_s=lifetime)
    return Response(200, pem, "application/x-pem-file")


# -- volunteers (internal) ---------------------------------------------------------------------


@route("POST", "/sim/assign")
def assign(api: Api, req: Request) -> Response:
    """Long-poll for a WU: a tar of the WU files, the assignment in ``X-Sim-Assignment``."""
    _volunteer(req)
    name = str(req.json().get("volunteer", "anonymous"))[:64]
    wait_s = api.config.assign_wait_s
    store = api.store
    with store.changed:
        assignment = store.assign(name)
        if assignment is None and not api.stopping:
            store.changed.wait(wait_s)
            assignment = None if api.stopping else store.assign(name)
    if assignment is None:
        return Response(204)
    try:
        files = api.wu_files(assignment)
    except (FileNotFoundError, ConfigError) as exc:
        store.fault(assignment.token, str(exc), max_retries=1)
        return Response(204)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        for name_in_wu, path in files:
            tar.add(path, arcname=name_in_wu)
    fate = behaviour(
        api.config.faults,
        api.config.seed,
        assignment.project,
        assignment.run,
        assignment.clone,
        assignment.gen,
        assignment.assigns,
    )
    header = {
        "token": assignment.token,
        "project": assignment.project,
        "run": assignment.run,
        "clone": assignment.clone,
        "gen": assignment.gen,
        "behaviour": fate.to_json(),
    }
    store.log("wu.assigned", volunteer=name, **{k: v for k, v in header.items() if k != "token"})
    return Response(
        200, buffer.getvalue(), "application/x-tar", {"X-Sim-Assignment": json.dumps(header)}
    )


@route("POST", "/sim/return/{path}")
def return_results(api: Api, req: Request) -> Response:
    _volunteer(req)
    token = req.groups["path"]
    incoming = api.root / "incoming"  # same filesystem as the results; removed on close
    incoming.mkdir(exist_ok=True)
    with tempfile.TemporaryFile(dir=incoming) as spool:
        for piece in req.body.pieces():  # before the store's lock: the network may be slow
            spool.write(piece)
        spool.seek(0)
        job = api.store.finish(token, api.config.gens, lambda j: api.write_results(j, spool))
    return Response.of(job)


@route("POST", "/sim/fault/{path}")
def return_fault(api: Api, req: Request) -> Response:
    _volunteer(req)
    reason = str(req.json().get("reason", "faulty return"))[:500]
    job = api.store.fault(req.groups["path"], reason, api.config.max_retries)
    return Response.of(job)
