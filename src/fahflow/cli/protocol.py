"""`fahflow build-wu` and `fahflow propose-projects`: work units and PROJECT sizes."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from fahflow.protocol.projects import NONBONDED_METHODS, effort, propose_project_sizes


@click.command("build-wu")
@click.argument("spec_path", metavar="SPEC.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out_dir", metavar="OUT/", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the preparation (starting state); same seed, same bytes.",
)
def build_wu(spec_path: Path, out_dir: Path, seed: int) -> None:
    """Build one NEQ-cycling work unit from SPEC.yaml into OUT/.

    Writes core.xml, system.xml.bz2, state.xml.bz2 and integrator.xml.bz2 (atomically) and
    prints the atom count, nonbonded method, numSteps and the files. A bundled example can be
    named as example:harmonic or example:water.
    """
    from fahflow.protocol.build import build_work_unit
    from fahflow.protocol.spec import example_path, load_spec

    text = str(spec_path)
    path = example_path(text.removeprefix("example:")) if text.startswith("example:") else spec_path
    spec = load_spec(path)
    wu = build_work_unit(spec, out_dir, seed=seed)
    click.echo(f"spec      {spec.name} ({path})")
    click.echo(f"atoms     {wu.n_atoms}")
    click.echo(f"method    {wu.nonbonded_method}")
    click.echo(
        f"numSteps  {wu.num_steps}  ({spec.cycles_per_wu} cycles x "
        f"(2*{spec.eq_steps} eq + 2*{spec.neq_steps} neq))"
    )
    click.echo(f"seed      {wu.seed}")
    for file in wu.files.values():
        click.echo(f"file      {file}  ({file.stat().st_size} bytes)")


@click.command("propose-projects")
@click.option("--min-atoms", type=click.IntRange(min=1), required=True)
@click.option("--max-atoms", type=click.IntRange(min=1), required=True)
@click.option("--count", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--nonbonded",
    type=click.Choice(NONBONDED_METHODS, case_sensitive=False),
    default="PME",
    show_default=True,
)
def propose_projects(min_atoms: int, max_atoms: int, count: int, nonbonded: str) -> None:
    """Propose COUNT PROJECT atom counts from MIN to MAX atoms, evenly spaced in effort.

    Effort is n·ln n for PME-like methods and n² for NoCutoff. Paste the rows into the
    workflow config's `projects:` list with PROJECT ids of your own.
    """
    sizes = propose_project_sizes(min_atoms, max_atoms, count, nonbonded)
    table = Table(title=f"PROJECT sizes ({nonbonded}, evenly spaced in effort)")
    for column in ("#", "atoms", "effort", "effort / smallest"):
        table.add_column(column, justify="right")
    base = effort(sizes[0], nonbonded)
    for i, atoms in enumerate(sizes, start=1):
        work = effort(atoms, nonbonded)
        table.add_row(str(i), str(atoms), f"{work:.4g}", f"{work / base:.2f}")
    Console().print(table)


COMMANDS: list[click.Command] = [build_wu, propose_projects]
