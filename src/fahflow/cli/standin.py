"""`fahflow standin ...`: a stand-in alchemiscale server and its user commands (docs/standin.md).

``init``, ``identity add``, ``serve`` and ``status`` work on a stand-in root. ``submit``,
``gather`` and ``restart`` talk to a user API (the stand-in's or a real alchemiscale's) with
alchemiscale's own client, configured by ``--url/--identifier/--key-file`` or the
``ALCHEMISCALE_URL``/``ALCHEMISCALE_ID``/``ALCHEMISCALE_KEY`` environment variables.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from fahflow.atomic import write_text
from fahflow.errors import FahflowError

_DIR = click.Path(file_okay=False, path_type=Path)
_FILE = click.Path(dir_okay=False, path_type=Path)
_ROOT = click.option("--root", type=_DIR, required=True, help="The stand-in's state directory.")


class StandinError(FahflowError):
    """A stand-in command could not do what was asked (the message says why)."""


def _standin(root: Path, **settings: Any) -> Any:
    from fahflow.standin import Standin

    return Standin(root, **settings)


@click.group("standin")
def standin() -> None:
    """A stand-in alchemiscale server (its own compute and user APIs over SQLite and a folder)."""


@standin.command("init")
@_ROOT
def init(root: Path) -> None:
    """Create the stand-in's stores (and its JWT secret) under ROOT; prints the root."""
    _standin(root)
    click.echo(str(root))


@standin.group("identity")
def identity() -> None:
    """Compute and user identities of the stand-in."""


@identity.command("add")
@_ROOT
@click.option("--compute", "compute_id", metavar="ID", help="A compute identity (FAH side).")
@click.option("--user", "user_id", metavar="ID", help="A user identity (submitting networks).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="org-campaign-project the identity may use (* for any part); repeatable.",
)
@click.option(
    "--key-file",
    type=_FILE,
    help="The key: read from this file if it exists, else generated and written here (0600). "
    "Default ROOT/keys/ID.key.",
)
def identity_add(
    root: Path,
    compute_id: str | None,
    user_id: str | None,
    scopes: tuple[str, ...],
    key_file: Path | None,
) -> None:
    """Add (or replace) an identity; prints the key file's path, never the key."""
    if (compute_id is None) == (user_id is None):
        raise click.UsageError("give exactly one of --compute ID or --user ID")
    kind, identifier = ("compute", compute_id) if compute_id else ("user", user_id)
    key_file = key_file or root / "keys" / f"{identifier}.key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if not key:
            raise click.BadParameter(f"{key_file} is empty", param_hint="--key-file")
    else:
        key = secrets.token_urlsafe(32)
        write_text(key_file, key + "\n", perms=0o600)
    try:
        _standin(root).add_identity(kind, identifier, key, list(scopes))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    click.echo(str(key_file))


@standin.command("serve")
@_ROOT
@click.option("--compute-port", type=click.IntRange(0, 65535), default=0, show_default=True)
@click.option("--interface-port", type=click.IntRange(0, 65535), default=0, show_default=True)
@click.option(
    "--ready-file", type=_FILE, help="Written (JSON: compute, interface URLs) once both listen."
)
@click.option(
    "--registration-expire-s", type=click.IntRange(min=1), default=1800, show_default=True
)
@click.option("--forgive-time-s", type=click.IntRange(min=0), help="Default alchemiscale's (600).")
@click.option("--max-failures", type=click.IntRange(min=0), help="Default alchemiscale's (3).")
def serve(
    root: Path,
    compute_port: int,
    interface_port: int,
    ready_file: Path | None,
    registration_expire_s: int,
    forgive_time_s: int | None,
    max_failures: int | None,
) -> None:
    """Serve the compute and user APIs on 127.0.0.1 until interrupted (Ctrl-C or SIGTERM)."""
    server = _standin(
        root,
        registration_expire_s=registration_expire_s,
        forgive_time_s=forgive_time_s,
        max_failures=max_failures,
    )
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with server.serve(compute_port, interface_port) as urls:
            urls_json = json.dumps({"compute": urls.compute, "interface": urls.interface})
            if ready_file is not None:
                write_text(ready_file, urls_json + "\n")
            click.echo(urls_json)
            stop.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@standin.command("status")
@_ROOT
def status(root: Path) -> None:
    """Tasks by status, then one line per Task (key, status, priority, results, claim)."""
    from rich.console import Console
    from rich.table import Table

    if not (root / "state.sqlite").exists():
        raise click.BadParameter(f"no stand-in at {root} (run fahflow standin init)", "--root")
    tasks = _standin(root).tasks()
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task["status"]] = counts.get(task["status"], 0) + 1
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no Tasks")
    table = Table("Task", "status", "priority", "results", "failures", "claimed by")
    for task in tasks:
        table.add_row(
            task["key"],
            task["status"],
            str(task["priority"]),
            str(task["n_results"]),
            str(task["n_failures"]),
            task["claimed_by"] or "",
        )
    if tasks:
        Console(width=200).print(table)


# -- user commands ------------------------------------------------------------------------------

_URL = click.option("--url", envvar="ALCHEMISCALE_URL", help="User API URL [ALCHEMISCALE_URL].")
_ID = click.option("--identifier", envvar="ALCHEMISCALE_ID", help="User id [ALCHEMISCALE_ID].")
_KEY = click.option(
    "--key-file", type=_FILE, help="File holding the user key (else ALCHEMISCALE_KEY)."
)


@contextlib.contextmanager
def _client(url: str | None, identifier: str | None, key_file: Path | None) -> Iterator[Any]:
    """alchemiscale's user client, with its errors as one-line StandinErrors."""
    import os

    from alchemiscale.base.client import AlchemiscaleBaseClientError, AlchemiscaleConnectionError
    from alchemiscale.interface.client import AlchemiscaleClient

    if key_file is not None:
        if not key_file.is_file():
            raise click.BadParameter(f"{key_file}: no such file", param_hint="--key-file")
        key = key_file.read_text().strip()
    else:
        key = os.environ.get("ALCHEMISCALE_KEY")
    for value, hint in ((url, "--url"), (identifier, "--identifier"), (key, "--key-file")):
        if not value:
            raise click.BadParameter("not given (nor its ALCHEMISCALE_* variable)", param_hint=hint)
    client = AlchemiscaleClient(url, identifier, key, use_local_cache=False, max_retries=2)
    try:
        yield client
    except AlchemiscaleConnectionError as exc:
        raise StandinError(f"cannot reach {url}: {exc}") from exc
    except AlchemiscaleBaseClientError as exc:
        raise StandinError(f"{url}: {exc}") from exc


def _scoped_key(text: str, hint: str) -> Any:
    from alchemiscale.models import ScopedKey

    try:
        return ScopedKey.from_str(text)
    except Exception:
        raise click.BadParameter(
            f"{text!r} is not a ScopedKey (Qualname-key-org-campaign-project)", param_hint=hint
        ) from None


def _load_gufe(path: Path) -> Any:
    import gufe
    from gufe.tokenization import GufeTokenizable

    if not path.is_file():
        raise click.BadParameter(f"{path}: no such file", param_hint="FILE")
    try:
        obj = GufeTokenizable.from_json(content=path.read_text())
    except Exception as exc:
        raise click.BadParameter(
            f"{path} is not gufe JSON ({type(exc).__name__}: {str(exc)[:120]})", param_hint="FILE"
        ) from None
    if not isinstance(obj, gufe.Transformation | gufe.AlchemicalNetwork):
        raise click.BadParameter(
            f"{path} holds a {type(obj).__name__}, not a Transformation or AlchemicalNetwork",
            param_hint="FILE",
        )
    return obj


@standin.command("submit")
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.option("--scope", required=True, help="org-campaign-project (specific, no *).")
@click.option("--tasks", "n_tasks", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--extends-chain", is_flag=True, help="Each Transformation's Tasks form a chain.")
@click.option("--name", help="The network's name.")
@_URL
@_ID
@_KEY
def submit(
    files: tuple[Path, ...],
    scope: str,
    n_tasks: int,
    extends_chain: bool,
    name: str | None,
    url: str | None,
    identifier: str | None,
    key_file: Path | None,
) -> None:
    """Submit FILE... (gufe Transformation or AlchemicalNetwork JSON) as one network and create
    --tasks actioned Tasks per Transformation; prints the network key, then each Task key."""
    from alchemiscale.models import Scope

    from fahflow.standin.user import network_of
    from fahflow.standin.user import submit as submit_network

    try:
        specific = Scope.from_str(scope).specific()
    except Exception:
        specific = False
    if not specific:
        raise click.BadParameter(
            f"{scope!r} is not a specific org-campaign-project scope (no *)", param_hint="--scope"
        )
    network = network_of([_load_gufe(p) for p in files], name=name)
    with _client(url, identifier, key_file) as client:
        submitted = submit_network(client, network, scope, n_tasks, extends_chain=extends_chain)
    click.echo(str(submitted["network"]))
    for tasks in submitted["tasks"].values():
        for task in tasks:
            click.echo(str(task))


@standin.command("gather")
@click.argument("network")
@_URL
@_ID
@_KEY
def gather(network: str, url: str | None, identifier: str | None, key_file: Path | None) -> None:
    """ΔG ± σ (kcal/mol) per Transformation of NETWORK, from the protocol's gather."""
    from fahflow.standin.user import gather as gather_network

    network_sk = _scoped_key(network, "NETWORK")
    with _client(url, identifier, key_file) as client:
        rows = gather_network(client, network_sk)
    for row in rows:
        if row["dG_kcal_per_mol"] is None:
            figure = "no result yet"
        else:
            figure = f"{row['dG_kcal_per_mol']:.2f} ± {row['dG_sigma_kcal_per_mol']:.2f} kcal/mol"
        click.echo(
            f"{row['name'] or row['transformation']}: {figure}"
            f" ({row['n_results']} results, {row['n_failures']} failures)"
        )


@standin.command("restart")
@click.argument("network")
@_URL
@_ID
@_KEY
def restart(network: str, url: str | None, identifier: str | None, key_file: Path | None) -> None:
    """Set NETWORK's errored Tasks back to waiting; prints each Task restarted."""
    from fahflow.standin.user import restart_errored

    network_sk = _scoped_key(network, "NETWORK")
    with _client(url, identifier, key_file) as client:
        for task in restart_errored(client, network_sk):
            click.echo(task)


COMMANDS: list[click.Command] = [standin]
