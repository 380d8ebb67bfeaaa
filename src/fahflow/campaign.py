"""What a person asks of a campaign on the local queue: submit Tasks, see where each stands, and
read the free energies.

``status`` joins the queue (waiting / done / failed) with the ledger (the step of each claimed
Task, its WUs finished); ``results`` pools the paired works of every completed Task of a
Transformation into one BAR estimate, bootstrapped over whole CLONEs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from fahflow.config import FahflowConfig, load_config
from fahflow.errors import AnalysisError, ConfigError
from fahflow.ledger import Ledger
from fahflow.outcome import Outcome
from fahflow.states import TaskState
from fahflow.tasks import LocalQueue


def _queue(config: FahflowConfig) -> LocalQueue:
    if config.tasks.source != "local":
        raise ConfigError(
            f"tasks.source is {config.tasks.source!r}: submit/status/results read the local "
            "queue; ask the source itself for its Tasks"
        )
    return LocalQueue(config.tasks.local.path)


def submit_spec(config_path: Path, spec_path: Path, n_tasks: int | None) -> list[str]:
    """Validate the file and enqueue ``n_tasks`` Tasks of the Transformation it holds.

    A ``.json`` file is a gufe Transformation (the JSON gufe writes; default 1 Task), checked the
    way claim checks it (supported protocol, a DAG that can be made). Anything else is a fahflow
    spec (default: its ``tasks``), stored normalized with its file paths made absolute, so that
    the Task still finds its inputs when a batch runs from another directory.
    """
    from fahflow.kinds import kind_for, kind_of_file
    from fahflow.kinds.base import TaskRefused
    from fahflow.protocol.spec import load_spec

    config = load_config(config_path)
    kind = kind_of_file(str(spec_path))
    if kind == "spec":
        spec = load_spec(spec_path)
        payload = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=True)
        name, default_tasks = spec.name, spec.tasks
    else:
        try:
            payload = spec_path.read_text()
        except OSError as exc:
            raise ConfigError(f"{spec_path}: cannot read: {exc.strerror}") from None
        try:
            name, default_tasks = kind_for(kind).claim(payload, str(spec_path)).name, 1
        except TaskRefused as exc:
            raise ConfigError(str(exc)) from None
    queue = _queue(config)
    try:
        return queue.submit(name, payload, n_tasks if n_tasks is not None else default_tasks,
                            kind=kind)  # fmt: skip
    finally:
        queue.close()


def task_rows(config: FahflowConfig) -> list[dict[str, Any]]:
    """Every Task of the queue with its step: waiting, a ledger state, done or failed. For
    another source, the Tasks this service claimed (the source holds the rest)."""
    if config.tasks.source != "local":
        return _ledger_rows(config)
    queue = _queue(config)
    ledger = Ledger(config.ledger.path) if config.ledger.path.exists() else None
    try:
        steps = {t.source_key: t for t in ledger.tasks()} if ledger else {}
        progress = ledger.wu_progress() if ledger else {}
        rows = []
        for row in queue.rows():
            entry = steps.get(row["key"])
            step = {"waiting": "waiting", "complete": "done", "error": "failed"}.get(row["status"])
            if step is None:
                step = entry.state if entry else TaskState.CLAIMED
            done, total = progress.get(entry.task_id, (0, 0)) if entry else (0, 0)
            result = queue.outcome(row)
            rows.append(
                {
                    "task": row["key"],
                    "transformation": row["name"],
                    "step": step,
                    "wus": f"{done}/{total}" if total else "",
                    "restarts": entry.restarts if entry else 0,
                    "Delta_f_kT": result.Delta_f_kT if result else None,
                    "sigma_kT": result.sigma_kT if result else None,
                    "reason": row["error"] or (entry.reason if entry else None) or "",
                }
            )
        return rows
    finally:
        queue.close()
        if ledger:
            ledger.close()


def _ledger_rows(config: FahflowConfig) -> list[dict[str, Any]]:
    if not config.ledger.path.exists():
        return []
    with Ledger(config.ledger.path) as ledger:
        progress = ledger.wu_progress()
        rows = []
        for task in ledger.tasks():
            done, total = progress.get(task.task_id, (0, 0))
            step = str(task.state)
            if task.pushed_at is not None:
                step = "failed" if task.state == TaskState.FAILED else "done"
            rows.append(
                {
                    "task": task.source_key,
                    "transformation": ledger.transformation(task.transformation_id).name,
                    "step": step,
                    "wus": f"{done}/{total}" if total else "",
                    "restarts": task.restarts,
                    "Delta_f_kT": None,
                    "sigma_kT": None,
                    "reason": task.reason or "",
                }
            )
    return rows


def source_warnings(config: FahflowConfig) -> list[str]:
    """What the Task source needs an operator for (alchemiscale: a heartbeat near the server's
    registration timeout, pushes whose answer was lost). Reads only local files."""
    if config.tasks.source != "alchemiscale":
        return []
    from fahflow.tasks.alchemiscale import age_s
    from fahflow.tasks.alchemiscale_ledger import SourceLedger

    settings = config.tasks.alchemiscale
    if not settings.state.exists():
        return []
    state = SourceLedger(settings.state)
    try:
        reg = state.registration()
        lines = []
        if reg is not None:
            age, limit = age_s(reg.heartbeat_at), settings.registration_expire_s
            if age > settings.heartbeat_warn_fraction * limit:
                lines.append(
                    f"alchemiscale: last heartbeat of {reg.service_id} {age:.0f} s ago; the "
                    f"server drops a registration after {limit:.0f} s and gives its running "
                    "Tasks to others: run a batch now, and check the cron cadence"
                )
        lines += [
            f"alchemiscale: Task {c.key}: the answer to its result push at {c.push_started_at} "
            "was lost; `fahflow alchemiscale settle` it (or configure check_pushes)"
            for c in state.unknown_pushes()
        ]
        return lines
    finally:
        state.close()


def unseen_warnings(config: FahflowConfig) -> list[str]:
    """One line per Task with WUs on which the WS has not reported for ``batch.unseen_alert_s``
    (the same check that fails a batch's audit)."""
    from fahflow.batch.audit import unseen_tasks

    if not config.ledger.path.exists():
        return []
    limit = config.batch.unseen_alert_s
    with Ledger(config.ledger.path) as ledger:
        unseen = unseen_tasks(ledger, limit)
    return [
        f"Task {task}: no word from the WS for over {limit:.0f} s on {', '.join(wus)}"
        for task, wus in unseen.items()
    ]


def transformation_results(config: FahflowConfig, *, report_dir: Path | None = None) -> list[dict]:
    """One pooled BAR estimate per Transformation over the works of its completed Tasks."""
    from fahflow.analysis.estimate import bar_estimate

    queue = _queue(config)
    try:
        by_tf: dict[str, list[Outcome]] = defaultdict(list)
        names, counts = {}, Counter()
        transformations = {r["transformation_id"]: r for r in queue.transformations()}
        for row in queue.rows():
            names[row["transformation_id"]] = row["name"]
            counts[row["transformation_id"], row["status"]] += 1
            if row["status"] == "complete":
                by_tf[row["transformation_id"]].append(queue.outcome(row))
    finally:
        queue.close()
    out = []
    for tf, name in names.items():
        entry: dict[str, Any] = {
            "transformation": name,
            "transformation_id": tf,
            "tasks_done": counts[tf, "complete"],
            "tasks_failed": counts[tf, "error"],
            "tasks_open": counts[tf, "waiting"] + counts[tf, "claimed"],
        }
        results = by_tf.get(tf, [])
        works = [w for r in results for w in r.works]
        if works:
            try:
                fe = bar_estimate(
                    [w.w_F_kT for w in works],
                    [w.w_R_kT for w in works],
                    temperature_K=results[0].temperature_K,
                    groups=[w.group for w in works],
                    n_bootstrap=config.analysis.bootstrap,
                    seed=config.analysis.seed,
                )
            except AnalysisError as exc:  # no pair, or BAR found no solution
                entry["error"] = str(exc)
            else:
                dg, sigma = fe.to_kcal_per_mol()
                entry.update(
                    n_cycles=len(works),
                    Delta_f_kT=fe.Delta_f_kT,
                    sigma_kT=fe.sigma_kT,
                    Delta_f_kcal_per_mol=dg,
                    sigma_kcal_per_mol=sigma,
                    temperature_K=fe.temperature_K,
                    warnings=fe.diagnostics.warnings,
                )
        row = transformations[tf]
        entry.update(_protocol_estimate(row["kind"], results, row["payload"]))
        if report_dir is not None and results:
            entry["report"] = str(_write_report(config, tf, report_dir))
        out.append(entry)
    return out


def _protocol_estimate(kind: str, results: list[Outcome], payload: str) -> dict[str, Any]:
    """The Task kind's own pooled estimate (gufe: ``protocol.gather`` over the stored
    ProtocolDAGResults), shown beside fahflow's BAR; nothing for fahflow's spec."""
    if kind == "spec":
        return {}
    from fahflow.kinds import kind_for

    stored = [Path(r.protocol.protocol_dag_result) for r in results if r.protocol and r.protocol.ok]
    if not stored:
        return {}
    estimate = kind_for(kind).gather(payload, stored)
    if estimate is None:
        return {}
    return {
        "protocol": results[0].protocol.protocol,
        "protocol_Delta_f_kcal_per_mol": estimate[0],
        "protocol_sigma_kcal_per_mol": estimate[1],
    }


def _write_report(config: FahflowConfig, transformation_id: str, report_dir: Path) -> Path:
    """Report over every collected globals.csv of the Transformation's analyzed Tasks."""
    from fahflow.analysis.report import analyze_paths, write_report

    ledger = Ledger(config.ledger.path)
    try:
        tasks = [
            t.task_id
            for t in ledger.tasks(states=(TaskState.ANALYZED,))
            if t.transformation_id == transformation_id
        ]
    finally:
        ledger.close()
    dirs = [config.batch.results_dir / "tasks" / t / "globals" for t in tasks]
    settings = config.analysis
    result = analyze_paths(
        dirs,
        n_bootstrap=settings.bootstrap,
        seed=settings.seed,
        max_abs_work_kT=settings.max_abs_work_kT,
    )
    return write_report(result, report_dir / transformation_id)
