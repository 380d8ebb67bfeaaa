"""How `fahflow status` and `fahflow results` show a campaign: rich tables, CSV and JSON.

The numbers come from :mod:`fahflow.campaign` (plain rows, also used by the demo and the tests);
this module only decides how they look on a terminal, so the library never prints.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fahflow.analysis.numbers import value_sigma_text
from fahflow.campaign import source_warnings, task_rows, transformation_results, unseen_warnings
from fahflow.config import load_config

STATUS_ROWS_SHOWN = 200
"""Open Tasks listed without ``--all``: a campaign of thousands stays one screenful of work."""


def print_status(
    config_path: Path, *, show_all: bool = False, console: Console | None = None
) -> None:
    """Counts per step, unseen-WU warnings, then a table of the open Tasks (every Task with
    ``show_all``)."""
    config = load_config(config_path)
    rows = task_rows(config)
    console = console or Console()
    counts = Counter(r["step"] for r in rows)
    console.print(
        f"{len(rows)} Task(s): " + ", ".join(f"{n} {step}" for step, n in sorted(counts.items()))
    )
    for line in unseen_warnings(config) + source_warnings(config):
        console.print(f"[bold yellow]WARNING[/] {line}", highlight=False)
    shown = rows if show_all else [r for r in rows if r["step"] not in ("done",)]
    if not shown:
        return
    table = Table("Task", "Transformation", "Step", "WUs done", "Restarts", "ΔG / kT", "Reason")
    for r in shown[:STATUS_ROWS_SHOWN] if not show_all else shown:
        dg = "" if r["Delta_f_kT"] is None else value_sigma_text(r["Delta_f_kT"], r["sigma_kT"])
        table.add_row(
            r["task"], r["transformation"], r["step"], r["wus"], str(r["restarts"]), dg, r["reason"]
        )
    console.print(table)


def print_results(
    config_path: Path, *, fmt: str = "table", report_dir: Path | None = None,
    console: Console | None = None,
) -> list[dict]:  # fmt: skip
    """The pooled estimate per Transformation as a table, CSV or JSON; returns the rows."""
    config = load_config(config_path)
    rows = transformation_results(config, report_dir=report_dir)
    console = console or Console()
    if fmt == "json":
        console.print_json(json.dumps(rows, default=str))
    elif fmt == "csv":
        console.out(results_csv(rows), end="")
    else:
        console.print(results_table(rows))
        print_result_notes(console, rows)
    return rows


def results_csv(rows: list[dict]) -> str:
    """One line per Transformation, columns sorted; a row's warnings joined with ``; ``."""
    buffer = io.StringIO()
    fields = sorted({k for r in rows for k in r})
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(
        {**r, "warnings": "; ".join(r["warnings"])} if "warnings" in r else r for r in rows
    )
    return buffer.getvalue()


def results_table(rows: list[dict]) -> Table:
    """ΔG ± σ per Transformation, narrow enough for 80 columns with the names whole.

    σ has two significant figures (never ``± 0.00`` for a small nonzero σ). Report paths and
    warnings are long and go under the table (:func:`print_result_notes`). The numbers never
    wrap; a name that does not fit beside them folds onto further lines, every character kept,
    rather than being cut to ``Transforma…``.
    """
    title = "ΔG per Transformation (BAR, σ = max(bootstrap, analytical))"
    table = Table(title=title, show_edge=False)  # the outer border costs 2 of the 80 columns
    table.add_column("Transformation", overflow="fold", min_width=len("Transformation"))
    table.add_column("Tasks done/\nfailed/open", justify="right", no_wrap=True)
    table.add_column("Cycles", justify="right", no_wrap=True)
    # A gufe Transformation: its protocol's own estimate beside fahflow's BAR; ΔG in kT then
    # stays in --format json/csv, so that the table still fits 80 columns.
    protocol = any("protocol_Delta_f_kcal_per_mol" in r for r in rows)
    if not protocol:
        table.add_column("ΔG / kT", justify="right", no_wrap=True)
    table.add_column("ΔG / kcal/mol" + ("\n(fahflow)" if protocol else ""), justify="right",
                     no_wrap=True)  # fmt: skip
    if protocol:
        table.add_column("ΔG / kcal/mol\n(protocol)", justify="right", no_wrap=True)
    for r in rows:
        has = "Delta_f_kT" in r
        cells = [r["transformation"], f"{r['tasks_done']}/{r['tasks_failed']}/{r['tasks_open']}",
                 str(r.get("n_cycles", ""))]  # fmt: skip
        if not protocol:
            cells.append(value_sigma_text(r["Delta_f_kT"], r["sigma_kT"]) if has else "")
        cells.append(
            value_sigma_text(r["Delta_f_kcal_per_mol"], r["sigma_kcal_per_mol"]) if has else ""
        )
        if protocol:
            theirs = "protocol_Delta_f_kcal_per_mol" in r
            cells.append(
                value_sigma_text(
                    r["protocol_Delta_f_kcal_per_mol"], r["protocol_sigma_kcal_per_mol"]
                )
                if theirs
                else ""
            )
        table.add_row(*cells)
    return table


def print_result_notes(console: Console, rows: list[dict]) -> None:
    """Under the results table: each estimate's warnings, errors and report paths, whole."""
    for r in rows:
        name = r["transformation"]
        if "error" in r:
            console.print(f"error: {name}: {r['error']}", markup=False, highlight=False)
        for message in r.get("warnings", []):
            console.print(f"warning: {name}: {message}", markup=False, highlight=False)
        if "report" in r:
            console.print(f"report: {name}: {r['report']}", markup=False, highlight=False)
