"""How a batch reaches the WS's files: one interface, two ways (``ws.staging`` in the config).

``stage`` puts a WU's files where the WS packs them from, and ``collect`` reads a returned
GEN's files; neither cares how. When fahflow runs on the WS host (``colocated``) both go
straight to the WS data directory; otherwise (``api``) through the WS file API. The choice is
made once, by :func:`open_staging`; the paths come from :mod:`fahflow.ws.layout`.
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fahflow import atomic
from fahflow.errors import ConfigError, NotFound
from fahflow.ws import layout

if TYPE_CHECKING:
    from fahflow.config import WorkServerSettings
    from fahflow.ws.client import WorkServerClient


class Staging(Protocol):
    """Where a WU's input files go and where its results come from."""

    def place(self, project: int, rel: str, src: Path, *, per_clone: bool) -> None:
        """Put ``src`` at ``rel`` (a :func:`~fahflow.ws.layout.send_path`) under the PROJECT's
        home. ``per_clone``: the file is this CLONE's own; otherwise the RUN's CLONEs share it."""

    def result_gen(self, project: int, run: int, clone: int) -> int:
        """The GEN whose results to collect (:func:`~fahflow.ws.layout.highest_gen`)."""

    def fetch_result(
        self, project: int, run: int, clone: int, gen: int, name: str, dest: Path
    ) -> None:
        """Copy result file ``name`` of GEN ``gen`` to ``dest``, atomically; NotFound if the
        WS has no such file."""


class ColocatedStaging:
    """The WS data directory on this host: files are copied in and out, atomically."""

    def __init__(self, data_dir: Path, results: str) -> None:
        self.data_dir = data_dir
        self.results = results

    def project_home(self, project: int) -> Path:
        return self.data_dir / layout.project_dir(project)

    def place(self, project: int, rel: str, src: Path, *, per_clone: bool) -> None:
        """A file shared by the RUN's CLONEs is kept once in place (running CLONEs may be
        reading it); a CLONE's own file is replaced when its bytes differ."""
        dest = self.project_home(project) / rel
        if dest.exists() and (not per_clone or filecmp.cmp(src, dest, shallow=False)):
            return
        _copy(src, dest)

    def result_gen(self, project: int, run: int, clone: int) -> int:
        return layout.gen_on_disk(self.results, self.data_dir, project, run, clone)

    def fetch_result(
        self, project: int, run: int, clone: int, gen: int, name: str, dest: Path
    ) -> None:
        rel = layout.send_path(self.results, project, run, clone, gen)
        src = self.project_home(project) / rel / name
        if not src.is_file():
            raise NotFound(f"result file missing on the WS filesystem: {src}")
        _copy(src, dest)


class ApiStaging:
    """The WS file API: uploads are idempotent PUTs, results are downloaded per GEN."""

    def __init__(self, client: WorkServerClient) -> None:
        self.client = client

    def place(self, project: int, rel: str, src: Path, *, per_clone: bool) -> None:
        self.client.put_file(project, rel, src)

    def result_gen(self, project: int, run: int, clone: int) -> int:
        return layout.gen_over_api(lambda g: self.client.list_gen_files(project, run, clone, g))

    def fetch_result(
        self, project: int, run: int, clone: int, gen: int, name: str, dest: Path
    ) -> None:
        self.client.get_gen_file(project, run, clone, gen, name, dest)


def open_staging(settings: WorkServerSettings, client: Callable[[], WorkServerClient]) -> Staging:
    """The staging the config asks for. ``client`` makes the WS client only when the API is
    used, so colocated staging never needs one."""
    if settings.staging == "colocated":
        if settings.data_dir is None:  # the config refuses this; kept for hand-made settings
            raise ConfigError(
                "ws.data_dir is required when ws.staging is colocated: set it to the WS data "
                "directory that holds PROJ{p}/"
            )
        return ColocatedStaging(settings.data_dir, settings.results)
    return ApiStaging(client())


def _copy(src: Path, dest: Path) -> None:
    with src.open("rb") as fin, atomic.atomic_open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
