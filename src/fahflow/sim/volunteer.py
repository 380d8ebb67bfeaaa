"""A simulated FAH volunteer: asks the simulator for WUs, runs them with :func:`run_core`, returns.

Runs as its own process (``python -m fahflow.sim.volunteer``), started by the
:class:`~fahflow.sim.Simulator`. It talks to internal ``/sim/`` endpoints over the same mutual-TLS
HTTPS as the operator, with the simulator's volunteer certificate. What it does with a WU
(vanish, faulty return, slow, duplicate rows) is decided by the server from the seed and sent with
the assignment, so a rehearsal is reproducible however the processes are scheduled.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import os
import shutil
import sys
import tarfile
import threading
import time
from pathlib import Path

import requests

from fahflow.errors import FahflowError

logger = logging.getLogger("fahflow.sim.volunteer")
TIMEOUT = (5.0, 120.0)


def unpack(tar_bytes: bytes, wu_dir: Path) -> None:
    """Unpack a WU (plain files, ``.bz2`` ones stay compressed: the core reads both)."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        tar.extractall(wu_dir, filter="data")


def pack(out_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        for path in sorted(out_dir.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
    return buffer.getvalue()


class Volunteer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.session = requests.Session()
        self.session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
        self.session.cert = (args.cert, args.key)
        self.session.verify = args.ca
        self.work = Path(args.work_dir)
        self.parent = os.getppid()

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.post(f"{self.args.url}{path}", timeout=TIMEOUT, **kwargs)

    def run_forever(self) -> None:
        failures = 0
        while os.getppid() == self.parent:  # the simulator that started us is gone: stop
            try:
                answer = self.post("/sim/assign", json={"volunteer": self.args.name})
                if answer.status_code == 204:
                    failures = 0
                    continue
                answer.raise_for_status()
                failures = 0
                self.work_on(json.loads(answer.headers["X-Sim-Assignment"]), answer.content)
            except requests.RequestException as exc:
                failures += 1
                if failures > 20:
                    logger.error("server unreachable, giving up: %s", exc)
                    return
                logger.warning("server call failed (%s); retrying", exc)
                time.sleep(min(0.1 * failures, 1.0))  # server restarting: back off a little

    def work_on(self, header: dict, tar_bytes: bytes) -> None:
        from fahflow.sim.core import run_core  # OpenMM import only once there is work

        token, fate = header["token"], header["behaviour"]
        prcg = f"P{header['project']} R{header['run']} C{header['clone']} G{header['gen']}"
        logger.info("got %s %s", prcg, fate)
        if fate["vanish"]:
            logger.info("vanishing with %s", prcg)
            return
        wu_dir, out_dir = self.work / "wu", self.work / "out"
        for d in (wu_dir, out_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        try:
            unpack(tar_bytes, wu_dir)
            if fate["faulty"]:
                raise FahflowError("simulated faulty return (fault injection)")
            run_core(
                wu_dir,
                out_dir,
                self.args.platform,
                threads=self.args.threads,
                duplicate_rows=fate["duplicate_rows"],
            )
        except Exception as exc:  # whatever broke the WU, FAH sees a faulty return
            if not isinstance(exc, FahflowError | tarfile.TarError | OSError):
                logger.exception("unexpected error in %s", prcg)
            logger.info("faulty return of %s: %s", prcg, exc)
            self.post(f"/sim/fault/{token}", json={"reason": str(exc)[:500]})
            return
        if fate["slow_s"]:
            time.sleep(fate["slow_s"])  # a slow volunteer, by design
        answer = self.post(f"/sim/return/{token}", data=pack(out_dir))
        logger.info("returned %s: %s", prcg, answer.status_code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {args.name} %(levelname)s %(message)s"
    )
    # Import OpenMM while the first poll is in flight, so the first WU starts without that wait.
    threading.Thread(
        target=importlib.import_module, args=("fahflow.sim.core",), daemon=True
    ).start()
    try:
        Volunteer(args).run_forever()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
