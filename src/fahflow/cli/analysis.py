"""``fahflow analyze``: globals.csv files of one transformation → ΔG ± σ and a report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from fahflow.analysis.globals import DEFAULT_MAX_ABS_WORK_KT
from fahflow.analysis.numbers import value_sigma_text
from fahflow.analysis.outliers import DEFAULT_THRESHOLD
from fahflow.analysis.report import AnalysisResult, analyze_paths, write_report


def _table(result: AnalysisResult) -> Table:
    estimate = result.estimate
    kcal, dkcal = estimate.to_kcal_per_mol()
    # σ is the larger of the whole-CLONE bootstrap and the analytical error (FreeEnergyResult).
    table = Table(title=f"ΔG at {result.temperature_K:.2f} K (BAR, σ = max(bootstrap, analytical))")
    for column in ("ΔG / kT", "ΔG / kcal/mol", "pairs", "CLONEs", "WUs not ok"):
        table.add_column(column, justify="right")
    not_ok = sum(n for s, n in result.status_counts.items() if s != "ok")
    table.add_row(
        value_sigma_text(estimate.Delta_f_kT, estimate.sigma_kT),
        value_sigma_text(kcal, dkcal),
        str(result.n_pairs),
        str(estimate.n_groups),
        str(not_ok),
    )
    return table


@click.command("analyze")
@click.argument(
    "results_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Report directory: result.json, works.csv, PNG plots, index.html.",
)
@click.option(
    "--temperature",
    "temperature_K",
    type=click.FloatRange(min=0, min_open=True),
    help="Configured temperature in K; a warning if the files' kT says otherwise.",
)
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Whole-CLONE bootstrap resamples (0: none).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--cycles-per-wu",
    type=click.IntRange(min=1),
    help="Cycles each WU ran; detects files cut at a cycle boundary.",
)
@click.option(
    "--outlier-z",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Robust z above which a work pair is an outlier.",
)
@click.option(
    "--max-abs-work",
    "max_abs_work_kT",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_ABS_WORK_KT,
    show_default=True,
    help="Bound on |W_f| and |W_r| in kT; a pair beyond it is implausible and left out.",
)
@click.option(
    "--target-sigma",
    "target_sigma_kcal_per_mol",
    type=click.FloatRange(min=0, min_open=True),
    default=0.1,
    show_default=True,
    help="Error wanted (kcal/mol), for the estimate of cycles still needed.",
)
def analyze(
    results_dirs: tuple[Path, ...],
    out_dir: Path,
    temperature_K: float | None,
    n_bootstrap: int,
    seed: int,
    cycles_per_wu: int | None,
    outlier_z: float,
    max_abs_work_kT: float,
    target_sigma_kcal_per_mol: float,
) -> None:
    """Estimate ΔG of one transformation from the globals.csv files under RESULTS_DIR...

    Directories are searched recursively; the PRCG of each file comes from its
    PROJ*/RUN*/CLONE*/results*/ path. Prints ΔG ± σ, then every warning a reader must see
    before quoting the number (pairs left out, repaired rows, poor overlap, few pairs), and
    writes the report to --out.
    """
    result = analyze_paths(
        results_dirs,
        temperature_K=temperature_K,
        n_bootstrap=n_bootstrap,
        seed=seed,
        outlier_z=outlier_z,
        max_abs_work_kT=max_abs_work_kT,
        cycles_per_wu=cycles_per_wu,
        target_sigma_kcal_per_mol=target_sigma_kcal_per_mol,
    )
    report = write_report(result, out_dir)
    console = Console()
    console.print(_table(result))
    print_warnings(console, result.warnings)
    click.echo(f"report: {report.parent / 'index.html'}", err=True)


def print_warnings(console: Console, warnings: list[str]) -> None:
    """Each warning on its own line under the table, wrapped, never cut (``markup`` off: the
    text quotes file names and values that may hold brackets)."""
    for message in warnings:
        console.print(f"warning: {message}", markup=False, highlight=False)


COMMANDS: list[click.Command] = [analyze]
