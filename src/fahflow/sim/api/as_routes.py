"""The assignment server's routes: WS and project weights, and certificate renewal."""

from __future__ import annotations

from datetime import timedelta

from fahflow.errors import ConfigError
from fahflow.sim.api.routing import Api, path_id, route
from fahflow.sim.ca import common_name, load_csr
from fahflow.sim.errors import bad_request, forbidden
from fahflow.sim.records import MAX_PROJECT, ASProject, ASWorkServer
from fahflow.sim.server import Request, Response

DEFAULT_CERT_LIFETIME_S = 30 * 86400.0


@route("GET", "/api/ws/{ip}")
def get_as_ws(api: Api, req: Request) -> Response:
    return Response.of(api.store.get_as_ws(req.groups["ip"]))


@route("PUT", "/api/ws/{ip}")
def put_as_ws(api: Api, req: Request) -> Response:
    data = ASWorkServer.from_json(req.json())
    return Response.of(api.store.put_as_ws(req.groups["ip"], data))


@route("GET", "/api/ws/{ip}/projects/{p}")
def get_as_project(api: Api, req: Request) -> Response:
    return Response.of(api.store.get_as_project(req.groups["ip"], path_id(req, "p", MAX_PROJECT)))


@route("PUT", "/api/ws/{ip}/projects/{p}")
def put_as_project(api: Api, req: Request) -> Response:
    data = ASProject.from_json(req.json())
    project = path_id(req, "p", MAX_PROJECT)
    return Response.of(api.store.put_as_project(req.groups["ip"], project, data))


@route("POST", "/api/auth/csr")
def renew_certificate(api: Api, req: Request) -> Response:
    """Sign the submitted CSR for the holder of a valid certificate with the same CN
    (assumption: the AS does not let one operator obtain another's certificate)."""
    body = req.json()
    csr_pem = body.get("csr") if isinstance(body, dict) else None
    if not isinstance(csr_pem, str):
        raise bad_request('renewal body must be JSON {"csr": "<PEM>"}')
    try:
        csr = load_csr(csr_pem.encode())
    except ConfigError as exc:  # not a PEM CSR, a bad signature, no CN
        raise bad_request(f"renewal body field 'csr': {exc}") from None
    cn = common_name(csr.subject)
    if cn != req.peer_cn:
        raise forbidden(f"CSR is for {cn!r} but the caller is {req.peer_cn!r}")
    lifetime = api.config.faults.cert_lifetime_s or DEFAULT_CERT_LIFETIME_S
    pem = api.ca.issue(csr_pem.encode(), timedelta(seconds=lifetime))
    api.store.log("as.csr.signed", cn=cn, lifetime_s=lifetime)
    return Response(200, pem, "application/x-pem-file")
