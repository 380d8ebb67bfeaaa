"""What a batch costs when nothing has changed, against a plain-Python baseline doing the same.

    python benchmarks/batch_overhead.py [--tasks 1000 10000] [--repeat 3] [--new-tasks 1000]

For each campaign size N it sets up N Tasks in flight (ledger, local queue and one simulated work
server whose N jobs exist and are READY, no volunteers), runs one warm-up batch (the first poll of
a PROJECT lists every job), then times `snakemake --profile fah` batches that find nothing to do:
wall time and peak RSS of the largest process (Snakemake itself or one of its jobs). The baseline
is the same check in one Python process: read the ledger's actionable Tasks and poll each PROJECT
once (`jobs?since=`). Target: a no-op batch with 10,000 Tasks in flight under 5 s and 300 MB.

Then it times one batch that claims and stages ``--new-tasks`` new Tasks (harmonic example,
1 WU each): claim, serialize, stage and create, each Task its own rules.

Setup writes the ledger and queue rows with SQL (it is not what is measured); the simulated WS
jobs are created through the WS API.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SEND = [f"$home/RUN$run/{name}" for name in
        ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")]  # fmt: skip
PROJECT = 10001


def _identity(sim, directory: Path) -> tuple[Path, Path]:
    from fahflow.atomic import write_bytes
    from fahflow.ws import certs

    key = certs.create_key(directory / "operator.key")
    cert = write_bytes(directory / "operator.crt", sim.issue_certificate(
        certs.csr_pem(key, "operator@example.org")))  # fmt: skip
    return cert, key


def _config(wd: Path, sim, cert: Path, key: Path, claim_max: int) -> Path:
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    data["ws"].update(url=sim.url, as_url=None, cert=str(cert), key=str(key), ca=str(sim.ca_path),
                      data_dir=str(sim.root), send=SEND)  # fmt: skip
    data["tasks"]["claim_max"] = claim_max
    data["ledger"]["path"] = str(wd / "run" / "ledger.sqlite")
    data["tasks"]["local"]["path"] = str(wd / "run" / "queue.sqlite")
    path = wd / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def _in_flight(wd: Path, sim, cert: Path, key: Path, n: int) -> None:
    """N Tasks of one Transformation, one WU each, created on the WS and READY."""
    from fahflow.ledger import Ledger, now
    from fahflow.tasks import LocalQueue
    from fahflow.ws.client import WorkServerClient
    from fahflow.ws.models import ProjectData

    home = sim.project_home(PROJECT) / "RUN0"
    home.mkdir(parents=True, exist_ok=True)
    for template in SEND:
        (home / Path(template).name).write_bytes(b"placeholder: no volunteer runs it")
    with WorkServerClient(sim.url, cert=(str(cert), str(key)), verify=str(sim.ca_path),
                          create_form="run-count", timeout=(5, 600)) as ws:  # fmt: skip
        ws.put_project(PROJECT, ProjectData(core_id="0x23", contact="operator@example.org",
                                            atoms=100, credit=1))  # fmt: skip
        ws.create_clone(PROJECT, 0, n - 1)  # RUN-level {"clones": n}: jobs 0..n-1 at once
    queue = LocalQueue(wd / "run" / "queue.sqlite")
    keys = queue.submit("bench", "name: bench\n", n)
    queue.claim("fahflow-demo", n)
    queue.close()
    Ledger(wd / "run" / "ledger.sqlite").close()
    stamp = now()
    with sqlite3.connect(wd / "run" / "ledger.sqlite") as db:
        tf = "bench-0000000000"
        db.execute("INSERT INTO transformations (transformation_id, name, payload, project, run, "
                   "created_at) VALUES (?, 'bench', 'name: bench', ?, 0, ?)",
                   (tf, PROJECT, stamp))  # fmt: skip
        db.execute("INSERT INTO projects VALUES (?, 1, 1, NULL)", (PROJECT,))
        db.execute("INSERT INTO runs VALUES (?, 0, ?, ?)", (PROJECT, tf, n))
        db.executemany(
            "INSERT INTO tasks (task_id, source, source_key, transformation_id, n_wus, state, "
            "claimed_at, updated_at) VALUES (?, 'local', ?, ?, 1, 'created', ?, ?)",
            [(k, k, tf, stamp, stamp) for k in keys],
        )
        db.executemany(
            "INSERT INTO wus (project, run, clone, task_id, idx, state, updated_at, seen_at) "
            "VALUES (?, 0, ?, ?, 0, 'created', ?, ?)",  # as create confirms them: just seen
            [(PROJECT, i, k, stamp, stamp) for i, k in enumerate(keys)],
        )


def _measured(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall s, peak RSS MB of the largest descendant, exit status) of one command."""
    probe = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL).returncode; wall = time.perf_counter() - t;"
        "print(json.dumps([wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc]))"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=cwd, capture_output=True,
                         text=True, check=True)  # fmt: skip
    wall, rss_kb, rc = json.loads(out.stdout)
    return wall, rss_kb / 1024, rc


def _batch(wd: Path) -> tuple[float, float, int]:
    return _measured(["snakemake", "-s", str(REPO / "Snakefile"), "--profile",
                      str(REPO / "fah")], wd)  # fmt: skip


BASELINE = """
import sys, time
from datetime import datetime, timedelta
from fahflow.config import load_config
from fahflow.ledger import Ledger, actionable_tasks
from fahflow.ws.client import WorkServerClient
config = load_config(sys.argv[1])
actionable_tasks(config.ledger.path)
ws = config.ws
with Ledger(config.ledger.path) as ledger, WorkServerClient(
        ws.url, cert=(str(ws.cert), str(ws.key)), verify=str(ws.ca)) as client:
    for project in ledger.projects_in_flight():
        since = datetime.fromisoformat(ledger.poll_since(project)) - timedelta(seconds=60)
        changed = client.jobs_since(project, since).jobs
        in_flight = {(w.run, w.clone) for w in ledger.wus_in(project, ("created",))}
        [j for j in changed if (j.run, j.clone) in in_flight]
"""


def _baseline(wd: Path, config: Path) -> tuple[float, float, int]:
    return _measured([sys.executable, "-c", BASELINE, str(config)], wd)


def no_op(n: int, repeat: int) -> dict:
    from fahflow.sim import SimConfig, Simulator

    with tempfile.TemporaryDirectory(prefix=f"fahflow-bench-{n}-") as tmp:
        wd = Path(tmp)
        with Simulator(wd / "sim", volunteers=0, config=SimConfig(send=SEND)) as sim:
            cert, key = _identity(sim, wd)
            config = _config(wd, sim, cert, key, claim_max=10)
            t = time.perf_counter()
            _in_flight(wd, sim, cert, key, n)
            setup = time.perf_counter() - t
            warm = _batch(wd)  # first poll lists all N jobs
            assert warm[2] == 0, "warm-up batch failed"
            batches = [_batch(wd) for _ in range(repeat)]
            baselines = [_baseline(wd, config) for _ in range(repeat)]
    wall = statistics.median(b[0] for b in batches)
    base = statistics.median(b[0] for b in baselines)
    rss = max(b[1] for b in batches)
    base_rss = max(b[1] for b in baselines)
    return {"tasks": n, "setup_s": setup, "warmup_s": warm[0], "batch_s": wall, "batch_rss_mb": rss,
            "baseline_s": base, "baseline_rss_mb": base_rss, "ratio_time": wall / base,
            "ratio_rss": rss / base_rss}  # fmt: skip


def claim_and_stage(n: int) -> dict:
    from fahflow.campaign import submit_spec
    from fahflow.protocol.spec import example_path
    from fahflow.sim import SimConfig, Simulator

    spec = yaml.safe_load(example_path("harmonic").read_text())
    spec.update(wus_per_task=1, tasks=n)
    with tempfile.TemporaryDirectory(prefix="fahflow-bench-claim-") as tmp:
        wd = Path(tmp)
        (wd / "harmonic.yaml").write_text(yaml.safe_dump(spec))
        with Simulator(wd / "sim", volunteers=0, config=SimConfig(send=SEND)) as sim:
            cert, key = _identity(sim, wd)
            config = _config(wd, sim, cert, key, claim_max=n)
            submit_spec(config, wd / "harmonic.yaml", n)
            wall, rss, rc = _batch(wd)
            jobs = sum(sim.create_count(PROJECT, 0, c) for c in range(n))
    return {"new_tasks": n, "batch_s": wall, "per_task_s": wall / n, "batch_rss_mb": rss,
            "exit": rc, "jobs_created": jobs}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--new-tasks", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'in flight':>10} {'batch s':>8} {'RSS MB':>7} {'baseline s':>10} {'RSS MB':>7} "
          f"{'time x':>7} {'RSS x':>6} {'warm-up s':>9}")  # fmt: skip
    for n in args.tasks:
        r = no_op(n, args.repeat)
        print(f"{n:>10} {r['batch_s']:>8.2f} {r['batch_rss_mb']:>7.0f} {r['baseline_s']:>10.2f} "
              f"{r['baseline_rss_mb']:>7.0f} {r['ratio_time']:>7.1f} {r['ratio_rss']:>6.1f} "
              f"{r['warmup_s']:>9.1f}", flush=True)  # fmt: skip
    if args.new_tasks:
        r = claim_and_stage(args.new_tasks)
        print(
            f"claim + serialize + stage + create of {r['new_tasks']} new Tasks: "
            f"{r['batch_s']:.1f} s ({r['per_task_s'] * 1000:.0f} ms/Task), peak RSS "
            f"{r['batch_rss_mb']:.0f} MB, exit {r['exit']}, jobs created {r['jobs_created']}"
        )


if __name__ == "__main__":
    main()
