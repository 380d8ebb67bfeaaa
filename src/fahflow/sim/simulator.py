"""The :class:`Simulator`: a FAH work server + assignment server on 127.0.0.1, with volunteers.

Started from Python (tests, the embedded demo) or by ``fahflow sim serve``. All state is under
``root``: the CA (``ca/``), SQLite (``sim.sqlite``), the JSON log (``sim-log.jsonl``), project
files (``PROJ{p}/``) and volunteer logs (``volunteers/``). A new Simulator on the same root
carries on where the last one stopped.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from fahflow.sim.api import Api
from fahflow.sim.ca import CertificateAuthority
from fahflow.sim.config import SimConfig
from fahflow.sim.eventlog import EventLog
from fahflow.sim.faults import HttpFaults
from fahflow.sim.records import Job, JobState
from fahflow.sim.server import Limits, SimHTTPServer, server_context
from fahflow.sim.store import Store

logger = logging.getLogger("fahflow.sim")


class Simulator:
    """A running simulated WS + AS. Use as a context manager, or ``start()``/``stop()``.

    Parameters
    ----------
    root:
        State directory (created). Reused roots carry on: projects, jobs, CA and clock.
    port:
        TCP port on 127.0.0.1; 0 picks a free one (see :attr:`url`).
    volunteers:
        Number of volunteer processes that run WUs with OpenMM.
    config:
        Simulator config; ``None`` reads ``root/sim.yaml`` (or ``sim.xml``) or uses defaults.
    """

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        volunteers: int = 0,
        config: SimConfig | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.port = port
        self.n_volunteers = volunteers
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = config if config is not None else SimConfig.from_root(self.root)
        self.ca = CertificateAuthority.load_or_create(self.root / "ca")
        self.log = EventLog(self.root / "sim-log.jsonl")
        self.store = Store(
            self.root / "sim.sqlite",
            self.config.clock_scale,
            self.log,
            server_id=self.config.server_id,
        )
        self.api = Api(self.root, self.store, self.ca, self.config)
        self._server: SimHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._wake = threading.Event()
        self._stopped = threading.Event()

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> Simulator:
        context = server_context(self.ca.server_cert_path, self.ca.server_key_path, self.ca.ca_path)
        http_faults = HttpFaults(self.config.faults, self.config.seed)
        limits = Limits(
            max_body_bytes=self.config.max_body_bytes,
            socket_timeout_s=self.config.socket_timeout_s,
            header_timeout_s=self.config.header_timeout_s,
            body_timeout_s=self.config.body_timeout_s,
        )
        self._server = SimHTTPServer(
            ("127.0.0.1", self.port),
            context,
            self.api.dispatch,
            self.log,
            http_faults.draw,
            limits,
        )
        self.port = self._server.server_address[1]
        serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        reaper = threading.Thread(target=self._reap, daemon=True, name="sim-reaper")
        self._threads = [serve, reaper]
        for thread in self._threads:
            thread.start()
        self.log("sim.start", url=self.url, volunteers=self.n_volunteers, root=str(self.root))
        for i in range(self.n_volunteers):
            self._procs.append(self._spawn_volunteer(f"vol{i}"))
        return self

    def _spawn_volunteer(self, name: str) -> subprocess.Popen[bytes]:
        work = self.root / "volunteers" / name
        work.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "fahflow.sim.volunteer",
            "--url",
            self.url,
            "--ca",
            str(self.ca.ca_path),
            "--cert",
            str(self.ca.volunteer_cert_path),
            "--key",
            str(self.ca.volunteer_key_path),
            "--name",
            name,
            "--platform",
            self.config.platform,
            "--work-dir",
            str(work),
        ]
        if self.config.threads:
            cmd += ["--threads", str(self.config.threads)]
        with (work.parent / f"{name}.log").open("ab") as out:
            return subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _reap(self) -> None:
        """Reassign timed-out jobs; sleeps until the next deadline or until woken."""
        while not self._stopped.is_set():
            try:
                self.store.expire()
                deadline = self.store.next_deadline()
            except Exception:  # the store is closing
                if self._stopped.is_set():
                    return
                raise
            delay = 0.5
            if deadline is not None:
                delay = min(delay, self.store.clock.real_seconds(deadline - self.store.clock.now()))
            self._wake.wait(max(delay, 0.01))
            self._wake.clear()

    def stop(self) -> None:
        """Stop volunteers, the server and the reaper; save the clock. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._wake.set()
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.api.stopping = True
        with self.store.changed:
            self.store.changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.close()
        self.log("sim.stop")
        self.log.close()

    def __enter__(self) -> Simulator:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests and the demo use ------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.ca.ca_path

    @property
    def volunteer_pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.poll() is None]

    def issue_certificate(self, csr_pem: bytes, days: float = 30) -> bytes:
        """Sign an operator CSR (stands in for the AS web UI). ``days`` < 0: already expired."""
        pem = self.ca.issue(csr_pem, timedelta(days=days))
        self.log("ca.issued", days=days)
        return pem

    def project_home(self, project: int) -> Path:
        return self.api.project_home(project)

    def create_count(self, project: int, run: int, clone: int) -> int:
        """How many create calls reached this job (1 after a correct campaign)."""
        return self.store.create_count(project, run, clone)

    def job_reason(self, project: int, run: int, clone: int) -> str:
        """Why the job is in its state (e.g. the missing send files of a FAILED create)."""
        return self.store.job_reason(project, run, clone)

    def advance_clock(self, seconds: float) -> None:
        """Jump the simulated clock (timeouts) forward; timed-out jobs are reassigned at once."""
        self.store.advance_clock(seconds)
        self.store.expire()
        self._wake.set()

    def wait_for_job(
        self,
        project: int,
        run: int,
        clone: int,
        states: Iterable[str | JobState] = ("FINISHED",),
        timeout: float = 60,
    ) -> Job:
        """Block until the job is in one of ``states`` (awaits state changes, no polling).

        Raises ``TimeoutError`` naming the state it was left in.
        """
        wanted = {JobState(s) for s in states}
        found: list[Job] = []

        def reached() -> bool:
            try:
                found[:] = [self.store.get_job(project, run, clone)]
            except Exception:
                return False
            return found[0].state in wanted

        with self.store.changed:
            if not self.store.changed.wait_for(reached, timeout=timeout):
                state = found[0].state.value if found else "absent"
                raise TimeoutError(
                    f"job {project}:{run}:{clone} still {state} after {timeout} s "
                    f"(wanted {sorted(s.value for s in wanted)}); "
                    f"reason: {self.job_reason(project, run, clone)!r}"
                )
        return found[0]

    def status(self) -> dict[str, object]:
        """Job counts per state per project and busy volunteers (``fahflow sim status``)."""
        return {
            "url": self.url,
            "jobs": self.store.counts(),
            "busy": self.store.busy_volunteers(),
            "volunteers": len(self.volunteer_pids),
            "pid": os.getpid(),
        }
