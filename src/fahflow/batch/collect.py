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

RESULT_FILES = ("globals.csv", "science.log")
GEN = 0  # fahflow runs gens = 1: every WU's results are GEN 0's


def collect(ctx: BatchContext, task_id: str, out: Path) -> dict[str, Any]:
    """Copy the results of every WU of ``task_id`` under ``out``'s folder; write ``out``."""
    dest_root = out.parent / "globals"
    copied = []
    for wu in ctx.ledger.wus(task_id):
        layout = f"PROJ{wu.project}/RUN{wu.run}/CLONE{wu.clone}/results{GEN}"
        for name in RESULT_FILES:
            dest = dest_root / layout / name
            if not dest.exists():
                _fetch(ctx, wu.project, wu.run, wu.clone, name, dest)
                failpoint("collect.after_file")
            copied.append(f"{layout}/{name}")
    record = {"task_id": task_id, "files": copied}
    write_json(out, record)
    return record


def _fetch(ctx: BatchContext, project: int, run: int, clone: int, name: str, dest: Path) -> None:
    if ctx.config.ws.staging == "colocated":
        rel = ctx.ws_path(ctx.config.ws.results, project, run, clone, GEN)
        src = ctx.project_home(project) / rel / name
        if not src.is_file():
            raise NotFound(f"result file missing on the WS filesystem: {src}")
        with src.open("rb") as fin, atomic.atomic_open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    else:
        ctx.ws.get_gen_file(project, run, clone, GEN, name, dest)
