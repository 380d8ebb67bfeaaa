"""Routing: the route table, the :class:`Api` every handler receives, and who may call what.

Handlers live beside this module by audience (``ws_routes``, ``as_routes``,
``volunteer_routes``) and register themselves with :func:`route`. A handler answers a
:class:`~fahflow.sim.server.Response` or raises :class:`~fahflow.sim.errors.HttpError`; anything
else it raises is a simulator bug (500, traceback logged).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fahflow.sim import layout
from fahflow.sim.api.wu import missing_send_files
from fahflow.sim.ca import VOLUNTEER_CN, CertificateAuthority
from fahflow.sim.config import SimConfig
from fahflow.sim.errors import HttpError, bad_request, forbidden
from fahflow.sim.records import MAX_PROJECT, MAX_RUN_OR_CLONE, Job, Project
from fahflow.sim.server import Request, Response
from fahflow.sim.store import Store

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


def path_id(req: Request, name: str, high: int = MAX_RUN_OR_CLONE) -> int:
    """A numeric id from the path (the route matched digits), refused (400) above ``high``."""
    value = int(req.groups[name])
    if value > high:
        raise bad_request(f"{name} id {value} is out of range 0..{high}")
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
        check_role(req)
        path_matched = False
        for method, regex, func in ROUTES:
            match = regex.match(req.path)
            if match:
                path_matched = True
                if method == req.method:
                    req.groups = match.groupdict()
                    return func(self, req)
        if path_matched:
            raise HttpError(405, f"method {req.method} not allowed on {req.path}")
        raise HttpError(404, f"no endpoint {req.method} {req.path}")

    def project_home(self, project: int) -> Path:
        return layout.project_home(self.root, project)

    def clone_dir(self, project: int, run: int, clone: int) -> Path:
        return layout.clone_dir(self.root, project, run, clone)

    def project_checked(self, req: Request) -> tuple[int, Project]:
        """The project of the path, which must exist (404)."""
        project = path_id(req, "p", MAX_PROJECT)
        return project, self.store.get_project(project)

    def job_ids(self, req: Request) -> tuple[int, int, int]:
        """PROJECT (which must exist), RUN and CLONE of the path."""
        project, _ = self.project_checked(req)
        return project, path_id(req, "r"), path_id(req, "c")

    def create(self, project: int, run: int, clone: int, *, exist_ok: bool) -> Job:
        """Create one job. RUN/CLONE ids are not checked against the project's ``runs``/
        ``clones``: alchemiscale-fah, used against a real WS, creates its projects with
        ``runs=0, clones=0`` and then creates CLONEs on them (docs/simulator.md)."""
        missing = missing_send_files(self.root, self.config.send, project, run, clone)
        job, _ = self.store.create_job(project, run, clone, missing, exist_ok=exist_ok)
        return job


def _role(cn: str) -> str:
    return "volunteer" if cn == VOLUNTEER_CN else "operator"


def check_role(req: Request) -> None:
    """The adaptive-sampling API (``/api/``) is for operator certificates only: the volunteers'
    certificate (shared by every volunteer process) must not create, fail or read jobs."""
    if req.path.startswith("/api/") and _role(req.peer_cn) == "volunteer":
        raise forbidden(
            f"{req.method} {req.path}: the certificate {req.peer_cn!r} has the role volunteer, "
            "which may use only the volunteer routes /sim/*; the /api/ routes need an operator "
            "certificate issued by the AS"
        )


def require_volunteer(req: Request) -> None:
    if _role(req.peer_cn) != "volunteer":
        raise forbidden(
            f"{req.method} {req.path} is for simulated volunteers only: the certificate "
            f"{req.peer_cn!r} has the role operator; only {VOLUNTEER_CN!r} may use /sim/*"
        )
