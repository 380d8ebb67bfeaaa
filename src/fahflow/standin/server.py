"""alchemiscale's own compute and user FastAPI apps, served by uvicorn over the stand-in's stores.

Each stand-in gets its own copy of each app (:func:`app_over`): a new ``FastAPI`` holding
alchemiscale's routes (``include_router`` of the module app's router: same endpoints, same
``GzipRoute``, same token dependency), its middleware, exception handlers and dependency overrides,
plus three overrides of ours (state store, object store, settings). The module-level apps are never
changed, so two stand-ins can serve in one process (tests, the demo).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from alchemiscale.base.api import get_n4js_depends, get_s3os_depends
from alchemiscale.settings import APISettings, ComputeAPISettings, get_base_api_settings
from fastapi import FastAPI

from fahflow.standin.store import ObjectStore, StateStore

# Required by alchemiscale's settings models, unused by the stand-in: no Neo4j, no S3.
_UNUSED_BACKENDS = {
    "NEO4J_URL": "standin://sqlite",
    "NEO4J_USER": "standin",
    "NEO4J_PASS": "unused",
    "AWS_S3_BUCKET": "standin",
    "AWS_S3_PREFIX": "standin",
    "AWS_DEFAULT_REGION": "standin",
}


@dataclass(frozen=True)
class Urls:
    """Where a served stand-in listens, e.g. ``http://127.0.0.1:40123``."""

    compute: str
    interface: str


@dataclass(frozen=True)
class ApiSettings:
    """What the stand-in configures of alchemiscale's settings."""

    jwt_secret: str
    registration_expire_s: int
    forgive_time_s: int
    max_failures: int

    def compute(self) -> ComputeAPISettings:
        return ComputeAPISettings(
            JWT_SECRET_KEY=self.jwt_secret,
            ALCHEMISCALE_COMPUTE_API_REGISTRATION_EXPIRE_SECONDS=self.registration_expire_s,
            ALCHEMISCALE_COMPUTE_API_FORGIVE_TIME_SECONDS=self.forgive_time_s,
            ALCHEMISCALE_COMPUTE_API_MAX_FAILURES=self.max_failures,
            **_UNUSED_BACKENDS,
        )

    def interface(self) -> APISettings:
        return APISettings(JWT_SECRET_KEY=self.jwt_secret, **_UNUSED_BACKENDS)


def app_over(original: FastAPI, state: StateStore, objects: ObjectStore, settings: Any) -> FastAPI:
    """A copy of alchemiscale's ``original`` app whose stores and settings are ours."""
    app = FastAPI(title=original.title)
    app.include_router(original.router)
    app.user_middleware = list(original.user_middleware)
    app.exception_handlers.update(original.exception_handlers)
    app.dependency_overrides.update(original.dependency_overrides)
    app.dependency_overrides[get_n4js_depends] = lambda: state
    app.dependency_overrides[get_s3os_depends] = lambda: objects
    app.dependency_overrides[get_base_api_settings] = lambda: settings
    return app


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening (or has given up) through an Event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    def install_signal_handlers(self) -> None:  # the caller's thread owns signals
        pass


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def serve_apps(apps: dict[str, FastAPI], ports: dict[str, int]) -> Iterator[dict[str, str]]:
    """Serve each app on 127.0.0.1 in a thread; yield their URLs once all listen; stop them all."""
    servers: list[tuple[_Server, threading.Thread, socket.socket]] = []
    urls: dict[str, str] = {}
    try:
        for name, app in apps.items():
            sock = _bind(ports.get(name, 0))
            config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
            server = _Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name=f"standin-{name}", daemon=True
            )
            servers.append((server, thread, sock))
            thread.start()
            server.ready.wait()
            if not server.started:
                raise RuntimeError(f"the stand-in's {name} API did not start (see the log above)")
            urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield urls
    finally:
        for server, _, _ in servers:
            server.should_exit = True
        for _, thread, sock in servers:
            thread.join()
            sock.close()
