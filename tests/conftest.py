"""Shared pytest fixtures: the FAH work-server simulator and an operator identity for it.

Other engineers' tests use these; names and behaviour stay stable.

``sim_root``
    A fresh directory (``tmp_path / "sim"``) for a simulator's state.
``make_sim``
    Factory ``make_sim(volunteers=0, config=None, root=None) -> Simulator``: starts a simulator
    (HTTPS on a free 127.0.0.1 port, client certificates required) on ``root`` (default
    ``sim_root``). Calling it again with the same ``root`` after ``sim.stop()`` restarts on the
    same state. Every simulator (and its volunteer processes) is stopped at teardown.
``sim``
    A started simulator with no volunteers and the default config.
``operator_identity``
    An RSA key and a certificate for ``operator@example.org`` issued by ``sim``'s CA, written
    0600 to a temporary directory. Attributes: ``cert_path``, ``key_path``, ``ca_path``, ``url``,
    ``email``, ``cert`` (the ``(cert_path, key_path)`` pair requests takes as ``cert=``) and
    ``session()`` (a ``requests.Session`` set up with them; ``trust_env`` is off because the
    ``REQUESTS_CA_BUNDLE`` set on these machines would silently replace ``session.verify``).
``make_identity``
    Factory ``make_identity(sim, email="operator@example.org", days=30) -> Identity`` for another
    operator or an already expired certificate (``days=-1``).
``make_csr``
    Factory ``make_csr(email) -> KeyAndCsr`` (``.key``, ``.key_pem``, ``.csr_pem``): a fresh
    RSA key and a CSR with CN = ``email``.
``run``
    ``run(*args) -> (exit_code, stdout, stderr)`` of the real ``fahflow`` entry point, with the
    ``FAHFLOW_*`` connection variables cleared and wide rich tables.
``tiny_wu``
    A directory holding a tiny real WU (``core.xml`` + ``system``/``state``/``integrator``
    ``.xml.bz2``; 125 atoms, 1000 steps, globals every 100 steps), fresh per test.

Tests marked ``gufe`` need the gufe stack (the ``gufe`` extra): without it they skip, all under one
summary line that says why. With ``FAHFLOW_REQUIRE_GUFE=1`` (``.ci/run`` sets it where the
wheelhouse is) a session in which a ``gufe`` test skipped, or none ran, fails.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from fahflow.atomic import write_bytes
from fahflow.sim import SimConfig, Simulator

TINY_WU_STEPS = 1000
TINY_WU_GLOBAL_FREQ = 100


@dataclass(frozen=True)
class Identity:
    """An operator's key and certificate, and where the simulator is."""

    email: str
    cert_path: Path
    key_path: Path
    ca_path: Path
    url: str

    @property
    def cert(self) -> tuple[str, str]:
        return (str(self.cert_path), str(self.key_path))

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE silently overrides session.verify
        session.cert, session.verify = self.cert, str(self.ca_path)
        return session


@dataclass(frozen=True)
class KeyAndCsr:
    key: rsa.RSAPrivateKey
    csr_pem: bytes

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )


def new_key_and_csr(email: str) -> KeyAndCsr:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email)]))
        .sign(key, hashes.SHA256())
    )
    return KeyAndCsr(key, csr.public_bytes(serialization.Encoding.PEM))


def _make_identity(sim: Simulator, directory: Path, email: str, days: float) -> Identity:
    pair = new_key_and_csr(email)
    pem = sim.issue_certificate(pair.csr_pem, days=days)
    key_path = write_bytes(directory / f"{email}.key", pair.key_pem, perms=0o600)
    cert_path = write_bytes(directory / f"{email}.pem", pem)
    return Identity(email, cert_path, key_path, sim.ca_path, sim.url)


@pytest.fixture
def make_csr() -> Callable[[str], KeyAndCsr]:
    return new_key_and_csr


@pytest.fixture
def sim_root(tmp_path: Path) -> Path:
    root = tmp_path / "sim"
    root.mkdir()
    return root


@pytest.fixture
def make_sim(sim_root: Path) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def factory(
        volunteers: int = 0, config: SimConfig | None = None, root: Path | None = None
    ) -> Simulator:
        simulator = Simulator(root or sim_root, port=0, volunteers=volunteers, config=config)
        started.append(simulator.start())
        return simulator

    yield factory
    for simulator in reversed(started):
        simulator.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Simulator]) -> Simulator:
    return make_sim()


@pytest.fixture
def make_identity(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Identity]:
    def factory(sim: Simulator, email: str = "operator@example.org", days: float = 30) -> Identity:
        return _make_identity(sim, tmp_path_factory.mktemp("identity"), email, days)

    return factory


@pytest.fixture
def operator_identity(sim: Simulator, make_identity: Callable[..., Identity]) -> Identity:
    return make_identity(sim)


@pytest.fixture(scope="session")
def _tiny_wu_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fahflow.sim.tinywu import make_tiny_wu

    return make_tiny_wu(
        tmp_path_factory.mktemp("tiny-wu"),
        num_steps=TINY_WU_STEPS,
        global_var_freq=TINY_WU_GLOBAL_FREQ,
    )


@pytest.fixture
def tiny_wu(_tiny_wu_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(_tiny_wu_template, tmp_path / "tiny-wu"))


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``run(*args) -> (exit_code, stdout, stderr)`` of the real console entry point."""
    from fahflow.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no wrapping in the assertions
    for name in ("FAHFLOW_WS_URL", "FAHFLOW_CERT", "FAHFLOW_KEY", "FAHFLOW_CA", "FAHFLOW_AS_URL"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


# --- the gufe stack: tests marked `gufe` need it --------------------------------------------------

GUFE_MODULES = ("gufe", "feflow")
REQUIRE_GUFE_ENV = "FAHFLOW_REQUIRE_GUFE"
_GUFE_MISSING = pytest.StashKey[str | None]()
_GUFE_FAILURE = pytest.StashKey[str]()


@dataclass
class _GufeTally:
    """How the session's ``gufe`` tests went (module state: one tally per pytest process)."""

    ran: int = 0
    skipped: int = 0
    reason: str | None = None


_gufe_tally = _GufeTally()


def _gufe_missing() -> str | None:
    """Why the gufe stack cannot be used here, or None: the first of its imports that fails
    (an install broken at import time counts as missing, and says how it broke)."""
    for name in GUFE_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:
            return f"import {name}: {type(exc).__name__}: {exc}"
    return None


def _put_venv_bin_on_path() -> None:
    """AM1-BCC charges run ``sqm`` from the venv's bin/; ``.venv/bin/pytest`` alone does not put
    it on PATH (scripts/test does), so do it here rather than fail deep inside a setup unit."""
    venv_bin = Path(sys.executable).parent
    if shutil.which("sqm") is None and (venv_bin / "sqm").exists():
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Import the stack once, only when a selected test is marked ``gufe``."""
    if not any(item.get_closest_marker("gufe") for item in items):
        return
    why = _gufe_missing()
    config.stash[_GUFE_MISSING] = why
    if why is None:
        _put_venv_bin_on_path()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a ``gufe`` test without the stack, from this one line, so that ``-ra`` sums every
    such skip up in one summary line with the reason."""
    why = item.config.stash.get(_GUFE_MISSING, None)
    if why is not None and item.get_closest_marker("gufe") is not None:
        pytest.skip(
            f"gufe stack not installed ({why}); scripts/bootstrap installs it from "
            "../shared/wheelhouse"
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the ``gufe`` tests that ran and those that skipped (for FAHFLOW_REQUIRE_GUFE)."""
    if "gufe" not in report.keywords:
        return
    if report.skipped:
        _gufe_tally.skipped += 1
        if _gufe_tally.reason is None and isinstance(report.longrepr, tuple):
            _gufe_tally.reason = report.longrepr[2]
    elif report.when == "call":
        _gufe_tally.ran += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With FAHFLOW_REQUIRE_GUFE=1, a session whose ``gufe`` tests did not all run fails: CI
    with the wheelhouse must not go green on a stack that silently was not installed."""
    if os.environ.get(REQUIRE_GUFE_ENV) != "1" or exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    if _gufe_tally.skipped:
        problem = f"{_gufe_tally.skipped} test(s) marked gufe skipped ({_gufe_tally.reason})"
    elif not _gufe_tally.ran:
        problem = "no test marked gufe ran (none selected, or all deselected)"
    else:
        return
    session.config.stash[_GUFE_FAILURE] = (
        f"{REQUIRE_GUFE_ENV}=1 (set by .ci/run where ../shared/wheelhouse exists) but {problem}: "
        "install the stack with scripts/bootstrap and run them"
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    message = terminalreporter.config.stash.get(_GUFE_FAILURE, None)
    if message is not None:
        terminalreporter.section("gufe stack required", sep="=", red=True, bold=True)
        terminalreporter.write_line(message, red=True)


@pytest.fixture
def make_campaign(
    tmp_path: Path, make_sim: Callable[..., Simulator], make_identity: Callable[..., Identity]
) -> Callable:
    """``make_campaign(sim_config=None, volunteers=2, cert_days=30, **config_overrides)``: a
    campaign directory and its simulator, for end-to-end tests (tests/campaign.py)."""
    from campaign import campaign_factory

    return campaign_factory(tmp_path, make_sim, make_identity)
