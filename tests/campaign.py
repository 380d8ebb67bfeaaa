"""A campaign for end-to-end tests: a working directory with config, ledger, queue and results,
and a simulator on loopback whose volunteers run the WUs (tests/test_workflow*.py).

``make_campaign`` (tests/conftest.py) builds one; batches are run as an operator would, and the
tests await job state changes in the simulator rather than sleeping.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fahflow.ledger import Ledger
from fahflow.protocol.spec import example_path
from fahflow.sim import SimConfig, Simulator
from fahflow.tasks import LocalQueue
from fahflow.ws.client import WorkServerClient

REPO = Path(__file__).resolve().parents[1]
SEND = [
    "$home/RUN$run/core.xml",
    "$home/RUN$run/system.xml.bz2",
    "$home/RUN$run/CLONE$clone/state.xml.bz2",
    "$home/RUN$run/CLONE$clone/integrator.xml.bz2",
]
HARMONIC = example_path("harmonic")
EXACT_KT = 4 * 1.5 * __import__("math").log(4.0)  # 4 oscillators, K 100 → 400


@dataclass
class Campaign:
    sim: Simulator
    wd: Path
    config_path: Path
    identity: object

    def batch(self, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess:
        """One `snakemake --profile fah` batch in the campaign's directory."""
        env = dict(os.environ)
        env.pop("FAHFLOW_FAILPOINT", None)
        if failpoint:
            env["FAHFLOW_FAILPOINT"] = failpoint
        return subprocess.run(
            ["snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "fah"), *args],
            cwd=self.wd, env=env, capture_output=True, text=True, timeout=600,
            start_new_session=True,  # its own process group: a failpoint kills only the batch
        )  # fmt: skip

    def cron(self) -> subprocess.CompletedProcess:
        """A batch the way cron runs it: lock, unlock stale Snakemake locks, timestamped log."""
        return subprocess.run(
            [str(REPO / "scripts" / "fah-cron")], cwd=self.wd, capture_output=True, text=True,
            timeout=600, env={**os.environ, "FAHFLOW_REPO": str(REPO)},
        )  # fmt: skip

    def fahflow(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "fahflow", *args, "--config", str(self.config_path)],
            cwd=self.wd, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def submit(self, n_tasks: int = 1, spec: Path = HARMONIC) -> list[str]:
        result = self.fahflow("submit", str(spec), "--tasks", str(n_tasks))
        assert result.returncode == 0, result.stderr
        return [line.strip() for line in result.stdout.splitlines()[1:]]

    def ledger(self) -> Ledger:
        return Ledger(self.wd / "run" / "ledger.sqlite")

    def queue_rows(self) -> list[sqlite3.Row]:
        queue = LocalQueue(self.wd / "run" / "queue.sqlite")
        try:
            return queue.rows()
        finally:
            queue.close()

    def await_jobs(self) -> None:
        """Until every WU in flight is FINISHED or FAILED on the simulated WS."""
        with self.ledger() as ledger:
            wus = [w for t in ledger.tasks() for w in ledger.wus(t.task_id)]
        for wu in wus:
            if wu.state in ("created", "restart_intent"):
                self.sim.wait_for_job(wu.project, wu.run, wu.clone, ("FINISHED", "FAILED"), 180)

    def run_to_completion(self, max_batches: int = 6) -> None:
        for _ in range(max_batches):
            if all(r["status"] in ("complete", "error") for r in self.queue_rows()):
                return
            result = self.batch()
            assert result.returncode == 0, result.stderr[-3000:]
            self.await_jobs()
        pytest.fail(f"not done after {max_batches} batches: {self.fahflow('status').stdout}")

    def ws_jobs(self) -> set[tuple[int, int, int]]:
        ident = self.identity
        with WorkServerClient(ident.url, cert=ident.cert, verify=str(ident.ca_path)) as ws:
            return {
                (j.project, j.run, j.clone)
                for p in ws.list_projects()
                for j in ws.jobs_since(p, None).jobs
            }

    def check_invariants(self) -> None:
        """Each Task has exactly its CLONEs, created once on the WS; each outcome pushed once."""
        with self.ledger() as ledger:
            tasks = ledger.tasks()
            ledger_jobs = set()
            for task in tasks:
                wus = ledger.wus(task.task_id)
                assert len(wus) == task.n_wus, task
                ledger_jobs |= {(w.project, w.run, w.clone) for w in wus}
        assert self.ws_jobs() == ledger_jobs
        for p, r, c in ledger_jobs:
            assert self.sim.create_count(p, r, c) == 1, (p, r, c)
        for row in self.queue_rows():
            if row["status"] in ("complete", "error"):
                assert row["pushes"] == 1, dict(row)


def campaign_factory(
    tmp_path: Path, make_sim: Callable[..., Simulator], make_identity: Callable
) -> Callable[..., Campaign]:
    """``factory(sim_config=None, volunteers=2, cert_days=30, **overrides) -> Campaign``: the
    ``make_campaign`` fixture of tests/conftest.py."""

    def factory(
        sim_config: SimConfig | None = None, volunteers: int = 2, cert_days: float = 30, **overrides
    ) -> Campaign:
        config = sim_config or SimConfig(send=SEND)
        sim = make_sim(volunteers=volunteers, config=config)
        identity = make_identity(sim, days=cert_days)
        wd = tmp_path / "campaign"
        (wd / "config").mkdir(parents=True)
        data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        data["ws"].update(
            url=sim.url, as_url=sim.url, ca=str(identity.ca_path), data_dir=str(sim.root),
            cert=str(identity.cert_path), key=str(identity.key_path), send=SEND, retries=8,
        )  # fmt: skip
        data["analysis"]["bootstrap"] = 200
        for section, values in overrides.items():
            data[section].update(values)
        config_path = wd / "config" / "config.yaml"
        config_path.write_text(yaml.safe_dump(data))
        return Campaign(sim, wd, config_path, identity)

    return factory
