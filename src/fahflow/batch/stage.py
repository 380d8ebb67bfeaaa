"""Step 3: give a Task's WUs their PRCG ids and put their files where the WS will send them from.

The System and core.xml are placed once per RUN; each CLONE gets its own State (velocities
redrawn) and Integrator (its own random seed), derived from the Task id so that staging again
writes the same bytes. Files go straight into the WS data directory when fahflow runs on the WS
host (``ws.staging: colocated``), or through the WS file API (``api``).
"""

from __future__ import annotations

import bz2
import filecmp
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from fahflow import atomic
from fahflow.batch.context import BatchContext, write_json
from fahflow.batch.seeds import seed_for
from fahflow.errors import ConfigError, NotFound
from fahflow.failpoints import failpoint
from fahflow.ledger import WorkUnitRow
from fahflow.protocol.projects import ProjectSlot, select_project
from fahflow.ws.models import ProjectData

logger = logging.getLogger(__name__)

PER_CLONE_FILES = ("state.xml.bz2", "integrator.xml.bz2")


def stage(ctx: BatchContext, task_id: str, manifest_path: Path, out: Path) -> dict[str, Any]:
    """Allocate PRCG ids for ``task_id``, place its files, mark it staged, write ``out``."""
    manifest = json.loads(manifest_path.read_text())
    wu_dir = manifest_path.parent
    # A Transformation stays in the PROJECT its first Task got, even if the config changed since.
    project = ctx.ledger.transformation(manifest["transformation_id"]).project
    if project is None:
        try:
            project = _choose_project(ctx, manifest)
        except ConfigError as exc:
            # No retry can fit it: fail the Task (pushed with the reason by the next batch)
            # instead of leaving it claimed to fail every batch.
            reason = f"cannot stage: {exc}"
            logger.error("Task %s: %s", task_id, reason)
            ctx.ledger.set_task_state(task_id, "failed", reason=reason, frm=("claimed",))
            record = {"task_id": task_id, "failed": reason}
            write_json(out, record)
            return record
    _ensure_project(ctx, project)
    wus = ctx.ledger.allocate(task_id, project)
    failpoint("stage.after_allocate")
    clone_dirs = [ctx.task_dir(task_id) / "clones" / f"RUN{w.run}-CLONE{w.clone}" for w in wus]
    _write_clone_files(
        wu_dir,
        [(d, seed_for(task_id, w.idx)) for d, w in zip(clone_dirs, wus, strict=True)],
        manifest,
    )
    placed: list[str] = []
    for wu, clone_dir in zip(wus, clone_dirs, strict=True):
        placed += _place(ctx, wu, wu_dir, clone_dir)
        failpoint("stage.after_place")
    ctx.ledger.set_task_state(task_id, "staged", frm=("claimed",))
    failpoint("stage.before_record")
    record = {
        "task_id": task_id,
        "project": project,
        "wus": [{"run": w.run, "clone": w.clone, "idx": w.idx} for w in wus],
        "files": placed,
    }
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


def _write_clone_files(
    wu_dir: Path, clones: list[tuple[Path, int]], manifest: dict[str, Any]
) -> None:
    """Each CLONE's State (velocities drawn with its seed) and Integrator (seeded with it).

    The Transformation's files are read and one Context is made per Task, not per CLONE.
    """
    todo = [(d, seed) for d, seed in clones if not all((d / n).exists() for n in PER_CLONE_FILES)]
    if not todo:
        return
    import openmm  # only staging and building need OpenMM
    from openmm import unit

    def load(name: str) -> Any:
        return openmm.XmlSerializer.deserialize(
            bz2.decompress((wu_dir / name).read_bytes()).decode()
        )

    system, state, integrator = (load(n) for n in ("system.xml.bz2", *PER_CLONE_FILES))
    # Only velocities change; the CPU platform recomputes forces and energy for the State fast.
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU")
    )
    try:
        for out_dir, seed in todo:
            context.setState(state)
            context.setVelocitiesToTemperature(manifest["temperature_K"] * unit.kelvin, seed)
            new_state = context.getState(
                getPositions=True, getVelocities=True, getForces=True, getEnergy=True,
                getParameters=True, enforcePeriodicBox=False,
            )  # fmt: skip
            integrator.setRandomNumberSeed(seed)
            for name, obj in (("state.xml.bz2", new_state), ("integrator.xml.bz2", integrator)):
                data = bz2.compress(openmm.XmlSerializer.serialize(obj).encode())
                atomic.write_bytes(out_dir / name, data)
    finally:
        del context


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
        rel = ctx.ws_path(template, wu.project, wu.run, wu.clone)
        if ctx.config.ws.staging == "colocated":
            _copy_into(src, ctx.project_home(wu.project) / rel, overwrite=per_clone)
        else:
            ctx.ws.put_file(wu.project, rel, src)
        placed.append(f"PROJ{wu.project}/{rel}")
    return placed


def _copy_into(src: Path, dest: Path, *, overwrite: bool) -> None:
    """Atomic copy. A RUN-level file already in place is kept: running CLONEs may share it."""
    if dest.exists() and (not overwrite or filecmp.cmp(src, dest, shallow=False)):
        return
    with src.open("rb") as fin, atomic.atomic_open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
