"""Step 6: copy each finished WU's result sentinel (globals.csv + science.log) into the workflow.

Files the WS writes are never rule outputs (Snakemake deletes the outputs of a failed job,
DESIGN §5): they are copied, atomically, into ``results/tasks/{task}/globals/`` under the WS
layout ``PROJ{p}/RUN{r}/CLONE{c}/results{g}/``, which the analysis reads PRCG keys from.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fahflow import atomic
from fahflow.batch.context import BatchContext, write_json
from fahflow.errors import NotFound
from fahflow.failpoints import failpoint
from fahflow.ws.results import gen_on_disk, gen_over_api

RESULT_FILES = ("globals.csv", "science.log")


def collect(ctx: BatchContext, task_id: str, out: Path) -> dict[str, Any]:
    """Copy the results of every WU of ``task_id`` under ``out``'s folder; write ``out``."""
    dest_root = out.parent / "globals"
    copied = []
    for wu in ctx.ledger.wus(task_id):
        folder = _collected(dest_root, wu.project, wu.run, wu.clone)
        if folder is None:
            gen = _gen_run(ctx, wu.project, wu.run, wu.clone)
            folder = dest_root / f"PROJ{wu.project}/RUN{wu.run}/CLONE{wu.clone}/results{gen}"
        for name in RESULT_FILES:
            if not (folder / name).exists():
                gen = int(folder.name.removeprefix("results"))
                _fetch(ctx, wu.project, wu.run, wu.clone, gen, name, folder / name)
                failpoint("collect.after_file")
            copied.append((folder / name).relative_to(dest_root).as_posix())
    record = {"task_id": task_id, "files": copied}
    write_json(out, record)
    return record


def _collected(dest_root: Path, project: int, run: int, clone: int) -> Path | None:
    """The results{g} folder an earlier (maybe killed) collect of this WU started, if any."""
    started = sorted((dest_root / f"PROJ{project}/RUN{run}/CLONE{clone}").glob("results*"))
    return started[-1] if started else None


def _gen_run(ctx: BatchContext, project: int, run: int, clone: int) -> int:
    """The GEN that was run, from the results present (never the job's ``gen``: ws.results)."""
    if ctx.config.ws.staging == "colocated":
        return gen_on_disk(ctx.config.ws.results, ctx.project_home(project), run, clone)
    return gen_over_api(lambda g: ctx.ws.list_gen_files(project, run, clone, g))


def _fetch(
    ctx: BatchContext, project: int, run: int, clone: int, gen: int, name: str, dest: Path
) -> None:
    if ctx.config.ws.staging == "colocated":
        rel = ctx.ws_path(ctx.config.ws.results, project, run, clone, gen)
        src = ctx.project_home(project) / rel / name
        if not src.is_file():
            raise NotFound(f"result file missing on the WS filesystem: {src}")
        with src.open("rb") as fin, atomic.atomic_open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    else:
        ctx.ws.get_gen_file(project, run, clone, gen, name, dest)
