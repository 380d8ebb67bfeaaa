"""End to end with real gufe objects: a gufe Transformation from the local queue through
`snakemake --profile fah` batches and the simulated WS to a stored ProtocolDAGResult that its
protocol gathers, beside fahflow's own BAR.

The bundled example (benzene → toluene in water, 738 atoms) is built smaller here (2 cycles of
short legs) so that each WU runs in seconds on the simulated volunteers' CPUs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from campaign import Campaign

pytestmark = pytest.mark.gufe

SMALL = {"num_cycles": 2, "eq_steps": 500, "neq_steps": 500, "work_freq": 100}


@pytest.fixture(scope="module")
def small_examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both protocols' Transformations, as the JSON gufe writes; name → file."""
    from fahflow.kinds.gufe_example import Cycles, transformations

    folder = tmp_path_factory.mktemp("gufe")
    paths = {}
    for name, transformation in transformations(Cycles(**SMALL)).items():
        paths[name] = folder / name
        transformation.to_json(paths[name])
    return paths


def _run(campaign: Campaign, transformation: Path, n_tasks: int) -> list[dict]:
    keys = campaign.submit(n_tasks, spec=transformation)
    assert len(keys) == n_tasks
    campaign.run_to_completion(max_batches=8)
    rows = campaign.queue_rows()
    assert [r["status"] for r in rows] == ["complete"] * n_tasks, [dict(r) for r in rows]
    campaign.check_invariants()
    return [json.loads(r["result_json"]) for r in rows]


def _stored_dags_match_results(campaign: Campaign) -> None:
    """The DAG created at claim is the one whose units ran: same unit keys, never re-created."""
    import gufe

    with campaign.ledger() as ledger:
        tasks = ledger.tasks()
        dags = {t.task_id: ledger.task_dag(t.task_id) for t in tasks}
    for task_id, dag_json in dags.items():
        dag = gufe.ProtocolDAG.from_json(content=dag_json)
        stored = campaign.wd / "results" / "tasks" / task_id / "protocol_dag_result.json"
        pdr = gufe.ProtocolDAGResult.from_json(file=stored)
        assert pdr.ok()
        assert {u.key for u in dag.protocol_units} == {
            r.source_key for r in pdr.protocol_unit_results
        }


@pytest.mark.parametrize(
    "name",
    [
        "benzene_toluene_feflow.json",
        # alchemiscale-fah's protocol runs end to end in tests/test_workflow_alchemiscale.py
        pytest.param("benzene_toluene_fah.json", marks=pytest.mark.slow),
    ],
)
def test_a_gufe_transformation_runs_to_a_gathered_estimate(make_campaign, small_examples, name):
    campaign = make_campaign()
    outcomes = _run(campaign, small_examples[name], n_tasks=2)
    for outcome in outcomes:
        protocol = outcome["protocol"]
        assert protocol["ok"] and (campaign.wd / protocol["protocol_dag_result"]).is_file()
        assert len(outcome["works"]) == SMALL["num_cycles"]  # fahflow's BAR on the same works
        # Both are BAR on the same works: the protocol's estimate and fahflow's agree.
        assert protocol["Delta_f_kcal_per_mol"] == pytest.approx(outcome["Delta_f_kcal_per_mol"])
    _stored_dags_match_results(campaign)
    results = campaign.fahflow("results", "--format", "json")
    assert results.returncode == 0, results.stderr
    (row,) = json.loads(results.stdout)
    assert row["protocol_Delta_f_kcal_per_mol"] is not None and "Delta_f_kcal_per_mol" in row


@pytest.mark.parametrize(
    "point",
    [
        # setup ran, manifest not written: also in tests/test_workflow_alchemiscale.py
        pytest.param("serialize.after_build", marks=pytest.mark.slow),
        pytest.param("create.after_call", marks=pytest.mark.slow),
        "analyze.after_record",  # PDR stored and Task analyzed, outcome file not written
        pytest.param("push.after_source_push", marks=pytest.mark.slow),
    ],
)
def test_a_killed_gufe_batch_resumes_with_the_same_dag(make_campaign, small_examples, point):
    campaign = make_campaign()
    campaign.submit(1, spec=small_examples["benzene_toluene_feflow.json"])
    if point.startswith(("analyze", "push")):
        assert campaign.batch().returncode == 0
        campaign.await_jobs()
    killed = campaign.batch(failpoint=point)
    assert killed.returncode == -9, f"{point} was never reached:\n{killed.stderr[-2000:]}"
    campaign.batch("--unlock")
    campaign.run_to_completion(max_batches=8)
    (row,) = campaign.queue_rows()
    assert row["status"] == "complete" and row["pushes"] == 1, dict(row)
    campaign.check_invariants()
    _stored_dags_match_results(campaign)


def test_an_unsupported_protocol_is_refused_at_submit(make_campaign, tmp_path: Path) -> None:
    import gufe
    from openfe.protocols.openmm_rfe import RelativeHybridTopologyProtocol

    from fahflow.kinds.gufe_example import end_states

    state_a, state_b, mapping = end_states()
    protocol = RelativeHybridTopologyProtocol(RelativeHybridTopologyProtocol.default_settings())
    path = tmp_path / "rhfe.json"
    gufe.Transformation(state_a, state_b, protocol, mapping=mapping, name="rhfe").to_json(path)
    campaign = make_campaign()
    result = campaign.fahflow("submit", str(path))
    assert result.returncode == 1
    assert "RelativeHybridTopologyProtocol" in result.stderr and "Traceback" not in result.stderr
    assert campaign.queue_rows() == []


def test_a_failing_setup_fails_its_tasks_with_the_traceback_in_their_pdr(
    make_campaign, tmp_path: Path
) -> None:
    """DESIGN's box trap: 0.2 nm of padding leaves a box under twice the 0.9 nm cutoff, so the
    setup unit fails in serialize. Each Task then fails (not the batch) and is pushed with the
    reason, and its own ProtocolDAGResult holds the unit's failure and traceback."""
    import gufe
    from feflow.protocols import NonEquilibriumCyclingProtocol
    from openff.units import unit

    from fahflow.kinds.gufe_example import Cycles, cut_down, end_states

    settings = cut_down(NonEquilibriumCyclingProtocol.default_settings(), Cycles(**SMALL))
    settings.solvation_settings.solvent_padding = 0.2 * unit.nanometer
    protocol = NonEquilibriumCyclingProtocol(settings)
    state_a, state_b, mapping = end_states()
    path = tmp_path / "tight_box.json"
    gufe.Transformation(state_a, state_b, protocol, mapping=mapping, name="tight").to_json(path)
    campaign = make_campaign()
    campaign.submit(2, spec=path)
    assert campaign.batch().returncode == 0  # serialize records the failure; stage fails Tasks
    assert campaign.batch().returncode == 0  # the next batch pushes them
    rows = campaign.queue_rows()
    assert [(r["status"], r["pushes"]) for r in rows] == [("error", 1), ("error", 1)]
    for row in rows:
        assert "setup failed" in row["error"] and "cutoff distance" in row["error"]
    assert campaign.ws_jobs() == set()  # nothing was staged or created
    with campaign.ledger() as ledger:
        task_ids = [t.task_id for t in ledger.tasks()]
    for task_id in task_ids:
        pdr = gufe.ProtocolDAGResult.from_json(
            file=campaign.wd / "results" / "tasks" / task_id / "protocol_dag_result.json"
        )
        assert not pdr.ok()
        (failure,) = pdr.protocol_unit_failures
        assert "cutoff distance" in str(failure.exception) and failure.traceback
