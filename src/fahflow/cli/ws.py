"""`fahflow ws ...`: look at and manage projects and jobs on a FAH work server.

Connection settings come from options or environment variables (FAHFLOW_WS_URL, FAHFLOW_CERT,
FAHFLOW_KEY, FAHFLOW_CA) and are turned into a client by :func:`client_from_options`. Data goes to
stdout (a rich table, or JSON with ``--json``); errors become one line and exit code 1 in
``fahflow.cli``, their messages as the library wrote them (a create or job action whose answer was
lost says "the outcome is unknown" and which `fahflow ws job` to look at first).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from fahflow.errors import ConfigError, Conflict, NotFound, WorkServerError
from fahflow.ws.client import CREATE_FORMS, DEFAULT_TIMEOUT, CreateForm, WorkServerClient
from fahflow.ws.layout import gen_over_api
from fahflow.ws.models import Compression, JobAction, JobState, ProjectData

_PATH = click.Path(dir_okay=False, path_type=Path)


def _echo_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    click.echo(json.dumps(data, indent=2))


def client_from_options(
    url: str | None,
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
    ca: str | os.PathLike[str] | None = None,
    *,
    timeout: Any = DEFAULT_TIMEOUT,
    retries: int = 5,
    backoff_s: float = 0.5,
    create_form: CreateForm = "clone",
) -> WorkServerClient:
    """A :class:`WorkServerClient` from loose settings (CLI options, env vars).

    Says which setting is missing, by its option and environment variable names. ``ca=None``
    verifies the server against the system CAs.
    """
    if not url:
        raise ConfigError("no work server URL: pass --url or set FAHFLOW_WS_URL")
    if not cert or not key:
        missing = "--cert (FAHFLOW_CERT)" if not cert else "--key (FAHFLOW_KEY)"
        raise ConfigError(f"the work server needs a client certificate and key: missing {missing}")
    return WorkServerClient(
        url,
        cert=(cert, key),
        verify=ca if ca else True,
        timeout=timeout,
        retries=retries,
        backoff_s=backoff_s,
        create_form=create_form,
    )


def _client(ctx: click.Context, **extra: Any) -> WorkServerClient:
    """The WS client for this invocation, built from the ``ws`` group's options (``extra``:
    per-command settings such as ``create_form``)."""
    return client_from_options(**ctx.obj["ws"], **extra)


@click.group("ws")
@click.option("--url", envvar="FAHFLOW_WS_URL", help="Work server URL, https://host:port.")
@click.option("--cert", envvar="FAHFLOW_CERT", type=_PATH, help="Client certificate (PEM).")
@click.option("--key", envvar="FAHFLOW_KEY", type=_PATH, help="Client private key (PEM).")
@click.option(
    "--ca", envvar="FAHFLOW_CA", type=_PATH, help="CA bundle for the server (default: system)."
)
@click.option(
    "--http-timeout",
    envvar="FAHFLOW_WS_TIMEOUT",
    type=(click.FloatRange(min=0, min_open=True), click.FloatRange(min=0, min_open=True)),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="CONNECT_S READ_S",
    help="HTTP timeouts in seconds.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Retries of transient failures (idempotent calls only).",
)
@click.pass_context
def ws(
    ctx: click.Context,
    url: str | None,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    http_timeout: tuple[float, float],
    retries: int,
) -> None:
    """Projects and jobs on a Folding@home work server (mutual TLS).

    Connection options may also come from FAHFLOW_WS_URL, FAHFLOW_CERT, FAHFLOW_KEY and
    FAHFLOW_CA.
    """
    ctx.ensure_object(dict)
    ctx.obj["ws"] = {
        "url": url,
        "cert": cert,
        "key": key,
        "ca": ca,
        "timeout": http_timeout,
        "retries": retries,
    }


@ws.command("projects")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def projects(ctx: click.Context, as_json: bool) -> None:
    """List the projects on the work server, with their settings."""
    with _client(ctx) as client:
        rows = [(p, client.get_project(p)) for p in client.list_projects()]
    if as_json:
        _echo_json({str(p): data.model_dump(mode="json") for p, data in rows})
        return
    table = Table(title=f"projects on {ctx.obj['ws']['url']}")
    columns = ("project", "core", "runs", "clones", "gens", "atoms", "credit", "timeout s")
    for column in (*columns, "contact"):
        table.add_column(column, justify="left" if column == "contact" else "right")
    for p, d in rows:
        values = (p, f"0x{d.core_id:02x}", d.runs, d.clones, d.gens, d.atoms, d.credit, d.timeout)
        table.add_row(*(str(v) for v in values), d.contact)
    Console().print(table)


@ws.command("project")
@click.argument("project", type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def project(ctx: click.Context, project: int, as_json: bool) -> None:
    """Show one PROJECT's settings."""
    with _client(ctx) as client:
        data = client.get_project(project)
    if as_json:
        _echo_json(data)
        return
    table = Table(title=f"project {project}", show_header=False)
    for name, value in data.model_dump(mode="json").items():
        table.add_row(name, str(value))
    Console().print(table)


def project_data(base: ProjectData | None = None, **fields: Any) -> ProjectData:
    """ProjectData from CLI options over ``base`` (the current settings, for an update); a bad
    or missing value is named by its option."""
    values = base.model_dump() if base is not None else {}
    values.update({k: v for k, v in fields.items() if v is not None})
    try:
        return ProjectData(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            option = f"--{str(err['loc'][0]).replace('_', '-')}"
            if err["type"] == "missing":
                problems.append(f"{option} is required")
            else:
                message = err["msg"].removeprefix("Value error, ")
                problems.append(f"{option} {err.get('input')!r}: {message}")
        raise ConfigError("bad project settings: " + "; ".join(problems)) from None


@ws.command("create-project")
@click.argument("project", type=click.IntRange(min=0))
@click.option("--core-id", help="FAH core type as hex, e.g. 0x23 (required for a new project).")
@click.option("--contact", help="Email of the person responsible (required for a new project).")
@click.option("--runs", type=int, help="Number of RUNs.  [default: 1]")
@click.option("--clones", type=int, help="CLONEs per RUN.  [default: 1]")
@click.option("--gens", type=int, help="GENs per CLONE.  [default: 1]")
@click.option("--atoms", type=int, help="Approximate atoms per WU.")
@click.option("--credit", type=int, help="Base credit per WU.")
@click.option("--timeout", type=int, help="Seconds before a WU is reassigned (>= 300).")
@click.option("--deadline", type=int, help="Seconds in which a WU earns credit (>= 300).")
@click.option("--compression", type=click.Choice([c.value for c in Compression]))
@click.option("--update", is_flag=True, help="Replace the settings of an existing project.")
@click.pass_context
def create_project(ctx: click.Context, project: int, update: bool, **fields: Any) -> None:
    """Create PROJECT on the work server, or change the given settings of an existing one
    (--update; settings not given keep their values)."""
    if not update:
        project_data(**fields)  # a bad value is reported before any request
    with _client(ctx) as client:
        try:
            current: ProjectData | None = client.get_project(project)
        except NotFound:
            current = None
        if current is not None and not update:
            raise ConfigError(f"project {project} already exists; use --update to change it")
        if current is None and update:
            raise ConfigError(f"project {project} does not exist; leave out --update to create it")
        client.put_project(project, project_data(current, **fields))
    click.echo(f"{'updated' if update else 'created'} project {project}")


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time like 2026-11-26T14:30:00Z", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@ws.command("jobs")
@click.argument("project", type=click.IntRange(min=0))
@click.option("--since", help="Only jobs changed since this ISO 8601 time (UTC if no zone).")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in JobState], case_sensitive=False),
    help="Only jobs in this state (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def jobs(
    ctx: click.Context, project: int, since: str | None, states: tuple[str, ...], as_json: bool
) -> None:
    """List the jobs (CLONEs) of PROJECT as a table, with a count per state."""
    moment = _parse_since(since)
    with _client(ctx) as client:
        result = client.jobs_since(project, moment)
    wanted = {s.upper() for s in states}
    rows = sorted(
        (j for j in result.jobs if not wanted or j.state.value in wanted),
        key=lambda j: (j.run, j.clone),
    )
    if as_json:
        _echo_json({"ts": result.ts.isoformat(), "jobs": [j.model_dump(mode="json") for j in rows]})
        return
    table = Table(title=f"jobs of project {project}" + (f" since {moment:%F %T}" if moment else ""))
    for column in ("run", "clone", "gen", "state", "progress", "retries", "assigns", "last (UTC)"):
        table.add_column(column, justify="left" if column == "state" else "right")
    for j in rows:
        last = f"{j.last.astimezone(UTC):%F %T}" if j.last else ""
        progress = "" if j.progress is None else f"{j.progress:.0%}"  # null: not reported
        table.add_row(
            str(j.run), str(j.clone), str(j.gen), j.state.value, progress,
            *("" if n is None else str(n) for n in (j.retries, j.assigns)), last,
        )  # fmt: skip
    counts = Counter(j.state.value for j in rows)
    table.caption = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no jobs"
    Console().print(table)


@ws.command("job")
@click.argument("project", type=click.IntRange(min=0))
@click.argument("run", type=click.IntRange(0, 65535))
@click.argument("clone", type=click.IntRange(0, 65535))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def job(ctx: click.Context, project: int, run: int, clone: int, as_json: bool) -> None:
    """Show one job: PROJECT RUN CLONE."""
    with _client(ctx) as client:
        data = client.get_job(project, run, clone)
    if as_json:
        _echo_json(data)
        return
    table = Table(title=f"job {project}:{run}:{clone}", show_header=False)
    for name, value in data.model_dump(mode="json").items():
        table.add_row(name, str(value))
    Console().print(table)


def _action_command(action: JobAction) -> click.Command:
    """``fahflow ws fail|reset|stop|restart P R C``, each behind a confirmation prompt."""

    @click.argument("project", type=click.IntRange(min=0))
    @click.argument("run", type=click.IntRange(0, 65535))
    @click.argument("clone", type=click.IntRange(0, 65535))
    @click.confirmation_option(prompt=f"{action.value} this job on the work server?")
    @click.pass_context
    def command(ctx: click.Context, project: int, run: int, clone: int) -> None:
        with _client(ctx) as client:
            client.job_action(project, run, clone, action)
            state = client.get_job(project, run, clone).state
        click.echo(f"{action.value}: job {project}:{run}:{clone} is now {state.value}")

    command.__doc__ = {
        JobAction.FAIL: "Mark job PROJECT RUN CLONE as FAILED.",
        JobAction.RESET: "Reset job PROJECT RUN CLONE to GEN 0, READY.",
        JobAction.STOP: "Stop job PROJECT RUN CLONE (no more assignments).",
        JobAction.RESTART: "Put a FAILED or STOPPED job PROJECT RUN CLONE back in play.",
    }[action]
    return ws.command(action.value)(command)


for _action in JobAction:
    _action_command(_action)


@ws.command("files")
@click.argument("project", type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def files(ctx: click.Context, project: int, as_json: bool) -> None:
    """List the input files uploaded for PROJECT (project, RUN and CLONE files)."""
    with _client(ctx) as client:
        listing = client.list_project_files(project)
    if as_json:
        _echo_json(listing)
        return
    table = Table(title=f"files of project {project}")
    for column in ("path", "bytes", "modified (UTC)"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for f in listing:
        modified = f"{f.modified.astimezone(UTC):%F %T}" if f.modified else ""
        table.add_row(f.path, str(f.size), modified)
    Console().print(table)


@ws.command("put-file")
@click.argument("project", type=click.IntRange(min=0))
@click.argument("local_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("remote_path")
@click.pass_context
def put_file(ctx: click.Context, project: int, local_file: Path, remote_path: str) -> None:
    """Upload LOCAL_FILE as REMOTE_PATH of PROJECT, e.g. RUN0/core.xml or
    RUN0/CLONE3/state.xml.bz2 (a REMOTE_PATH ending in / takes LOCAL_FILE's name).

    The work server packages the files of its <send> list when a CLONE is created, so upload
    them before `fahflow ws create-clone`. Uploading again replaces the file.
    """
    if remote_path.endswith("/"):
        remote_path += local_file.name
    with _client(ctx) as client:
        client.put_file(project, remote_path, local_file)
    click.echo(f"uploaded {local_file} ({local_file.stat().st_size} bytes) as {remote_path}")


@ws.command("get-file")
@click.argument("project", type=click.IntRange(min=0))
@click.argument("remote_path")
@click.option("--out", type=_PATH, required=True, help="Local file to write (atomically).")
@click.pass_context
def get_file(ctx: click.Context, project: int, remote_path: str, out: Path) -> None:
    """Download input file REMOTE_PATH of PROJECT (as listed by `fahflow ws files`)."""
    with _client(ctx) as client:
        client.get_file(project, remote_path, out)
    click.echo(f"wrote {out} ({out.stat().st_size} bytes)")


@ws.command("create-clone")
@click.argument("project", type=click.IntRange(min=0))
@click.argument("run", type=click.IntRange(0, 65535))
@click.argument("clone", type=click.IntRange(0, 65535))
@click.option(
    "--create-form",
    type=click.Choice(CREATE_FORMS),
    default="clone",
    show_default=True,
    help="How the WS is asked: per-CLONE create (WS >= 10.3.4) or the RUN-level forms.",
)
@click.pass_context
def create_clone(
    ctx: click.Context, project: int, run: int, clone: int, create_form: CreateForm
) -> None:
    """Create job PROJECT RUN CLONE from the files already uploaded for it.

    Ids are never reused on FAH, so an existing job is an error, and a create whose answer was
    lost is not repeated (the outcome is unknown): check `fahflow ws job` first. A job the WS
    marks FAILED at once (its <send> files are missing) is an error too.
    """
    prcg = f"{project}:{run}:{clone}"
    with _client(ctx, create_form=create_form) as client:
        try:
            client.create_clone(project, run, clone)
        except Conflict as exc:
            why = ""
            if exc.status == 409:
                show = f"fahflow ws job {project} {run} {clone}"
                why = f" (it already exists, and ids are never reused: see `{show}`)"
            raise Conflict(
                f"job {prcg} was not created{why}: {exc}",
                method=exc.method, url=exc.url, status=exc.status, body=exc.body,
            ) from None  # fmt: skip
        state = client.get_job(project, run, clone).state
    if state is JobState.FAILED:
        raise WorkServerError(
            f"job {prcg} was created but is FAILED: are the files of the WS <send> list "
            f"uploaded (`fahflow ws files {project}`)?"
        )
    click.echo(f"created job {prcg}: {state.value}")


@ws.command("results")
@click.argument("project", type=click.IntRange(min=0))
@click.argument("run", type=click.IntRange(0, 65535))
@click.argument("clone", type=click.IntRange(0, 65535))
@click.option(
    "--gen",
    type=click.IntRange(min=0),
    help="GEN whose results to fetch.  [default: the highest GEN with results present]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the files to (created).",
)
@click.pass_context
def results(
    ctx: click.Context, project: int, run: int, clone: int, gen: int | None, out: Path
) -> None:
    """Download every result file of one GEN of job PROJECT RUN CLONE (globals.csv,
    science.log, ...) into --out.

    The files are first downloaded next to --out; only when all arrived do they replace those
    in --out, so an interrupted download never leaves a partial set behind.
    """
    with _client(ctx) as client:
        if gen is None:  # the GEN that was run, not the job's `gen` (fahflow.ws.layout)
            gen = gen_over_api(lambda g: client.list_gen_files(project, run, clone, g))
        fetched = client.download_gen(project, run, clone, gen, out)
    for local in fetched:
        click.echo(f"{local}\t{local.stat().st_size}")
    click.echo(
        f"downloaded {len(fetched)} files of job {project}:{run}:{clone} GEN {gen} to {out}",
        err=True,
    )


COMMANDS: list[click.Command] = [ws]
