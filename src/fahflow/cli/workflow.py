"""`fahflow submit/status/results` for people, and `fahflow batch <step>` for the Snakemake rules.

Each ``batch`` command is what one rule runs (``rule stage`` → ``fahflow batch stage`` →
:func:`fahflow.batch.stage.stage`); it reads the workflow config named by ``--config`` (envvar
``FAHFLOW_CONFIG``), the same YAML file Snakemake was given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from fahflow.batch.context import BatchContext
from fahflow.failpoints import failpoint

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FAHFLOW_CONFIG",
    default=Path("config/config.yaml"),
    show_default=True,
    help="Workflow config file (envvar FAHFLOW_CONFIG).",
)
OUT = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Record to write."
)
TASK = click.argument("task_id")


def _run(config_path: Path, step: Callable[..., Any], *args: Any) -> None:
    with BatchContext.from_file(config_path) as ctx:
        record = step(ctx, *args)
    click.echo(json.dumps(record, sort_keys=True, default=str))
    failpoint(f"{step.__name__}.done")  # between two rules


@click.group()
def batch() -> None:
    """The steps of a batch, one per Snakemake rule (run by `snakemake --profile fah`)."""


@batch.command()
@CONFIG
@OUT
def claim(config_path: Path, out: Path) -> None:
    """Claim new Tasks from the source into the ledger (and repair an interrupted claim)."""
    from fahflow.batch.claim import claim as step

    _run(config_path, step, out)


@batch.command()
@CONFIG
@click.argument("transformation_id")
@OUT
def serialize(config_path: Path, transformation_id: str, out: Path) -> None:
    """Build a Transformation's System, State, Integrator and core.xml (OUT: manifest.json)."""
    from fahflow.batch.serialize import serialize as step

    _run(config_path, step, transformation_id, out)


@batch.command()
@CONFIG
@TASK
@click.option("--manifest", type=click.Path(exists=True, path_type=Path), required=True)
@OUT
def stage(config_path: Path, task_id: str, manifest: Path, out: Path) -> None:
    """Allocate PRCG ids for a Task and place its WU files where the WS sends them from."""
    from fahflow.batch.stage import stage as step

    _run(config_path, step, task_id, manifest, out)


@batch.command()
@CONFIG
@TASK
@OUT
def create(config_path: Path, task_id: str, out: Path) -> None:
    """Create a Task's jobs on the WS, exactly once (intent recorded in the ledger first)."""
    from fahflow.batch.create import create as step

    _run(config_path, step, task_id, out)


@batch.command()
@CONFIG
@OUT
def poll(config_path: Path, out: Path) -> None:
    """Poll each PROJECT in flight once (jobs?since=); record finished, restart failed WUs."""
    from fahflow.batch.poll import poll as step

    _run(config_path, step, out)


@batch.command()
@CONFIG
@TASK
@OUT
def collect(config_path: Path, task_id: str, out: Path) -> None:
    """Copy a finished Task's globals.csv and science.log files into the results folder."""
    from fahflow.batch.collect import collect as step

    _run(config_path, step, task_id, out)


@batch.command()
@CONFIG
@TASK
@click.option("--collected", type=click.Path(exists=True, path_type=Path), required=True)
@OUT
def analyze(config_path: Path, task_id: str, collected: Path, out: Path) -> None:
    """BAR ΔG ± σ of a Task's works, with its report (a failed analysis fails the Task)."""
    from fahflow.batch.analyze import analyze as step

    _run(config_path, step, task_id, collected, out)


@batch.command()
@CONFIG
@TASK
@click.option("--outcome", type=click.Path(exists=True, path_type=Path), default=None)
@OUT
def push(config_path: Path, task_id: str, outcome: Path | None, out: Path) -> None:
    """Send a Task's result (OUTCOME) or failure reason back to its source, once."""
    from fahflow.batch.push import push as step

    _run(config_path, step, task_id, outcome, out)


@batch.command()
@CONFIG
@click.option("--polled", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--claimed", type=click.Path(exists=True, path_type=Path), default=None)
@OUT
def audit(config_path: Path, polled: Path, claimed: Path | None, out: Path) -> None:
    """Fail if a WU in flight went unreported for too long or this batch's poll or claim
    failed."""
    from fahflow.batch.audit import audit as step

    _run(config_path, step, polled, out, claimed)


@click.command()
@CONFIG
@click.argument("spec_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--tasks", "n_tasks", type=click.IntRange(min=1), default=None,
    help="Tasks to enqueue, at least 1 [a spec: its tasks; a gufe Transformation: 1].",
)  # fmt: skip
def submit(config_path: Path, spec_path: Path, n_tasks: int | None) -> None:
    """Enqueue Tasks of the Transformation in SPEC_PATH on the local queue: a fahflow spec
    (YAML) or a gufe Transformation (the JSON gufe writes, e.g. Transformation.to_json)."""
    from fahflow.campaign import submit_spec

    keys = submit_spec(config_path, spec_path, n_tasks)
    click.echo(f"submitted {len(keys)} Task(s) of {spec_path}:")
    for key in keys:
        click.echo(f"  {key}")


@click.command()
@CONFIG
@click.option("--all", "show_all", is_flag=True, help="List every Task, not only open ones.")
def status(config_path: Path, show_all: bool) -> None:
    """Every Task's step (queue + ledger) as a table, with counts per step."""
    from fahflow.cli.render import print_status

    print_status(config_path, show_all=show_all)


@click.command()
@CONFIG
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--report", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a report per Transformation under this folder.")  # fmt: skip
def results(config_path: Path, fmt: str, report: Path | None) -> None:
    """ΔG ± σ per Transformation, pooled over its completed Tasks."""
    from fahflow.cli.render import print_results

    print_results(config_path, fmt=fmt, report_dir=report)


@click.command("config-schema")
def config_schema() -> None:
    """Print the JSON schema of the workflow config (as YAML): workflow/schemas/ is made from it."""
    from fahflow.config import json_schema

    click.echo(yaml.safe_dump(json_schema(), sort_keys=False), nl=False)


COMMANDS: list[click.Command] = [batch, submit, status, results, config_schema]


@click.command()
@CONFIG
@click.option(
    "--source", type=click.Choice(["local", "alchemiscale"]), default="local", show_default=True,
    help="Where the Tasks come from: the local queue, or a stand-in alchemiscale server that a "
    "user submits the benzene → toluene network to (docs/alchemiscale.md).",
)  # fmt: skip
@click.option(
    "--example", "examples", multiple=True, default=("harmonic", "water"), show_default=True,
    help="Bundled example Transformations to submit (repeatable; --source local).",
)  # fmt: skip
@click.option(
    "--tasks", "n_tasks", type=click.IntRange(min=1), default=None,
    help="Tasks per Transformation (--source alchemiscale) [1].",
)  # fmt: skip
@click.option(
    "--small", is_flag=True,
    help="2 cycles of 500-step legs instead of the bundled 4 of 2,500 (--source alchemiscale).",
)  # fmt: skip
@click.option("--profile", default="fah", show_default=True, help="Snakemake profile.")
def demo(
    config_path: Path,
    source: str,
    examples: tuple[str, ...],
    n_tasks: int | None,
    small: bool,
    profile: str,
) -> None:
    """Main job on the embedded default: the simulated WS, Tasks from the local queue or a
    stand-in alchemiscale server, batches until all is done."""
    given = click.get_current_context().get_parameter_source
    if source == "alchemiscale":
        if given("examples") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(
                "--example is for --source local; --source alchemiscale submits the bundled "
                "benzene → toluene network (--small for a shorter one)"
            )
        from fahflow.demo_alchemiscale import run_alchemiscale_demo

        raise SystemExit(
            run_alchemiscale_demo(config_path, n_tasks=n_tasks or 1, small=small, profile=profile)
        )
    if n_tasks is not None or small:
        raise click.UsageError("--tasks and --small are for --source alchemiscale")
    from fahflow.demo import run_demo

    raise SystemExit(run_demo(config_path, examples, profile))


COMMANDS.append(demo)
