"""End to end: the real `snakemake --profile fah` against the simulator, with real OpenMM WUs.

Each test builds a campaign in a temporary working directory (config, ledger, queue, results),
with a simulator on loopback whose volunteers run the bundled harmonic example (exact ΔF known).
Batches are run as an operator would; between batches the tests await job state changes in the
simulator rather than sleeping.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from campaign import EXACT_KT, HARMONIC, REPO, SEND, Campaign

from fahflow.sim import SimConfig


def test_tasks_go_from_queue_to_pushed_free_energy(make_campaign) -> None:
    campaign = make_campaign()
    keys = campaign.submit(2)
    first = campaign.batch()
    assert first.returncode == 0, first.stderr[-3000:]
    with campaign.ledger() as ledger:
        assert {t.state for t in ledger.tasks()} == {"created"}
    campaign.await_jobs()
    second = campaign.batch()
    assert second.returncode == 0, second.stderr[-3000:]
    rows = {r["key"]: r for r in campaign.queue_rows()}
    assert set(rows) == set(keys)
    for row in rows.values():
        assert row["status"] == "complete", dict(row)
        result = json.loads(row["result_json"])
        assert len(result["works"]) == 4  # 2 WUs × 2 cycles
        # Exact answer within 4σ (σ from 4 pairs is rough: allow 1 kT more).
        assert abs(result["Delta_f_kT"] - EXACT_KT) < 4 * result["sigma_kT"] + 1.0
    campaign.check_invariants()
    results = campaign.fahflow("results", "--format", "json")
    assert results.returncode == 0, results.stderr
    (pooled,) = json.loads(results.stdout)
    assert pooled["tasks_done"] == 2 and pooled["n_cycles"] == 8


def test_a_batch_with_nothing_new_does_nothing(make_campaign) -> None:
    campaign = make_campaign()
    campaign.submit(1)
    campaign.run_to_completion()
    before = {p: p.stat().st_mtime_ns for p in (campaign.wd / "results").rglob("*")}
    idle = campaign.batch()
    assert idle.returncode == 0, idle.stderr[-3000:]
    for rule in ("serialize", "stage", "create", "collect", "analyze", "push"):
        assert f"rule {rule}:" not in idle.stderr
    after = {p: p.stat().st_mtime_ns for p in (campaign.wd / "results").rglob("*")}
    assert after == before
    campaign.check_invariants()


# --- kill -9 at every line that matters, then resume ---------------------------------------

# One mid-step point per step runs in the default suite; the other mid-step points and the step
# boundaries (`<step>.done`: the step finished, the next rule has not started) are marked slow
# (`scripts/test -m slow`), to keep the default suite within its time.
SLOW = pytest.mark.slow
BEFORE_JOBS_RUN = [
    "claim.after_source_claim",  # source handed Tasks out, ledger does not know them yet
    pytest.param("claim.after_record", marks=SLOW),
    "serialize.after_build",  # WU files written, manifest not yet
    pytest.param("stage.after_allocate", marks=SLOW),  # PRCG ids allocated, no file placed
    "stage.after_place",  # files placed, Task not marked staged
    pytest.param("stage.before_record", marks=SLOW),
    pytest.param("create.after_intent", marks=SLOW),  # intent committed, WS not called
    "create.after_call",  # job created on the WS, not confirmed in the ledger
    "create.before_record",  # Task created, record not written: by the rerun it may be finished
] + [pytest.param(f"{s}.done", marks=SLOW) for s in ("claim", "serialize", "stage", "create")]
AFTER_JOBS_RUN = [
    "poll.after_jobs",  # jobs?since= answered, nothing recorded
    pytest.param("poll.after_cursor", marks=SLOW),
    "collect.after_file",  # one result file copied
    "analyze.after_record",  # Task analyzed in the ledger, outcome file not written
    "push.after_source_push",  # the source has the result, the ledger does not know
    pytest.param("push.after_record", marks=SLOW),
] + [pytest.param(f"{s}.done", marks=SLOW) for s in ("poll", "collect", "analyze", "push")]


def _killed_then_resumed(campaign: Campaign, point: str) -> None:
    killed = campaign.batch(failpoint=point)
    assert killed.returncode == -9, f"{point} was never reached:\n{killed.stderr[-2000:]}"
    campaign.batch("--unlock")  # what scripts/fah-cron does before every batch
    campaign.run_to_completion()
    (row,) = campaign.queue_rows()
    assert row["status"] == "complete", dict(row)
    campaign.check_invariants()


@pytest.mark.parametrize("point", BEFORE_JOBS_RUN)
def test_kill_before_jobs_run_resumes_without_duplicates(make_campaign, point: str) -> None:
    campaign = make_campaign()
    campaign.submit(1)
    _killed_then_resumed(campaign, point)


@pytest.mark.parametrize("point", AFTER_JOBS_RUN)
def test_kill_after_jobs_ran_resumes_without_loss(make_campaign, point: str) -> None:
    campaign = make_campaign()
    campaign.submit(1)
    first = campaign.batch()
    assert first.returncode == 0, first.stderr[-3000:]
    campaign.await_jobs()
    _killed_then_resumed(campaign, point)


# --- failures, faults, overlap, bad input -------------------------------------------------


@pytest.mark.parametrize(
    "point",
    [
        None,
        pytest.param("poll.after_restart_intent", marks=SLOW),
        pytest.param("poll.after_restart_call", marks=SLOW),
    ],
)
def test_failed_wu_is_restarted_then_fails_the_task(make_campaign, point: str | None) -> None:
    faults = {"faulty_return_rate": 1.0}
    config = SimConfig(send=SEND, max_retries=1, faults=faults)
    campaign = make_campaign(config, batch={"max_restarts": 1})
    campaign.submit(1)
    assert campaign.batch().returncode == 0
    campaign.await_jobs()  # both WUs FAILED
    if point:
        assert campaign.batch(failpoint=point).returncode == -9
        campaign.batch("--unlock")
    assert campaign.batch().returncode == 0  # restarts each FAILED WU once
    with campaign.ledger() as ledger:
        (task,) = ledger.tasks()
        assert task.restarts == 2
    campaign.await_jobs()  # FAILED again
    campaign.run_to_completion()
    (row,) = campaign.queue_rows()
    assert row["status"] == "error"
    assert "FAILED on the work server after 1 restart(s)" in row["error"]
    with campaign.ledger() as ledger:
        (task,) = ledger.tasks()
        assert task.state == "failed" and task.restarts == 2
    campaign.check_invariants()


def test_simulator_faults_lose_no_work(make_campaign) -> None:
    """503s and dropped connections on API calls, vanished volunteers, duplicate CSV rows."""
    faults = {"http_503_rate": 0.2, "drop_rate": 0.05, "vanish_rate": 0.3,
              "duplicate_rows_rate": 1.0}  # fmt: skip
    campaign = make_campaign(SimConfig(send=SEND, seed=3, faults=faults))
    campaign.submit(2)
    for _ in range(8):
        if all(r["status"] in ("complete", "error") for r in campaign.queue_rows()):
            break
        result = campaign.batch()
        assert result.returncode in (0, 1), result.stderr[-3000:]  # a step may fail: retried
        # Vanished WUs come back after the project's timeout: jump the simulated clock past it.
        campaign.sim.advance_clock(86400 + 1)
        campaign.await_jobs()
    rows = campaign.queue_rows()
    assert [r["status"] for r in rows] == ["complete", "complete"], [dict(r) for r in rows]
    for row in rows:
        assert len(json.loads(row["result_json"])["works"]) == 4  # duplicates removed, none lost
    campaign.check_invariants()


def test_overlapping_batches_are_safe(make_campaign) -> None:
    campaign = make_campaign()
    campaign.submit(2)
    env = {**os.environ, "FAHFLOW_REPO": str(REPO)}
    cmd = [str(REPO / "scripts" / "fah-cron")]
    procs = [
        subprocess.Popen(cmd, cwd=campaign.wd, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 0]
    assert sum("skipped" in out for out in outputs) == 1, outputs
    # Two raw snakemake batches at once: the second is refused by Snakemake's lock, cleanly.
    both = [
        subprocess.Popen(
            ["snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "fah")],
            cwd=campaign.wd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [p.communicate(timeout=600)[0] for p in both]
    codes = sorted(p.returncode for p in both)
    assert codes[0] == 0, logs
    if codes[1] != 0:
        assert any("LockException" in log or "locked" in log for log in logs), logs
    campaign.await_jobs()
    campaign.run_to_completion()
    campaign.check_invariants()


def test_batch_renews_a_certificate_near_the_end_of_its_life(make_campaign) -> None:
    from fahflow.ws.certs import certificate_info

    campaign = make_campaign(cert_days=0.01, ws={"renew_below": 0.999})
    cert = Path(campaign.identity.cert_path)
    old = certificate_info(cert)
    result = campaign.batch()
    assert result.returncode == 0, result.stderr[-3000:]
    new = certificate_info(cert)
    assert new.serial != old.serial and new.not_after > old.not_after
    assert certificate_info(cert.with_name(cert.name + ".bak")).serial == old.serial


def test_bad_config_value_is_named(make_campaign) -> None:
    campaign = make_campaign()
    data = yaml.safe_load(campaign.config_path.read_text())
    data["ws"]["timeout_s"] = "fast"
    campaign.config_path.write_text(yaml.safe_dump(data))
    result = campaign.batch()
    assert result.returncode != 0
    assert "timeout_s" in result.stderr and "fast" in result.stderr


def test_bad_spec_is_refused_at_submit(make_campaign, tmp_path: Path) -> None:
    campaign = make_campaign()
    spec = yaml.safe_load(HARMONIC.read_text())
    spec["eq_steps"] = 260  # globalVarFreq 50 does not divide it
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    result = campaign.fahflow("submit", str(bad))
    assert result.returncode == 1
    assert str(bad) in result.stderr and "eq_steps" in result.stderr
    assert campaign.queue_rows() == []


def test_staging_through_the_ws_api(make_campaign) -> None:
    """fahflow not on the WS host: WU files uploaded and results downloaded over HTTPS."""
    campaign = make_campaign(ws={"staging": "api", "data_dir": None})
    campaign.submit(1)
    campaign.run_to_completion()
    (row,) = campaign.queue_rows()
    assert row["status"] == "complete", dict(row)
    campaign.check_invariants()
    status = campaign.fahflow("status", "--all")
    assert status.returncode == 0 and "1 done" in status.stdout


# --- what the outside test found (issue 8) -------------------------------------------------


def test_a_lost_create_answer_never_strands_its_task(make_campaign, make_sim) -> None:
    """A create whose answer is lost is confirmed by a later batch from the job it finds on the
    WS; if that job changed before the poll cursor, no jobs?since= reports it again. With no
    poll overlap the window is deterministic: Task B's first job finishes before the poll of the
    batch that confirms it. It must still be collected, not stay `created 1/2` for good."""
    campaign = make_campaign(volunteers=0, ws={"poll_overlap_s": 0})
    campaign.submit(1)  # Task A: created, in flight, so every batch polls the PROJECT
    assert campaign.batch().returncode == 0
    campaign.submit(1)  # Task B
    killed = campaign.batch(failpoint="create.after_call")  # B's first job made, answer lost
    assert killed.returncode == -9, killed.stderr[-2000:]
    campaign.batch("--unlock")
    # The WS runs the job while no batch runs: a restarted simulator, now with a volunteer.
    root, config = campaign.sim.root, campaign.sim.config
    campaign.sim.stop()
    campaign.sim = make_sim(volunteers=1, config=config, root=root)
    campaign.identity = dataclasses.replace(campaign.identity, url=campaign.sim.url)
    data = yaml.safe_load(campaign.config_path.read_text())
    data["ws"].update(url=campaign.sim.url, as_url=campaign.sim.url)
    campaign.config_path.write_text(yaml.safe_dump(data))
    with campaign.ledger() as ledger:
        lost = next(w for t in ledger.tasks() for w in ledger.wus(t.task_id)
                    if w.state == "create_intent")  # fmt: skip
    campaign.sim.wait_for_job(lost.project, lost.run, lost.clone, ("FINISHED",), 180)
    # This batch polls (the change is already behind it), then confirms the found job.
    assert campaign.batch().returncode == 0
    with campaign.ledger() as ledger:
        (wu,) = [w for w in ledger.wus(lost.task_id) if w.clone == lost.clone]
        assert wu.state == "created" and wu.seen_at is None  # confirmed, never seen by a poll
    campaign.await_jobs()
    campaign.run_to_completion()
    assert [r["status"] for r in campaign.queue_rows()] == ["complete", "complete"]
    campaign.check_invariants()
    status = campaign.fahflow("status")
    assert status.returncode == 0 and "WARNING" not in status.stdout, status.stdout


PER_CLONE_SEND = [  # alchemiscale-fah's deployment guide: every file per CLONE, core 0x26
    "$home/RUN$run/CLONE$clone/core.xml",
    "$home/RUN$run/CLONE$clone/system.xml.bz2",
    "$home/RUN$run/CLONE$clone/state.xml.bz2",
    "$home/RUN$run/CLONE$clone/integrator.xml.bz2",
]


def test_every_file_per_clone_as_alchemiscale_fah_deploys_it(make_campaign) -> None:
    campaign = make_campaign(SimConfig(send=PER_CLONE_SEND), ws={"send": PER_CLONE_SEND})
    data = yaml.safe_load(campaign.config_path.read_text())
    for project in data["projects"]:
        project["core_id"] = "0x26"
    campaign.config_path.write_text(yaml.safe_dump(data))
    campaign.submit(1)
    campaign.run_to_completion()
    (row,) = campaign.queue_rows()
    assert row["status"] == "complete", dict(row)
    campaign.check_invariants()
    with campaign.ledger() as ledger:
        wus = [w for t in ledger.tasks() for w in ledger.wus(t.task_id)]
    run_dir = campaign.sim.project_home(wus[0].project) / f"RUN{wus[0].run}"
    assert not (run_dir / "system.xml.bz2").exists()  # nothing at RUN level
    for wu in wus:
        names = {p.name for p in (run_dir / f"CLONE{wu.clone}").iterdir() if p.is_file()}
        assert {"core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2"} <= names


def test_a_task_no_project_fits_is_failed_with_the_reason(make_campaign) -> None:
    campaign = make_campaign()
    data = yaml.safe_load(campaign.config_path.read_text())
    data["projects"] = [p for p in data["projects"] if p["nonbonded_method"] == "PME"]
    campaign.config_path.write_text(yaml.safe_dump(data))
    campaign.submit(1)  # the harmonic example is a NoCutoff system
    assert campaign.batch().returncode == 0  # stage fails the Task instead of the batch
    assert campaign.batch().returncode == 0  # and the next batch pushes the failure
    (row,) = campaign.queue_rows()
    assert row["status"] == "error" and row["pushes"] == 1, dict(row)
    assert "no configured PROJECT fits a NoCutoff system" in row["error"]
    assert campaign.ws_jobs() == set()
