"""The WS adaptive-sampling routes of DESIGN §1: projects, their files, jobs, CLONE/GEN files.

Answers are the JSON of :mod:`fahflow.sim.records`, in the shapes on record.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fahflow.atomic import atomic_open
from fahflow.sim import layout
from fahflow.sim.api.routing import Api, path_id, route
from fahflow.sim.errors import bad_request, not_found
from fahflow.sim.paths import list_files, resolve_under
from fahflow.sim.records import MAX_PROJECT, MAX_RUN_OR_CLONE, JobAction, Project
from fahflow.sim.server import Body, Request, Response

# -- projects ----------------------------------------------------------------------------------


@route("GET", "/api/projects")
def list_projects(api: Api, req: Request) -> Response:
    """``{"<id>": ProjectData}``: the shape alchemiscale-fah's ``list_projects`` reads from a real
    WS (``compute/client.py``)."""
    return Response.of({str(p): api.store.get_project(p) for p in api.store.list_projects()})


@route("GET", "/api/projects/{p}")
def get_project(api: Api, req: Request) -> Response:
    return Response.of(api.project_checked(req)[1])


@route("PUT", "/api/projects/{p}")
def put_project(api: Api, req: Request) -> Response:
    project = path_id(req, "p", MAX_PROJECT)
    data = Project.from_json(req.json())
    api.project_home(project).mkdir(parents=True, exist_ok=True)
    return Response.of(api.store.put_project(project, data))


@route("DELETE", "/api/projects/{p}")
def delete_project(api: Api, req: Request) -> Response:
    api.store.delete_project(path_id(req, "p", MAX_PROJECT))
    return Response.of({})


# -- project files ----------------------------------------------------------------------------


@route("GET", "/api/projects/{p}/files")
def list_project_files(api: Api, req: Request) -> Response:
    project, _ = api.project_checked(req)
    return Response.of(list_files(api.project_home(project), skip_results=True))


def _get_file(base: Path, raw: str) -> Response:
    path = resolve_under(base, raw)
    if not path.is_file():
        raise not_found(f"file {raw} not found")
    return Response(200, path, "application/octet-stream")


def _put_file(base: Path, raw: str, body: Body) -> Response:
    """Stream the body into a temporary file beside the target, fsync, rename: the target is
    the old file or the whole new one, and a refused (413) or broken upload leaves nothing."""
    path = resolve_under(base, raw)
    if path.is_dir():
        raise bad_request(f"refused path {raw!r}: is a directory")
    size = 0
    with atomic_open(path, "wb") as handle:
        for piece in body.pieces():
            handle.write(piece)
            size += len(piece)
    return Response.of({"path": path.relative_to(base.resolve()).as_posix(), "size": size})


@route("GET", "/api/projects/{p}/files/{path}")
def get_project_file(api: Api, req: Request) -> Response:
    project, _ = api.project_checked(req)
    return _get_file(api.project_home(project), req.groups["path"])


@route("PUT", "/api/projects/{p}/files/{path}")
def put_project_file(api: Api, req: Request) -> Response:
    project, _ = api.project_checked(req)
    return _put_file(api.project_home(project), req.groups["path"], req.body)


@route("DELETE", "/api/projects/{p}/files/{path}")
def delete_project_file(api: Api, req: Request) -> Response:
    project, _ = api.project_checked(req)
    path = resolve_under(api.project_home(project), req.groups["path"])
    if not path.is_file():
        raise not_found(f"file {req.groups['path']} not found")
    path.unlink()
    return Response.of({})


# -- jobs --------------------------------------------------------------------------------------


@route("PUT", "/api/projects/{p}/runs/{r}/clones/{c}/create")
def create_clone(api: Api, req: Request) -> Response:
    """Per-CLONE create: an existing job is a 409, never re-created."""
    project, run, clone = api.job_ids(req)
    return Response.of(api.create(project, run, clone, exist_ok=False))


@route("PUT", "/api/projects/{p}/runs/{r}/create")
def create_run(api: Api, req: Request) -> Response:
    """RUN-level create ``{"clones": N, "offset": C}``: clones C..C+N-1 that do not exist yet;
    existing ones are left untouched. Answers every job of the range."""
    project, _ = api.project_checked(req)
    run = path_id(req, "r")
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request(f"create body must be a JSON object, got {body!r}")
    clones, offset = body.get("clones", 1), body.get("offset", 0)
    for name, value in (("clones", clones), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad_request(f"create body field {name!r} must be an integer ≥ 0, got {value!r}")
    if offset + clones > MAX_RUN_OR_CLONE + 1:
        raise bad_request(f"clones {offset}..{offset + clones - 1} exceed {MAX_RUN_OR_CLONE}")
    jobs = [api.create(project, run, c, exist_ok=True) for c in range(offset, offset + clones)]
    return Response.of(jobs)


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}")
def get_job(api: Api, req: Request) -> Response:
    return Response.of(api.store.get_job(*api.job_ids(req)))


for _action in JobAction:

    def _job_action(api: Api, req: Request, action: JobAction = _action) -> Response:
        return Response.of(api.store.job_action(*api.job_ids(req), action))

    route("PUT", f"/api/projects/{{p}}/runs/{{r}}/clones/{{c}}/{_action.value}")(_job_action)


@route("GET", "/api/projects/{p}/jobs")
def jobs_since(api: Api, req: Request) -> Response:
    project, _ = api.project_checked(req)
    raw = (req.query.get("since") or [""])[0]
    since = None
    if raw:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise bad_request(f"since={raw!r} is not an ISO 8601 time") from None
    return Response.of(api.store.jobs_since(project, since))


# -- CLONE and GEN files -----------------------------------------------------------------------


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/files")
def list_clone_files(api: Api, req: Request) -> Response:
    return Response.of(list_files(api.clone_dir(*api.job_ids(req))))


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/files/{path}")
def get_clone_file(api: Api, req: Request) -> Response:
    return _get_file(api.clone_dir(*api.job_ids(req)), req.groups["path"])


@route("PUT", "/api/projects/{p}/runs/{r}/clones/{c}/files/{path}")
def put_clone_file(api: Api, req: Request) -> Response:
    base = api.clone_dir(*api.job_ids(req))
    return _put_file(base, req.groups["path"], req.body)


def _gen_dir(api: Api, req: Request) -> Path:
    return layout.results_dir(api.root, *api.job_ids(req), path_id(req, "g", 2**31))


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/gens/{g}/files")
def list_gen_files(api: Api, req: Request) -> Response:
    return Response.of(list_files(_gen_dir(api, req)))


@route("GET", "/api/projects/{p}/runs/{r}/clones/{c}/gens/{g}/files/{path}")
def get_gen_file(api: Api, req: Request) -> Response:
    return _get_file(_gen_dir(api, req), req.groups["path"])
