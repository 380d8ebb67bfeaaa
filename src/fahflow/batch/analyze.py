"""Step 7: turn a Task's collected globals.csv files into ΔG ± σ (BAR).

An analysis that cannot give a number it stands behind (no usable forward/reverse pair) fails
the Task with the reason instead of failing the batch: a re-run cannot change the data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fahflow import atomic
from fahflow.batch.context import BatchContext, write_json
from fahflow.errors import AnalysisError
from fahflow.failpoints import failpoint
from fahflow.outcome import ExcludedWorkUnit, Outcome, PairedWork
from fahflow.states import TaskState
from fahflow.ws import layout

logger = logging.getLogger(__name__)


def analyze(ctx: BatchContext, task_id: str, collected: Path, out: Path) -> dict[str, Any]:
    """Analyze the files listed in ``collected``; write the outcome to ``out``."""
    from fahflow.analysis.report import analyze_paths

    settings = ctx.config.analysis
    protocol = ctx.protocol_outcome(
        task_id, _globals_by_wu(ctx, task_id, collected.parent / "globals")
    )
    try:
        result = analyze_paths(
            [collected.parent / "globals"],
            n_bootstrap=settings.bootstrap,
            seed=settings.seed,
            max_abs_work_kT=settings.max_abs_work_kT,
        )
    except AnalysisError as exc:
        logger.error("Task %s: analysis failed: %s", task_id, exc)
        outcome = Outcome.failure(f"analysis: {exc}", task_id)
        ctx.ledger.advance_task(task_id, TaskState.FAILED, reason=outcome.reason)
    else:
        for message in result.warnings:  # analyze_paths returns them; the batch log shows them
            logger.warning("Task %s: %s", task_id, message)
        # The full record (every WU, its status, settings, versions); plots and HTML are made per
        # Transformation by `fahflow results --report`, not for every Task.
        record = atomic.write_text(out.parent / "analysis.json", result.model_dump_json(indent=1))
        outcome = task_outcome(task_id, result, record)
        if protocol is not None and not protocol.ok:
            first = (protocol.failure or "a unit failed").strip().splitlines()[0]
            reason = f"protocol: {first} (see {protocol.protocol_dag_result})"
            outcome = Outcome.failure(reason, task_id)
            ctx.ledger.advance_task(task_id, TaskState.FAILED, reason=outcome.reason)
        else:
            ctx.ledger.advance_task(task_id, TaskState.ANALYZED)
        failpoint("analyze.after_record")
    outcome.protocol = protocol
    record_data = outcome.model_dump(mode="json", exclude_none=True)
    write_json(out, record_data)
    return record_data


def _globals_by_wu(ctx: BatchContext, task_id: str, collected: Path) -> dict[int, Path]:
    """Each WU's collected globals.csv by its index in the Task (= its cycle unit in a DAG)."""
    found = {}
    for wu in ctx.ledger.wus(task_id):
        folder = layout.collected_results(collected, wu.project, wu.run, wu.clone)
        if folder is not None and (folder / "globals.csv").is_file():
            found[wu.idx] = folder / "globals.csv"
    return found


def task_outcome(task_id: str, result: Any, record: Path) -> Outcome:
    """What goes back to the Task's source: estimate, units, every paired work (keyed by PRCG
    and cycle, with the CLONE as bootstrap group) and the WUs left out, with why."""
    fe = result.estimate
    return Outcome(
        status="ok",
        task_id=task_id,
        analysis=str(record),
        Delta_f_kT=fe.Delta_f_kT,
        sigma_kT=fe.sigma_kT,
        Delta_f_kcal_per_mol=fe.Delta_f_kcal_per_mol,
        sigma_kcal_per_mol=fe.sigma_kcal_per_mol,
        temperature_K=fe.temperature_K,
        n_pairs=result.n_pairs,
        status_counts=result.status_counts,
        works=[
            PairedWork(
                key=f"{wu.key.source}/cycle{c.cycle}",
                group=wu.key.group,
                w_F_kT=c.w_F,
                w_R_kT=c.w_R,
            )
            for wu in result.work_units
            for c in wu.ok_cycles()
        ],
        excluded=[
            ExcludedWorkUnit(key=wu.key.source, status=str(wu.status), reason=wu.reason)
            for wu in result.work_units
            if not wu.ok_cycles()
        ],
    )
