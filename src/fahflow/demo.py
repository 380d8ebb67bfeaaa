"""The main job on the embedded default: a simulated WS with volunteers, the local queue, and
Snakemake batches until every Task is done (``scripts/demo``).

It does what an operator would do by hand (README): start ``fahflow sim serve``, get an operator
certificate from its CA, ``fahflow submit`` the bundled examples (``--example NAME``: a gufe
Transformation too), run ``snakemake --profile fah`` until nothing is left in flight, then
``fahflow results --report``. Between batches it waits for a job on the simulated WS to change
state instead of sleeping a fixed time.
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from fahflow.campaign import submit_spec, task_rows
from fahflow.cli.render import print_results, print_status
from fahflow.config import FahflowConfig, SimulatorSettings, load_config
from fahflow.errors import CertificateError, ConfigError
from fahflow.ledger import Ledger
from fahflow.protocol.spec import example_path, load_spec
from fahflow.sim import SimConfig, Simulator
from fahflow.states import WU_IN_FLIGHT
from fahflow.ws import certs

logger = logging.getLogger(__name__)
console = Console()


def ensure_identity(sim: Simulator, config: FahflowConfig) -> None:
    """An operator key and a certificate from the simulator's CA, at the config's paths."""
    ws = config.ws
    if ws.cert.exists() and ws.key.exists():
        try:
            certs.check_pair(ws.cert, ws.key)
            return
        except CertificateError as exc:
            console.print(f"[yellow]operator certificate unusable ({exc}); issuing a new one")
    if not ws.key.exists():
        certs.create_key(ws.key)
    pem = sim.issue_certificate(certs.csr_pem(ws.key, config.projects[0].contact), days=30)
    from fahflow.atomic import write_bytes

    write_bytes(ws.cert, pem)


def _in_flight(config: FahflowConfig) -> list[tuple[int, int, int]]:
    if not config.ledger.path.exists():
        return []
    with Ledger(config.ledger.path) as ledger:
        return [
            (w.project, w.run, w.clone)
            for p in ledger.projects_in_flight()
            for w in ledger.wus_in(p, WU_IN_FLIGHT)
        ]


def run_demo(
    config_path: Path,
    examples: Sequence[str] = ("harmonic", "water"),
    profile: str = "fah",
    max_batches: int = 100,
) -> int:
    """Run the whole campaign; returns the exit status of the last batch (0: all done)."""
    config = load_config(config_path)
    with start_simulator(config_path, config) as sim:
        _submit_examples(config_path, config, examples)

        def finished() -> bool:
            return all(r["step"] in ("done", "failed") for r in task_rows(config))

        status = run_batches(config_path, config, sim, finished, profile, max_batches)
        console.rule("results")
        rows = print_results(
            config_path, report_dir=config.batch.results_dir / "report", console=console
        )
        _compare_with_references(rows)
        console.print(f"report: {config.batch.results_dir / 'report'}/<transformation>/index.html")
    return status


def start_simulator(config_path: Path, config: FahflowConfig) -> Simulator:
    """The config's simulated WS (a colocated one: its root ``ws.data_dir``, its port
    ``ws.url``'s), started, with an operator certificate from its CA at the config's paths.

    The caller stops it (``with start_simulator(...) as sim:``).
    """
    settings = config.simulator or SimulatorSettings()
    if config.ws.staging != "colocated" or config.ws.data_dir is None:
        raise ConfigError(f"{config_path}: the demo runs the simulator as a colocated WS")
    sim_config = SimConfig(
        send=config.ws.send, seed=settings.seed, clock_scale=settings.clock_scale,
        faults=settings.faults.model_dump(),
    )  # fmt: skip
    port = int(config.ws.url.rsplit(":", 1)[1].split("/")[0])
    sim = Simulator(
        config.ws.data_dir, port=port, volunteers=settings.volunteers, config=sim_config
    )
    try:
        sim.start()
    except OSError as exc:
        raise ConfigError(
            f"{config_path}: cannot serve the simulator on port {port} ({exc.strerror}): is "
            "another demo or `fahflow sim serve` running?"
        ) from None
    try:
        if isinstance(config.ws.ca, Path) and config.ws.ca.resolve() != sim.ca_path.resolve():
            raise ConfigError(f"{config_path}: ws.ca must be the simulator's CA {sim.ca_path}")
        ensure_identity(sim, config)
    except BaseException:
        sim.stop()
        raise
    console.print(f"simulated work server at {sim.url} with {len(sim.volunteer_pids)} volunteers")
    return sim


def run_batches(
    config_path: Path,
    config: FahflowConfig,
    sim: Simulator,
    finished: Callable[[], bool],
    profile: str = "fah",
    max_batches: int = 100,
) -> int:
    """``snakemake --profile PROFILE --configfile CONFIG`` batches until ``finished()`` (asked
    after each), waiting between two for a job on the simulated WS to change state; returns the
    last batch's exit status."""
    status = 0
    # --configfile: the batches read the demo's config, not the profile's config/config.yaml.
    batch = ["snakemake", "--profile", profile, "--configfile", str(config_path)]
    batch += ["--quiet", "rules"]
    for number in range(1, max_batches + 1):
        started = time.monotonic()
        console.rule(f"batch {number}")
        status = subprocess.run(batch).returncode
        print_status(config_path, console=console)
        console.print(f"batch {number}: exit {status}, {time.monotonic() - started:.1f} s")
        if finished():
            break
        _await_change(sim, config)
    return status


def _submit_examples(config_path: Path, config: FahflowConfig, examples: Sequence[str]) -> None:
    """Submit the examples to an empty queue; a queue with Tasks is the campaign carried on.

    Says so when it does not submit, since ``--example NAME`` after an earlier demo would
    otherwise seem to run NAME while it only finishes the earlier campaign.
    """
    held = task_rows(config)
    if held:
        console.print(
            f"the queue {config.tasks.local.path} already holds {len(held)} Task(s): carrying "
            f"on with them, not submitting {', '.join(examples)} (delete run/ and results/, "
            "or the config's ledger, queue and results_dir, to start afresh)"
        )
        return
    for name in examples:
        keys = submit_spec(config_path, example_path(name), None)
        console.print(f"submitted {len(keys)} Task(s) of the {name} example")


def _compare_with_references(rows: list[dict]) -> None:
    """What the bundled examples should give, next to what this run gave."""
    for row in rows:
        line = _reference_line(row)
        if line is not None:
            console.print(line)


def _reference_line(row: dict) -> str | None:
    """One line comparing a Transformation's estimate with what is known of its answer.

    A gufe Transformation has no exact answer, but its protocol has its own estimator: the
    protocol's gathered estimate beside fahflow's BAR on the same works shows that the two
    sides read the WUs alike.
    """
    if "protocol_Delta_f_kcal_per_mol" in row:
        return _protocol_line(row)
    if "Delta_f_kT" not in row:
        return None
    name, dg, sigma = row["transformation"], row["Delta_f_kT"], row["sigma_kT"]
    if name == "harmonic":
        exact = load_spec(example_path("harmonic")).exact_delta_f_kT()
        return (
            f"harmonic: ΔF = {dg:.2f} ± {sigma:.2f} kT; exact {exact:.3f} kT "
            f"({abs(dg - exact) / sigma:.1f} σ away)"
        )
    if name == "water":
        hyd, hyd_sigma = -row["Delta_f_kcal_per_mol"], row["sigma_kcal_per_mol"]
        return (
            f"water: the estimate is ΔG(decouple), so ΔG_hyd = {hyd:.2f} ± {hyd_sigma:.2f} "
            f"kcal/mol; TIP3P reference about -6.3 kcal/mol"
        )
    return None


def _protocol_line(row: dict) -> str:
    """``name: protocol (Class) ΔG = …; fahflow's BAR ΔG = … (n combined σ apart)``."""
    theirs, their_sigma = row["protocol_Delta_f_kcal_per_mol"], row["protocol_sigma_kcal_per_mol"]
    protocol = str(row.get("protocol", "the protocol")).rsplit(".", 1)[-1]
    line = (
        f"{row['transformation']}: {protocol}'s gathered ΔG = {theirs:.2f} ± {their_sigma:.2f} "
        "kcal/mol"
    )
    if "Delta_f_kcal_per_mol" not in row:
        return f"{line}; fahflow's BAR: {row.get('error', 'no estimate')}"
    ours, our_sigma = row["Delta_f_kcal_per_mol"], row["sigma_kcal_per_mol"]
    line += f"; fahflow's BAR ΔG = {ours:.2f} ± {our_sigma:.2f} kcal/mol"
    combined = math.hypot(their_sigma, our_sigma)
    if combined > 0:
        line += f" ({abs(theirs - ours) / combined:.1f} combined σ apart)"
    return line


def _await_change(sim: Simulator, config: FahflowConfig, timeout_s: float = 600) -> None:
    """Until the oldest job in flight finishes or fails on the WS (or nothing is in flight)."""
    flying = _in_flight(config)
    if flying:
        p, r, c = flying[0]
        try:
            sim.wait_for_job(p, r, c, ("FINISHED", "FAILED"), timeout=timeout_s)
        except TimeoutError as exc:
            logger.warning("%s", exc)
