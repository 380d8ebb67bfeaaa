"""The volunteers' internal routes (``/sim/*``, ours: a real FAH client speaks another protocol).

Only the simulator's volunteer certificate may call them. A volunteer long-polls for a WU, runs
it, and returns a tar of results or a fault.
"""

from __future__ import annotations

import json
import tempfile

from fahflow.sim.api import wu
from fahflow.sim.api.routing import Api, require_volunteer, route
from fahflow.sim.faults import behaviour
from fahflow.sim.server import Request, Response


def _fields(req: Request) -> dict:
    body = req.json()
    return body if isinstance(body, dict) else {}


@route("POST", "/sim/assign")
def assign(api: Api, req: Request) -> Response:
    """Long-poll for a WU: a tar of the WU files, the assignment in ``X-Sim-Assignment``."""
    require_volunteer(req)
    name = str(_fields(req).get("volunteer", "anonymous"))[:64]
    wait_s = api.config.assign_wait_s
    store = api.store
    with store.changed:
        assignment = store.assign(name)
        if assignment is None and not api.stopping:
            store.changed.wait(wait_s)
            assignment = None if api.stopping else store.assign(name)
    if assignment is None:
        return Response(204)
    a = assignment
    try:
        files = wu.wu_files(api.root, api.config.send, a.project, a.run, a.clone, a.gen)
    except FileNotFoundError as exc:
        store.fault(a.token, str(exc), max_retries=1)
        return Response(204)
    fate = behaviour(
        api.config.faults, api.config.seed, a.project, a.run, a.clone, a.gen, a.assigns
    )
    header = {
        "token": a.token,
        "project": a.project,
        "run": a.run,
        "clone": a.clone,
        "gen": a.gen,
        "behaviour": fate.to_json(),
    }
    store.log("wu.assigned", volunteer=name, **{k: v for k, v in header.items() if k != "token"})
    return Response(
        200, wu.pack(files), "application/x-tar", {"X-Sim-Assignment": json.dumps(header)}
    )


@route("POST", "/sim/return/{path}")
def return_results(api: Api, req: Request) -> Response:
    require_volunteer(req)
    token = req.groups["path"]
    incoming = api.root / "incoming"  # same filesystem as the results; removed on close
    incoming.mkdir(exist_ok=True)
    with tempfile.TemporaryFile(dir=incoming) as spool:
        for piece in req.body.pieces():  # before the store's lock: the network may be slow
            spool.write(piece)
        spool.seek(0)
        job = api.store.finish(
            token,
            api.config.gens,
            lambda j: wu.write_results(api.root, j.project, j.run, j.clone, j.gen, spool),
        )
    return Response.of(job)


@route("POST", "/sim/fault/{path}")
def return_fault(api: Api, req: Request) -> Response:
    require_volunteer(req)
    reason = str(_fields(req).get("reason", "faulty return"))[:500]
    job = api.store.fault(req.groups["path"], reason, api.config.max_retries)
    return Response.of(job)
