"""End to end through the simulator: the team's WS client, volunteers running real tiny WUs.

Each test starts real volunteer processes (OpenMM on CPU); a tiny WU takes about a second.
Timeouts (project ``timeout`` ≥ 300 s) are reached with ``sim.advance_clock``, not by waiting.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fahflow.sim import FaultConfig, SimConfig, Simulator
from fahflow.sim.core import CoreXml
from fahflow.sim.faults import behaviour
from fahflow.sim.tinywu import make_tiny_wu
from fahflow.ws.client import WorkServerClient
from fahflow.ws.models import JobState, ProjectData

P, R = 1, 0
PROJECT = ProjectData(core_id="0x23", contact="operator@example.org", runs=2, clones=8)
FAST = {"threads": 1, "assign_wait_s": 0.5}


def client(identity, sim: Simulator) -> WorkServerClient:
    return WorkServerClient(
        sim.url, cert=identity.cert, verify=str(sim.ca_path), timeout=(5, 30), backoff_s=0.05
    )


def stage(ws: WorkServerClient, wu: Path, clones: list[int], run: int = R) -> None:
    """Project, RUN-level WU files (the default send list), then create the CLONEs."""
    ws.put_project(P, PROJECT)
    for path in sorted(wu.iterdir()):
        ws.put_file(P, f"RUN{run}/{path.name}", path)
    for clone in clones:
        ws.create_clone(P, run, clone)


def test_full_lifecycle(make_sim, make_identity, tiny_wu: Path, tmp_path: Path) -> None:
    sim = make_sim(volunteers=1, config=SimConfig(**FAST))
    with client(make_identity(sim), sim) as ws:
        stage(ws, tiny_wu, [0])
        job = sim.wait_for_job(P, R, 0, {"FINISHED"}, timeout=60)
        assert (job.state, job.gen, job.assigns, job.progress) == (JobState.FINISHED, 0, 1, 1.0)
        assert ws.get_job(P, R, 0).state is JobState.FINISHED
        assert [j.state for j in ws.jobs_since(P, None).jobs] == [JobState.FINISHED]
        names = {f.path for f in ws.list_gen_files(P, R, 0, 0)}
        assert {"globals.csv", "science.log", "checkpointState.xml.bz2"} <= names
        local = ws.get_gen_file(P, R, 0, 0, "globals.csv", tmp_path / "globals.csv")
    settings = CoreXml.from_xml(tiny_wu / "core.xml")
    table = pd.read_csv(local)
    assert list(table.columns[:3]) == ["Step", "Time", "lambda_restraint"]
    assert {"kT", "lambda", "protocol_work"} <= set(table.columns)
    assert len(table) == settings.numSteps // settings.globalVarFreq + 1
    assert table["Step"].iloc[-1] == settings.numSteps
    home = sim.project_home(P) / f"RUN{R}" / "CLONE0" / "results0" / "globals.csv"
    assert home.read_bytes() == local.read_bytes()
    assert sim.create_count(P, R, 0) == 1


def test_gens_continue_from_the_previous_state(make_sim, make_identity, tiny_wu: Path) -> None:
    sim = make_sim(volunteers=1, config=SimConfig(gens=2, **FAST))
    with client(make_identity(sim), sim) as ws:
        stage(ws, tiny_wu, [0])
        job = sim.wait_for_job(P, R, 0, {"FINISHED"}, timeout=90)
        assert (job.gen, job.assigns) == (1, 2)
    clone_dir = sim.project_home(P) / f"RUN{R}" / "CLONE0"
    first = pd.read_csv(clone_dir / "results0" / "globals.csv")
    second = pd.read_csv(clone_dir / "results1" / "globals.csv")
    assert second["Time"].iloc[0] == pytest.approx(first["Time"].iloc[-1])


def test_faulty_returns_fail_then_restart(make_sim, make_identity, tmp_path: Path) -> None:
    sim = make_sim(volunteers=1, config=SimConfig(max_retries=2, **FAST))
    broken = make_tiny_wu(tmp_path / "broken", num_steps=200, global_var_freq=50, timestep_fs=500)
    with client(make_identity(sim), sim) as ws:
        stage(ws, broken, [0])
        job = sim.wait_for_job(P, R, 0, {"FAILED"}, timeout=60)
        assert (job.retries, job.assigns) == (2, 2)
        assert "faulty return" in sim.job_reason(P, R, 0)
        good = make_tiny_wu(tmp_path / "good", num_steps=200, global_var_freq=50)
        for path in good.iterdir():
            ws.put_file(P, f"RUN{R}/{path.name}", path)
        ws.restart_job(P, R, 0)
        job = sim.wait_for_job(P, R, 0, {"FINISHED"}, timeout=60)
        assert job.assigns == 3


def test_injected_faulty_returns_reach_failed(make_sim, make_identity, tiny_wu: Path) -> None:
    faults = FaultConfig(faulty_return_rate=1.0)
    sim = make_sim(volunteers=1, config=SimConfig(max_retries=3, faults=faults, **FAST))
    with client(make_identity(sim), sim) as ws:
        stage(ws, tiny_wu, [0])
        assert sim.wait_for_job(P, R, 0, {"FAILED"}, timeout=30).retries == 3


def _seed_where_first_assignment_vanishes(rate: float) -> int:
    faults = FaultConfig(vanish_rate=rate)
    for seed in range(1000):
        fates = [behaviour(faults, seed, P, R, 0, 0, n).vanish for n in (1, 2)]
        if fates == [True, False]:
            return seed
    raise AssertionError("no such seed")


def test_vanished_volunteer_job_reassigned_after_timeout(
    make_sim, make_identity, tiny_wu: Path
) -> None:
    seed = _seed_where_first_assignment_vanishes(0.5)
    config = SimConfig(seed=seed, faults=FaultConfig(vanish_rate=0.5), **FAST)
    sim = make_sim(volunteers=1, config=config)
    with client(make_identity(sim), sim) as ws:
        stage(ws, tiny_wu, [0])
        sim.wait_for_job(P, R, 0, {"ASSIGNED"}, timeout=30)
        sim.advance_clock(PROJECT.timeout - 10)  # not yet
        assert ws.get_job(P, R, 0).state is JobState.ASSIGNED
        sim.advance_clock(20)
        job = sim.wait_for_job(P, R, 0, {"FINISHED"}, timeout=60)
        assert job.assigns == 2 and job.retries == 0


def test_simulator_restart_mid_job(make_sim, make_identity, sim_root: Path, tiny_wu: Path) -> None:
    slow = SimConfig(faults=FaultConfig(slow_s=120), **FAST)
    first = make_sim(volunteers=1, config=slow)
    identity = make_identity(first)
    with client(identity, first) as ws:
        stage(ws, tiny_wu, [0, 1])
    first.wait_for_job(P, R, 0, {"ASSIGNED"}, timeout=30)
    first.stop()  # the volunteer dies with its WU

    second = make_sim(volunteers=1, config=SimConfig(**FAST), root=sim_root)
    with client(identity, second) as ws:  # same CA, same operator certificate
        assert ws.get_job(P, R, 0).state is JobState.ASSIGNED
        second.wait_for_job(P, R, 1, {"FINISHED"}, timeout=60)  # READY work carries on
        second.advance_clock(PROJECT.timeout + 1)
        job = second.wait_for_job(P, R, 0, {"FINISHED"}, timeout=60)
        assert job.assigns == 2
        assert ws.get_project(P) == PROJECT


def test_duplicate_rows_fault_reaches_the_results(make_sim, make_identity, tiny_wu: Path) -> None:
    faults = FaultConfig(duplicate_rows_rate=1.0)
    sim = make_sim(volunteers=1, config=SimConfig(faults=faults, **FAST))
    with client(make_identity(sim), sim) as ws:
        stage(ws, tiny_wu, [0])
        sim.wait_for_job(P, R, 0, {"FINISHED"}, timeout=60)
    lines = (sim.project_home(P) / "RUN0" / "CLONE0" / "results0" / "globals.csv").read_text()
    assert lines.count("Step,Time") == 2


def test_http_faults_are_survived_by_the_client(make_sim, make_identity) -> None:
    faults = FaultConfig(http_503_rate=0.3, drop_rate=0.1)
    sim = make_sim(config=SimConfig(seed=3, faults=faults))
    with client(make_identity(sim), sim) as ws:
        ws.put_project(P, PROJECT)
        for _ in range(20):
            assert ws.get_project(P) == PROJECT
    statuses = [e["status"] for e in sim.log.read("api")]
    assert 503 in statuses and "drop" in statuses
