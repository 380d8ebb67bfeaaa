"""Slow: fahflow runs a gufe Transformation to the same answer as gufe itself.

The bundled example's Transformation (benzene → toluene in water, feflow's NEC protocol), with
the same settings on both sides, is executed

* directly, by gufe's ``execute_DAG`` on this machine's CPU (feflow's own cycle units), and
* through fahflow: the local queue, ``snakemake --profile fah`` batches and the simulated WS,
  whose volunteers run each cycle as a WU with fahflow's emulated FAH core;

and the two estimates (``protocol.gather``: BAR, σ from feflow's bootstrap) must agree within 2
combined σ, each σ at most 0.5 kcal/mol. The sizes come from the environment so that a bigger
machine can run more: ``FAHFLOW_AGREEMENT_CYCLES`` (cycles = WUs of the one Task) and
``FAHFLOW_AGREEMENT_STEPS`` (steps per equilibrium and per nonequilibrium leg).

The defaults were measured on the 2-core machine (500-step legs, 2 ps each): 6 cycles gave
σ 0.27 kcal/mol directly; 8 cycles gave 0.40 (direct) and 0.32 (fahflow), close enough to the
bound that feflow's bootstrap over so few works could cross it on a bad draw. 12 cycles gave
-3.71 ± 0.28 (direct, 251 s) and -3.81 ± 0.21 kcal/mol (fahflow, 206 s): 7.7 minutes in all.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gufe, pytest.mark.slow]

CYCLES = int(os.environ.get("FAHFLOW_AGREEMENT_CYCLES", "12"))
LEG_STEPS = int(os.environ.get("FAHFLOW_AGREEMENT_STEPS", "500"))
WORK_FREQ = 100 if LEG_STEPS % 100 == 0 else LEG_STEPS
SIGMA_MAX_KCAL = 0.5  # issue 10: "enough cycles for σ ≤ 0.5 kcal/mol"
BIN = Path(sys.executable).parent  # sqm (AM1-BCC charges) lives beside the venv's python
# Both sides, 2 x CYCLES cycles of 4 x LEG_STEPS steps: about 50 s a cycle on 2 loaded cores.
TIMEOUT_S = 600 + int(CYCLES * LEG_STEPS * 0.25)


@pytest.fixture
def transformation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The example's Transformation at the test's size (feflow's protocol), and its JSON file."""
    from fahflow.kinds.gufe_example import FEFLOW_JSON, Cycles, transformations

    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    cycles = Cycles(num_cycles=CYCLES, eq_steps=LEG_STEPS, neq_steps=LEG_STEPS,
                    work_freq=WORK_FREQ)  # fmt: skip
    found = transformations(cycles)[FEFLOW_JSON]
    path = tmp_path / "transformation.json"
    found.to_json(path)
    return found, path


def _direct(transformation, where: Path) -> tuple[float, float]:
    """(ΔG, σ) in kcal/mol of the Transformation executed by gufe's own execute_DAG."""
    from gufe.protocols.protocoldag import execute_DAG

    where.mkdir()
    pdr = execute_DAG(transformation.create(), shared_basedir=where, scratch_basedir=where,
                      keep_shared=False, raise_error=True, n_retries=0)  # fmt: skip
    assert pdr.ok()
    result = transformation.protocol.gather([pdr])
    return (result.get_estimate().m_as("kilocalorie / mole"),
            result.get_uncertainty().m_as("kilocalorie / mole"))  # fmt: skip


def _through_fahflow(make_campaign, path: Path) -> tuple[float, float]:
    """(ΔG, σ) in kcal/mol of one Task of the Transformation run by fahflow to its stored PDR."""
    campaign = make_campaign(volunteers=2)
    assert len(campaign.submit(1, spec=path)) == 1
    campaign.run_to_completion(max_batches=6)
    (row,) = campaign.queue_rows()
    assert row["status"] == "complete", dict(row)
    campaign.check_invariants()
    protocol = json.loads(row["result_json"])["protocol"]
    assert protocol["ok"], protocol
    return protocol["Delta_f_kcal_per_mol"], protocol["sigma_kcal_per_mol"]


@pytest.mark.timeout(TIMEOUT_S)
def test_fahflow_and_execute_dag_agree_within_two_sigma(
    make_campaign, transformation, tmp_path: Path
) -> None:
    found, path = transformation
    started = time.perf_counter()
    direct = _direct(found, tmp_path / "direct")
    direct_s = time.perf_counter() - started
    fahflow = _through_fahflow(make_campaign, path)
    fahflow_s = time.perf_counter() - started - direct_s
    shutil.rmtree(tmp_path / "direct", ignore_errors=True)
    combined = math.hypot(direct[1], fahflow[1])
    report = (
        f"{CYCLES} cycles of {LEG_STEPS}+{LEG_STEPS} steps per leg: execute_DAG "
        f"{direct[0]:.3f} ± {direct[1]:.3f} kcal/mol ({direct_s:.0f} s), fahflow "
        f"{fahflow[0]:.3f} ± {fahflow[1]:.3f} kcal/mol ({fahflow_s:.0f} s)"
    )
    print(report)
    assert direct[1] <= SIGMA_MAX_KCAL and fahflow[1] <= SIGMA_MAX_KCAL, (
        f"{report}: a σ is over {SIGMA_MAX_KCAL} kcal/mol; raise FAHFLOW_AGREEMENT_CYCLES"
    )
    assert abs(direct[0] - fahflow[0]) <= 2 * combined, f"{report}: differ by more than 2σ"
