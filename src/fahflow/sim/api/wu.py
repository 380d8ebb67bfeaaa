"""WU packing: the ``<send>`` list expanded for a job, the tar a volunteer gets, and the
results it returns unpacked into ``results{gen}/`` (layout in :mod:`fahflow.sim.layout`)."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import IO

from fahflow.sim import layout
from fahflow.sim.errors import bad_request

CHECKPOINT_NAMES = ("checkpointState.xml.bz2", "checkpointState.xml")


def send_files(
    root: Path, send: Sequence[str], project: int, run: int, clone: int, gen: int
) -> list[Path]:
    """The ``<send>`` list expanded for one job ($home, $project, $run, $clone, $gen); the
    entries were checked when the config was read (``SimConfig.send``)."""
    values = {
        "home": str(layout.project_home(root, project)),
        "project": project,
        "run": run,
        "clone": clone,
        "gen": gen,
    }
    return [Path(Template(item).substitute(values)) for item in send]


def missing_send_files(
    root: Path, send: Sequence[str], project: int, run: int, clone: int
) -> list[str]:
    """The send files of GEN 0 that are not in place (a create then makes the job FAILED)."""
    paths = send_files(root, send, project, run, clone, 0)
    return [str(path) for path in paths if not path.is_file()]


def wu_files(
    root: Path, send: Sequence[str], project: int, run: int, clone: int, gen: int
) -> list[tuple[str, Path]]:
    """Files of the WU for GEN ``gen`` as (name in the WU, path): the send list, with the
    previous GEN's final state standing in for ``state.xml*`` from GEN 1 on (as FAH continues a
    trajectory). A missing file is a ``FileNotFoundError``."""
    files = []
    for path in send_files(root, send, project, run, clone, gen):
        name = path.name
        if gen > 0 and name.startswith("state.xml"):
            prev = layout.results_dir(root, project, run, clone, gen - 1)
            path = next((prev / n for n in CHECKPOINT_NAMES if (prev / n).is_file()), path)
            name = "state.xml.bz2" if path.suffix == ".bz2" else "state.xml"
        if not path.is_file():
            raise FileNotFoundError(f"send file {path} is missing")
        files.append((name, path))
    return files


def pack(files: list[tuple[str, Path]]) -> bytes:
    """An uncompressed tar of the WU files under their names in the WU."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        for name_in_wu, path in files:
            tar.add(path, arcname=name_in_wu)
    return buffer.getvalue()


def write_results(
    root: Path, project: int, run: int, clone: int, gen: int, tar_file: IO[bytes]
) -> None:
    """Unpack returned results into ``results{gen}/``, replacing an earlier return; a broken
    tar is a 400 and leaves the earlier results as they were."""
    dest = layout.results_dir(root, project, run, clone, gen)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(fileobj=tar_file, mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
            tar.extractall(tmp, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise bad_request(f"returned results are not a valid tar: {exc}") from exc
