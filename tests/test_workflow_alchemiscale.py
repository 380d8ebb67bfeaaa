"""End to end as an alchemiscale compute service: a user's network on the stand-in (alchemiscale's
own apps, tests/test_standin.py), claimed and run by `snakemake --profile fah` batches through
alchemiscale's own compute client and the simulated WS, pushed back as ProtocolDAGResults and
gathered by the user with alchemiscale's own client.

One campaign carries every hazard in turn, because each Transformation's SetupUnit costs half a
minute: kill -9 at each step boundary (claim intent and answer, record, a setup, create, and
three points of the push), the registration expiring while WUs are in flight on FAH, and the API
unreachable for a batch. At the end every Task has exactly one result on the stand-in and every
CLONE was created once on the WS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.gufe

REPO = Path(__file__).resolve().parents[1]
SMALL = {"num_cycles": 2, "eq_steps": 500, "neq_steps": 500, "work_freq": 100}
SCOPE = "fahflow-test-benzene"
COMPUTE_ID, USER_ID = "fahflow-compute", "alice"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _key(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


class Served:
    """The stand-in, served (and stopped, and served again on the same ports)."""

    def __init__(self, root: Path) -> None:
        from fahflow.standin import Standin

        self.standin = Standin(root / "standin")
        self.standin.add_identity("compute", COMPUTE_ID, "compute-key-1", [SCOPE])
        self.standin.add_identity("user", USER_ID, "user-key-1", [SCOPE])
        self.compute_key = _key(root / "compute.key", "compute-key-1")
        self.user_key = _key(root / "user.key", "user-key-1")
        self._stack = contextlib.ExitStack()
        self.urls = self._stack.enter_context(self.standin.serve())

    def stop(self) -> None:
        self._stack.close()

    def user(self):
        from alchemiscale.interface.client import AlchemiscaleClient

        return AlchemiscaleClient(
            api_url=self.urls.interface, identifier=USER_ID, key="user-key-1",
            use_local_cache=False, max_retries=0,
        )  # fmt: skip

    def tasks_config(self, **alchemiscale) -> dict:
        settings = {
            "compute": {
                "url": self.urls.compute, "identifier": COMPUTE_ID,
                "key_file": str(self.compute_key),
            },
            "scopes": [SCOPE],
            "max_retries": 1, "retry_base_seconds": 1.5, "retry_max_seconds": 2.0,
            "call_timeout_s": 60,
            "check_pushes": {
                "url": self.urls.interface, "identifier": USER_ID, "key_file": str(self.user_key)
            },
        }  # fmt: skip
        settings.update(alchemiscale)
        return {"source": "alchemiscale", "claim_max": 8, "service_id": "fahflow_test",
                "alchemiscale": settings}  # fmt: skip


@pytest.fixture
def served(tmp_path: Path):
    served = Served(tmp_path)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from fahflow.kinds.gufe_example import Cycles, transformations

    return transformations(Cycles(**SMALL))


def _tight_box(small: dict):
    """A Transformation whose SetupUnit fails (0.2 nm of padding: box under twice the cutoff)."""
    import gufe
    from feflow.protocols import NonEquilibriumCyclingProtocol
    from openff.units import unit

    from fahflow.kinds.gufe_example import Cycles, cut_down, end_states

    settings = cut_down(NonEquilibriumCyclingProtocol.default_settings(), Cycles(**SMALL))
    settings.solvation_settings.solvent_padding = 0.2 * unit.nanometer
    state_a, state_b, mapping = end_states()
    protocol = NonEquilibriumCyclingProtocol(settings)
    return gufe.Transformation(state_a, state_b, protocol, mapping=mapping, name="tight")


def _backdate_source_heartbeat(campaign, seconds: float) -> None:
    """fahflow's own clock: its last recorded heartbeat, ``seconds`` older."""
    from fahflow.tasks.alchemiscale_ledger import SourceLedger

    ledger = SourceLedger(campaign.wd / "run" / "alchemiscale.sqlite")
    stamp = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
    with ledger._conn:
        ledger._conn.execute("UPDATE registration SET heartbeat_at = ?", (stamp,))
    ledger.close()


def _batch(campaign, *args: str, failpoint: str | None = None) -> tuple[int, str]:
    """One batch, its output in a file (a pipe could be held open by a stray child), and a
    bounded wait: on a hang the whole batch is killed and the processes it left are named."""
    env = {k: v for k, v in os.environ.items() if k != "FAHFLOW_FAILPOINT"}
    if failpoint:
        env["FAHFLOW_FAILPOINT"] = failpoint
    log = campaign.wd / "batch-output.log"
    command = ["snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "fah"), *args]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=campaign.wd, env=env, stdout=out, stderr=out, start_new_session=True
        )
        try:
            rc = process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            left = subprocess.run(["ps", "-o", "pid,stat,etime,args", "-g", str(process.pid)],
                                  capture_output=True, text=True).stdout  # fmt: skip
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"batch {args} {failpoint} hung; its processes:\n{left}")
    return rc, log.read_text()


def _killed(campaign, point: str, *args: str) -> None:
    rc, output = _batch(campaign, *args, failpoint=point)
    assert rc == -9, f"{point} was never reached:\n{output[-3000:]}"
    _batch(campaign, "--unlock")


def _done(served: Served) -> bool:
    return all(t["status"] in ("complete", "error") for t in served.standin.tasks())


def _batches_until_done(campaign, served: Served, max_batches: int = 8) -> None:
    for _ in range(max_batches):
        if _done(served):
            return
        rc, output = _batch(campaign)
        assert rc == 0, output[-3000:]
        campaign.await_jobs()
    pytest.fail(f"not done after {max_batches} batches: {served.standin.tasks()}")


def test_a_network_runs_to_gathered_estimates_through_kills_expiry_and_an_outage(
    make_campaign, served: Served, small: dict
) -> None:
    from fahflow.standin.user import gather, submit

    client = served.user()
    feflow, fah = small["benzene_toluene_feflow.json"], small["benzene_toluene_fah.json"]
    network = submit(client, [feflow, fah], SCOPE, tasks_per_transformation=2)
    # An extends chain on the feflow Transformation: claimable only once its first Task is
    # complete, then created with that Task's result as `extends`, as alchemiscale's own compute
    # service does (feflow's DAG ignores it: gufe swallows feflow's NotImplementedError).
    feflow_sk = next(
        sk for sk in network["tasks"] if "feflow" in str(client.get_transformation(sk).name)
    )
    first = network["tasks"][feflow_sk][0]
    (chained,) = client.create_tasks(feflow_sk, extends=first, count=1)
    client.action_tasks([chained], network["network"])
    # A Transformation whose setup fails, in a network of its own.
    tight = submit(client, [_tight_box(small)], SCOPE, tasks_per_transformation=1)
    (tight_task,) = next(iter(tight["tasks"].values()))

    campaign = make_campaign(tasks=served.tasks_config())
    for point in (
        "alchemiscale.claim.after_intent",  # claim sent? the next batch registers anew
        "alchemiscale.claim.after_answer",  # claimed, Transformations not fetched yet
        "claim.after_record",
        "serialize.after_build",  # setup ran, manifest not written
        "create.after_call",
    ):
        _killed(campaign, point)
    assert _batch(campaign)[0] == 0
    with campaign.ledger() as ledger:
        in_flight = {t.source_key for t in ledger.tasks()}
    assert str(chained) not in in_flight  # its first Task is not complete yet

    # The registration expires while WUs run on FAH (both clocks move on 2000 s).
    registered = set(served.standin.registrations())
    served.standin.backdate_heartbeats(2000)
    _backdate_source_heartbeat(campaign, 2000)
    assert _batch(campaign)[0] == 0
    assert set(served.standin.registrations()).isdisjoint(registered)  # a new one
    campaign.await_jobs()

    # The API is unreachable for a batch (both of its URLs lead nowhere): nothing claimed,
    # no push lost, the audit fails the batch saying so.
    config = campaign.config_path.read_text()
    nowhere = f"http://127.0.0.1:{_free_port()}"
    campaign.config_path.write_text(
        config.replace(served.urls.compute, nowhere).replace(served.urls.interface, nowhere)
    )
    assert _batch(campaign)[0] != 0
    audit = (campaign.wd / "logs" / "audit.log").read_text()
    assert "claim error" in audit and "cannot reach" in audit
    campaign.config_path.write_text(config)

    # Three kills inside the pushes, one Task at a time (one core): after the source recorded
    # the push, after the server took it (answer lost: settled through check_pushes), and
    # after the intent (never sent: check_pushes finds nothing, it is sent).
    for point in ("push.after_source_push", "alchemiscale.push.after_call",
                  "alchemiscale.push.after_intent"):  # fmt: skip
        _killed(campaign, point, "--cores", "1", "--local-cores", "1")
    _batches_until_done(campaign, served)

    tasks = {t["key"]: t for t in served.standin.tasks()}
    ok_tasks = [k for chain in network["tasks"].values() for k in map(str, chain)]
    for key in ok_tasks:
        assert (tasks[key]["status"], tasks[key]["n_results"], tasks[key]["n_failures"]) == (
            "complete", 1, 0
        ), tasks[key]  # fmt: skip
    # The chain ran in order: claimed after its first Task's result was pushed, and its result
    # names that result as the one it extends.
    assert (tasks[str(chained)]["status"], tasks[str(chained)]["n_results"]) == ("complete", 1)
    (extended,), (chained_pdr,) = (
        served.standin.results(str(first)),
        served.standin.results(str(chained)),
    )
    assert chained_pdr.extends_key == extended.key
    journal = sqlite3.connect(campaign.wd / "run" / "alchemiscale.sqlite")
    times = {
        k: (c, p)
        for k, c, p in journal.execute("SELECT key, claimed_at, push_started_at FROM claims")
    }
    journal.close()
    assert times[str(chained)][0] > times[str(first)][1]  # claimed after the push that completed it
    # The setup failure went back as a failed PDR with the unit's traceback: the Task errored.
    assert (tasks[str(tight_task)]["status"], tasks[str(tight_task)]["n_failures"]) == ("error", 1)
    (failed,) = served.standin.results(str(tight_task), ok=False)
    assert not failed.ok()
    assert any("cutoff" in f.traceback for f in failed.protocol_unit_failures)
    rows = {r["name"]: r for r in gather(client, network["network"])}
    assert sorted(r["n_results"] for r in rows.values()) == [2, 3]  # feflow: its chain too
    for row in rows.values():
        assert row["dG_kcal_per_mol"] is not None and row["dG_sigma_kcal_per_mol"] is not None
    # Nothing went to FAH twice: each CLONE created once, the re-claimed Tasks included.
    with campaign.ledger() as ledger:
        jobs = {(w.project, w.run, w.clone) for t in ledger.tasks() for w in ledger.wus(t.task_id)}
    assert campaign.ws_jobs() == jobs
    assert all(campaign.sim.create_count(*job) == 1 for job in jobs)
    status = campaign.fahflow("status")
    assert status.returncode == 0 and "WARNING" not in status.stdout, status.stdout


def test_wrong_credentials_stop_the_claim_with_a_clear_error(
    make_campaign, served: Served, tmp_path: Path
) -> None:
    wrong = _key(tmp_path / "wrong.key", "not-the-key")
    config = served.tasks_config()
    config["alchemiscale"]["compute"]["key_file"] = str(wrong)
    campaign = make_campaign(tasks=config)
    result = campaign.fahflow("batch", "claim", "--out", str(tmp_path / "claim.json"))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]  # after the stack's import warnings
    assert (
        line.startswith("fahflow: error: ")
        and "refused (401)" in line
        and COMPUTE_ID in line
        and "not-the-key" not in line
    )
    assert "Traceback" not in result.stderr
