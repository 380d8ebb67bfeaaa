"""`fahflow sim ...`: the FAH work-server + assignment-server simulator (docs/simulator.md).

``serve`` runs it in the foreground; ``issue-cert`` stands in for the AS web UI; ``status`` reads
the state of a (running or stopped) simulator; ``make-wu`` and ``run-core`` help rehearse by hand.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click
from rich.console import Console
from rich.table import Table

from fahflow.atomic import write_bytes, write_text
from fahflow.ws.models import JobState

_DIR = click.Path(file_okay=False, path_type=Path)
_FILE = click.Path(dir_okay=False, path_type=Path)
SERVER_FILE = "server.json"
"""Written by ``serve`` in the root: url, CA path, pid; read by ``status`` and scripts."""


@click.group("sim")
def sim() -> None:
    """Simulated FAH work server + assignment server, with OpenMM volunteers."""


@sim.command("serve")
@click.option("--root", type=_DIR, required=True, help="State directory (created).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option(
    "--volunteers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Volunteer processes running WUs.",
)
@click.option(
    "--config",
    "config_path",
    type=_FILE,
    help="Simulator config (YAML or config.xml-like); default ROOT/sim.yaml if present.",
)
@click.option("--platform", help="OpenMM platform of the volunteers (CPU, CUDA, OpenCL).")
def serve(
    root: Path, port: int, volunteers: int, config_path: Path | None, platform: str | None
) -> None:
    """Run the simulator until interrupted (Ctrl-C or SIGTERM).

    Prints the URL and the CA to trust; writes them to ROOT/server.json.
    """
    from fahflow.sim import SimConfig, Simulator

    config = SimConfig.load(config_path) if config_path else SimConfig.from_root(root)
    if platform:
        config = config.model_copy(update={"platform": platform})
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with Simulator(root, port=port, volunteers=volunteers, config=config) as simulator:
        info = {
            "url": simulator.url,
            "ca": str(simulator.ca_path),
            "pid": os.getpid(),
            "volunteers": volunteers,
        }
        write_text(root / SERVER_FILE, json.dumps(info, indent=2) + "\n")
        click.echo(f"simulator at {simulator.url}  CA {simulator.ca_path}  volunteers {volunteers}")
        click.echo(f"log {simulator.log.path}; stop with Ctrl-C", err=True)
        done.wait()
    (root / SERVER_FILE).unlink(missing_ok=True)


@sim.command("issue-cert")
@click.option("--root", type=_DIR, required=True, help="Simulator state directory (its CA).")
@click.option("--csr", "csr_path", type=_FILE, required=True, help="PEM CSR (CN = your email).")
@click.option("--out", type=_FILE, required=True, help="Where to write the PEM certificate.")
@click.option(
    "--days",
    type=float,
    default=30,
    show_default=True,
    help="Lifetime; negative gives an expired certificate (for rehearsals).",
)
def issue_cert(root: Path, csr_path: Path, out: Path, days: float) -> None:
    """Issue an operator certificate from a CSR (stands in for the AS web UI)."""
    from datetime import timedelta

    from fahflow.sim.ca import CertificateAuthority

    try:
        csr_pem = csr_path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {csr_path}: {exc}", param_hint="--csr") from None
    pem = CertificateAuthority.load_or_create(root / "ca").issue(csr_pem, timedelta(days=days))
    write_bytes(out, pem)
    click.echo(f"wrote {out}; trust {root / 'ca' / 'ca.pem'} as the server CA")


@sim.command("status")
@click.option("--root", type=_DIR, required=True, help="Simulator state directory.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
def status(root: Path, as_json: bool) -> None:
    """Projects, job counts per state and busy volunteers (read-only; server may be running)."""
    from fahflow.sim.store import Store

    store = Store(root / "sim.sqlite", readonly=True)
    try:
        counts, busy = store.counts(), store.busy_volunteers()
    finally:
        store.close()
    url = _running_url(root)
    if as_json:
        click.echo(json.dumps({"url": url, "projects": counts, "busy": busy}, indent=2))
        return
    console = Console()
    console.print(f"simulator {url or '(not running)'} at {root}")
    present = {state for per_state in counts.values() for state in per_state}
    states = [s.value for s in JobState if s.value in present]
    table = Table("project", *states, "total", title="jobs per state")
    for project, per_state in sorted(counts.items()):
        cells = [str(per_state.get(s, 0)) for s in states]
        table.add_row(str(project), *cells, str(sum(per_state.values())))
    console.print(table)
    volunteers = Table("volunteer", "working on", title=f"busy volunteers: {len(busy)}")
    for name, prcg in sorted(busy.items()):
        volunteers.add_row(name, prcg)
    console.print(volunteers)


def _running_url(root: Path) -> str | None:
    """The URL in ROOT/server.json if its process still runs (a killed serve leaves the file)."""
    try:
        info = json.loads((root / SERVER_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(info["url"])


@sim.command("make-wu")
@click.argument("directory", type=_DIR)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--global-var-freq", type=click.IntRange(min=1), default=100, show_default=True)
def make_wu(directory: Path, steps: int, global_var_freq: int) -> None:
    """Write a tiny real WU (core.xml + system/state/integrator .xml.bz2) into DIRECTORY."""
    from fahflow.sim.tinywu import make_tiny_wu

    make_tiny_wu(directory, num_steps=steps, global_var_freq=global_var_freq)
    click.echo(f"wrote a {steps}-step WU to {directory}")


@sim.command("run-core")
@click.argument("wu_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("out_dir", type=_DIR)
@click.option("--platform", default="CPU", show_default=True, help="OpenMM platform.")
def run_core_command(wu_dir: Path, out_dir: Path, platform: str) -> None:
    """Run an unpacked WU as the FAH OpenMM core would (globals.csv, science.log, checkpoint)."""
    from fahflow.sim.core import run_core

    run_core(wu_dir, out_dir, platform)
    click.echo(f"results in {out_dir}")


COMMANDS: list[click.Command] = [sim]
