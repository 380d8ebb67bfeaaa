"""Slow science check: ΔG_hyd of TIP3P water from the bundled example, through the simulator.

The full path a campaign takes: build the WU, stage its files as RUN files of a PROJECT on the
simulated work server, create one CLONE per WU of the Task, let two simulated volunteers run them
(``fahflow.sim``, emulating the FAH OpenMM core on the CPU), download each CLONE's results and
analyze every globals.csv with ``fahflow.analysis`` (BAR, whole-CLONE bootstrap).

The forward leg decouples the water, so the estimate is ΔG_decouple and ΔG_hyd = −ΔG_decouple.
Reference: TIP3P hydration free energy ≈ −6.3 kcal/mol. About 10 minutes on 2 cores::

    pytest -m slow tests/test_protocol_water.py -s
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fahflow.analysis.report import analyze_paths
from fahflow.protocol.build import build_work_unit
from fahflow.protocol.spec import example_path, load_spec
from fahflow.sim import SimConfig
from fahflow.ws.client import WorkServerClient
from fahflow.ws.models import ProjectData

TIP3P_HYDRATION_KCAL_PER_MOL = -6.3
PROJECT = 10001


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_water_hydration_free_energy_through_the_simulator(
    make_sim, make_identity, tmp_path: Path
) -> None:
    started = time.monotonic()
    spec = load_spec(example_path("water"))
    wu = build_work_unit(spec, tmp_path / "wu", seed=0)
    built = time.monotonic()

    sim = make_sim(volunteers=2, config=SimConfig(threads=1))
    identity = make_identity(sim)
    clones = range(spec.wus_per_task)
    results = tmp_path / "results"
    with WorkServerClient(sim.url, cert=identity.cert, verify=sim.ca_path) as ws:
        ws.put_project(
            PROJECT,
            ProjectData(
                core_id="0x23",
                contact="operator@example.org",
                runs=1,
                clones=len(clones),
                atoms=wu.n_atoms,
                credit=1,
            ),
        )
        for name, path in wu.files.items():
            ws.put_file(PROJECT, f"RUN0/{name}", path)
        for clone in clones:
            ws.create_clone(PROJECT, 0, clone)
        for clone in clones:
            sim.wait_for_job(PROJECT, 0, clone, timeout=3000)
            dest = results / f"PROJ{PROJECT}" / "RUN0" / f"CLONE{clone}" / "results0"
            list(ws.iter_gen_files(PROJECT, 0, clone, 0, dest))
    ran = time.monotonic()

    analysis = analyze_paths(
        [results], temperature_K=spec.temperature_K, cycles_per_wu=spec.cycles_per_wu
    )
    estimate = analysis.estimate
    dg_decouple, sigma = estimate.to_kcal_per_mol()
    dg_hyd = -dg_decouple
    print(
        f"\nwater: dG_hyd = {dg_hyd:.2f} +- {sigma:.2f} kcal/mol "
        f"({analysis.n_pairs} pairs from {analysis.n_work_units} WUs, {wu.n_atoms} atoms); "
        f"build {built - started:.0f} s, run {ran - built:.0f} s, "
        f"total {time.monotonic() - started:.0f} s"
    )
    w_F, w_R, groups = analysis.paired_works()
    pairs = zip(groups, w_F.round(2), w_R.round(2), strict=True)
    print("pairs (CLONE, w_F, w_R) in kT:", [(g, float(f), float(r)) for g, f, r in pairs])
    # every WU came back whole; at most two genuine heavy-tail pairs may be set aside as outliers
    assert analysis.status_counts.get("ok", 0) + analysis.status_counts.get("outlier", 0) == len(
        clones
    ), analysis.status_counts
    assert analysis.n_pairs >= spec.wus_per_task * spec.cycles_per_wu - 2
    assert sigma < 0.8
    assert abs(dg_hyd - TIP3P_HYDRATION_KCAL_PER_MOL) < 1.0
