"""Step 6: copy each finished WU's result sentinel (globals.csv + science.log) into the workflow.

Files the WS writes are never rule outputs (Snakemake deletes the outputs of a failed job,
DESIGN §5): they are copied, atomically, into ``results/tasks/{task}/globals/`` under the WS
layout ``PROJ{p}/RUN{r}/CLONE{c}/results{g}/`` (:mod:`fahflow.ws.layout`), which the analysis
reads PRCG keys from. Where they are copied from is the staging's business
(:mod:`fahflow.ws.staging`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.failpoints import failpoint
from fahflow.ws import layout

RESULT_FILES = ("globals.csv", "science.log")


def collect(ctx: BatchContext, task_id: str, out: Path) -> dict[str, Any]:
    """Copy the results of every WU of ``task_id`` under ``out``'s folder; write ``out``."""
    dest_root = out.parent / "globals"
    copied = []
    for wu in ctx.ledger.wus(task_id):
        # A results{g} folder an earlier (maybe killed) collect of this WU started, if any.
        folder = layout.collected_results(dest_root, wu.project, wu.run, wu.clone)
        if folder is None:
            # The GEN that was run, from the results present (never the job's ``gen``).
            gen = ctx.staging.result_gen(wu.project, wu.run, wu.clone)
            folder = dest_root / layout.results_dir(wu.project, wu.run, wu.clone, gen)
        for name in RESULT_FILES:
            if not (folder / name).exists():
                gen = layout.gen_of(folder)
                ctx.staging.fetch_result(wu.project, wu.run, wu.clone, gen, name, folder / name)
                failpoint("collect.after_file")
            copied.append((folder / name).relative_to(dest_root).as_posix())
    record = {"task_id": task_id, "files": copied}
    write_json(out, record)
    return record
