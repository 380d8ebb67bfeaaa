"""Step 3: give a Task's WUs their PRCG ids and put their files where the WS will send them from.

The System and core.xml are placed once per RUN; each CLONE gets its own State (velocities
redrawn) and Integrator (its own random seed), derived from the Task id so that staging again
writes the same bytes (:mod:`fahflow.protocol.clones`). The files go where the ``<send>`` list
says (:mod:`fahflow.ws.layout`), by the staging the config chose (:mod:`fahflow.ws.staging`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fahflow.batch.context import BatchContext, write_json
from fahflow.batch.seeds import seed_for
from fahflow.errors import ConfigError, NotFound
from fahflow.failpoints import failpoint
from fahflow.ledger import WorkUnitRow
from fahflow.protocol.clones import PER_CLONE_FILES, write_clone_files
from fahflow.protocol.projects import ProjectSlot, select_project
from fahflow.states import TaskState
from fahflow.ws import layout
from fahflow.ws.models import ProjectData

logger = logging.getLogger(__name__)


def stage(ctx: BatchContext, task_id: str, manifest_path: Path, out: Path) -> dict[str, Any]:
    """Allocate PRCG ids for ``task_id``, place its files, mark it staged, write ``out``."""
    manifest = json.loads(manifest_path.read_text())
    wu_dir = manifest_path.parent
    if manifest.get("setup_failure"):
        # The Transformation's setup failed in serialize: its kind records the failure for this
        # Task (gufe: a ProtocolDAGResult with the unit's traceback) and the Task fails with it.
        protocol = ctx.protocol_outcome(task_id, {})
        where = ""
        if protocol is not None:  # push sends it with the failure (batch.push)
            write_json(ctx.protocol_record(task_id), protocol.model_dump(mode="json"))
            where = f" (traceback in {protocol.protocol_dag_result})"
        first = manifest["setup_failure"].strip().splitlines()[0]
        return _fail(ctx, task_id, out, f"setup failed: {first}{where}")
    # A Transformation stays in the PROJECT its first Task got, even if the config changed since.
    project = ctx.ledger.transformation(manifest["transformation_id"]).project
    if project is None:
        try:
            project = _choose_project(ctx, manifest)
        except ConfigError as exc:
            # No retry can fit it: fail the Task (pushed with the reason by the next batch)
            # instead of leaving it claimed to fail every batch.
            return _fail(ctx, task_id, out, f"cannot stage: {exc}")
    _ensure_project(ctx, project)
    wus = ctx.ledger.allocate(task_id, project)
    failpoint("stage.after_allocate")
    clone_dirs = [ctx.clone_files_dir(task_id, w.run, w.clone) for w in wus]
    write_clone_files(
        wu_dir,
        [(d, seed_for(task_id, w.idx)) for d, w in zip(clone_dirs, wus, strict=True)],
        manifest["temperature_K"],
    )
    placed: list[str] = []
    for wu, clone_dir in zip(wus, clone_dirs, strict=True):
        placed += _place(ctx, wu, wu_dir, clone_dir)
        failpoint("stage.after_place")
    ctx.ledger.advance_task(task_id, TaskState.STAGED)
    failpoint("stage.before_record")
    record = {
        "task_id": task_id,
        "project": project,
        "wus": [{"run": w.run, "clone": w.clone, "idx": w.idx} for w in wus],
        "files": placed,
    }
    write_json(out, record)
    return record


def _fail(ctx: BatchContext, task_id: str, out: Path, reason: str) -> dict[str, Any]:
    logger.error("Task %s: %s", task_id, reason)
    ctx.ledger.advance_task(task_id, TaskState.FAILED, reason=reason)
    record = {"task_id": task_id, "failed": reason}
    write_json(out, record)
    return record


def _choose_project(ctx: BatchContext, manifest: dict[str, Any]) -> int:
    slots = [
        ProjectSlot(id=p.id, atoms=p.atoms, nonbonded_method=p.nonbonded_method)
        for p in ctx.config.projects
    ]
    return select_project(manifest["n_atoms"], manifest["nonbonded_method"], slots).id


def _ensure_project(ctx: BatchContext, project: int) -> None:
    """Create the PROJECT on the WS the first time it is used (PUT is idempotent).

    ``runs`` and ``clones`` stay 0, as alchemiscale-fah creates its projects: every job is
    created one by one through the API, and a WS that generated jobs from those counts itself
    would otherwise make 65536² of them (docs/simulator.md).
    """
    if ctx.ledger.project_ensured(project):
        return
    settings = next((p for p in ctx.config.projects if p.id == project), None)
    if settings is None:
        raise ConfigError(f"projects: PROJECT {project} is in use by the ledger but not configured")
    try:
        ctx.ws.get_project(project)
    except NotFound:
        ctx.ws.put_project(
            project,
            ProjectData(
                core_id=settings.core_id,
                contact=settings.contact,
                runs=0,
                clones=0,
                gens=1,
                atoms=settings.atoms,
                credit=settings.credit,
                timeout=settings.timeout,
                deadline=settings.deadline,
            ),
        )
        logger.info("created PROJECT %d on the WS", project)
    ctx.ledger.mark_project_ensured(project)


def _place(ctx: BatchContext, wu: WorkUnitRow, wu_dir: Path, clone_dir: Path) -> list[str]:
    """Put every file named in ``ws.send`` where the WS expects it; returns the WS paths.

    A CLONE's own State and Integrator come from its clone folder when the ``<send>`` list has
    them per CLONE; the Transformation's other files come from the WU folder, whichever level
    the list puts them at (per RUN, or all per CLONE as in alchemiscale-fah's deployment guide).
    """
    placed = []
    for template in ctx.config.ws.send:
        name = Path(template).name
        per_clone = "$clone" in template
        src = (clone_dir if per_clone and name in PER_CLONE_FILES else wu_dir) / name
        if not src.is_file():
            raise ConfigError(
                f"ws.send names {template!r}, but the WU has no file {name!r} "
                f"(it has {sorted(p.name for p in wu_dir.iterdir())})"
            )
        rel = layout.send_path(template, wu.project, wu.run, wu.clone)
        ctx.staging.place(wu.project, rel, src, per_clone=per_clone)
        placed.append(layout.ws_file(wu.project, rel))
    return placed
