"""The alchemiscale stand-in (``fahflow.standin``), driven by alchemiscale's own clients.

One stand-in is served per module; each test works in its own scope (``o-c-<test>``), so the
Tasks and TaskHubs of one test never reach another's claims. ProtocolDAGResults are made by hand
from a DAG of the example Transformation (no simulation): the result unit carries the works.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("feflow", reason="the gufe stack is not installed (pip install -e .[gufe])")
pytestmark = pytest.mark.gufe

import gufe  # noqa: E402
import numpy as np  # noqa: E402
from alchemiscale.compute.client import (  # noqa: E402
    AlchemiscaleComputeClient,
    AlchemiscaleComputeClientError,
)
from alchemiscale.interface.client import AlchemiscaleClient  # noqa: E402
from alchemiscale.models import Scope, ScopedKey  # noqa: E402
from alchemiscale.storage.models import ComputeServiceID  # noqa: E402
from gufe.protocols import (  # noqa: E402
    ProtocolDAGResult,
    ProtocolUnitFailure,
    ProtocolUnitResult,
)

from fahflow.standin import Standin  # noqa: E402
from fahflow.standin.user import gather, restart_errored, submit  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "fahflow" / "examples"
COMPUTE_KEY, USER_KEY = "compute-secret", "user-secret"
FEFLOW, FAH = "NonEquilibriumCyclingProtocol", "FahNonEquilibriumCyclingProtocol"


@pytest.fixture(scope="module")
def transformations() -> dict[str, gufe.Transformation]:
    return {
        name: gufe.Transformation.from_json(EXAMPLES / f"benzene_toluene_{name}.json")
        for name in ("feflow", "fah")
    }


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Standin:
    standin = Standin(tmp_path_factory.mktemp("standin"))
    standin.add_identity("compute", "fah", COMPUTE_KEY, ["o-*-*"])
    standin.add_identity("user", "me", USER_KEY, ["o-*-*"])
    return standin


@pytest.fixture(scope="module")
def urls(standin: Standin) -> Iterator[Any]:
    with standin.serve() as urls:
        yield urls


@pytest.fixture(scope="module")
def user(urls: Any) -> AlchemiscaleClient:
    return AlchemiscaleClient(urls.interface, "me", USER_KEY, use_local_cache=False, max_retries=0)


@pytest.fixture(scope="module")
def compute(urls: Any) -> AlchemiscaleComputeClient:
    return AlchemiscaleComputeClient(
        urls.compute, "fah", COMPUTE_KEY, use_local_cache=False, max_retries=0
    )


@pytest.fixture
def service(compute: AlchemiscaleComputeClient) -> Iterator[ComputeServiceID]:
    """A registered compute service, deregistered afterwards if still there."""
    csid = ComputeServiceID.new_from_name("fahflow")
    compute.register(csid)
    yield csid
    with contextlib.suppress(AlchemiscaleComputeClientError):  # expired by the test
        compute.deregister(csid)


def scope_for(request: pytest.FixtureRequest) -> str:
    return "o-c-" + "".join(ch for ch in request.node.name if ch.isalnum())[-40:]


def ok_pdr(transformation: gufe.Transformation, seed: int = 0, n: int = 8) -> ProtocolDAGResult:
    """An ok ProtocolDAGResult of ``transformation``'s DAG: every unit succeeded, the result unit
    holding ``n`` forward/reverse cumulative works (kT) around +10/−10 (ΔG about 10 kT)."""
    dag = transformation.create()
    rng = np.random.default_rng(seed)
    now = datetime.datetime.now(datetime.UTC)
    results = []
    for unit in dag.protocol_units:
        outputs: dict[str, Any] = {}
        if unit.name == "result":
            outputs = {
                "forward_work": [np.array([0.0, w]) for w in rng.normal(10.0, 1.0, n)],
                "reverse_work": [np.array([0.0, w]) for w in rng.normal(-10.0, 1.0, n)],
            }
        results.append(
            ProtocolUnitResult(
                name=unit.name,
                source_key=unit.key,
                inputs={},
                outputs=outputs,
                start_time=now,
                end_time=now,
            )
        )
    return ProtocolDAGResult(
        protocol_units=dag.protocol_units,
        protocol_unit_results=results,
        transformation_key=transformation.key,
    )


def failed_pdr(transformation: gufe.Transformation, why: str = "boom") -> ProtocolDAGResult:
    dag = transformation.create()
    unit = dag.protocol_units[0]
    now = datetime.datetime.now(datetime.UTC)
    failure = ProtocolUnitFailure(
        name=unit.name,
        source_key=unit.key,
        inputs={},
        outputs={},
        exception=("RuntimeError", (why,)),
        traceback=f"Traceback (most recent call last):\nRuntimeError: {why}",
        start_time=now,
        end_time=now,
    )
    return ProtocolDAGResult(
        protocol_units=dag.protocol_units,
        protocol_unit_results=[failure],
        transformation_key=transformation.key,
    )


def claim_all(
    compute: AlchemiscaleComputeClient, csid: ComputeServiceID, scope: str, count: int, **kw: Any
) -> list[ScopedKey | None] | None:
    return compute.claim_tasks([Scope.from_str(scope)], csid, count=count, **kw)


# -- auth -----------------------------------------------------------------------------------------


def test_wrong_key_is_401_from_token(urls: Any) -> None:
    client = AlchemiscaleComputeClient(
        urls.compute, "fah", "not-the-key", use_local_cache=False, max_retries=0
    )
    with pytest.raises(AlchemiscaleComputeClientError, match="401") as caught:
        client.list_scopes()
    assert caught.value.status_code == 401


def test_unknown_identity_is_500_from_token_as_alchemiscale(urls: Any) -> None:
    # alchemiscale's authenticate() does not catch the state store's KeyError
    client = AlchemiscaleComputeClient(
        urls.compute, "nobody", "x", use_local_cache=False, max_retries=0
    )
    with pytest.raises(AlchemiscaleComputeClientError) as caught:
        client.list_scopes()
    assert caught.value.status_code == 500


def test_scopes_listed_and_a_scope_outside_them_is_401(
    compute: AlchemiscaleComputeClient, service: ComputeServiceID
) -> None:
    assert compute.list_scopes() == [Scope.from_str("o-*-*")]
    elsewhere = ScopedKey.from_str("TaskHub-0123456789abcdef0123456789abcdef-x-c-p")
    with pytest.raises(AlchemiscaleComputeClientError) as caught:
        compute.claim_taskhub_tasks(elsewhere, service)
    assert caught.value.status_code == 401


# -- registrations --------------------------------------------------------------------------------


def test_register_heartbeat_deregister(
    standin: Standin, compute: AlchemiscaleComputeClient
) -> None:
    csid = ComputeServiceID.new_from_name("fahflow")
    assert compute.register(csid) == csid
    first = standin.registrations()[str(csid)]
    assert compute.heartbeat(csid) == csid
    assert standin.registrations()[str(csid)] > first
    assert compute.deregister(csid) == csid
    assert str(csid) not in standin.registrations()


def test_heartbeat_of_an_unknown_id_is_a_no_op(
    standin: Standin, compute: AlchemiscaleComputeClient
) -> None:
    ghost = ComputeServiceID.new_from_name("ghost")
    assert compute.heartbeat(ghost) == ghost
    assert str(ghost) not in standin.registrations()


def test_claim_by_an_unregistered_id_answers_500(compute: AlchemiscaleComputeClient) -> None:
    with pytest.raises(AlchemiscaleComputeClientError) as caught:
        compute.claim_tasks([Scope()], ComputeServiceID.new_from_name("ghost"), count=1)
    assert caught.value.status_code == 500


# -- claims ---------------------------------------------------------------------------------------


def test_claim_pads_with_none_honours_priority_and_protocols(
    request: pytest.FixtureRequest,
    standin: Standin,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    submitted = submit(user, list(transformations.values()), scope, 2)
    by_protocol = {
        standin.state.get_gufe(tf).protocol.__class__.__qualname__: tasks
        for tf, tasks in submitted["tasks"].items()
    }
    urgent = by_protocol[FEFLOW][1]
    assert user.set_tasks_priority([urgent], 1) == [urgent]
    assert user.get_tasks_status([urgent]) == ["waiting"]

    assert claim_all(compute, service, scope, 1) == [urgent]
    assert standin.task_status(str(urgent)) == "running"
    fah = claim_all(compute, service, scope, 3, protocols=[FAH])
    assert set(fah[:2]) == set(by_protocol[FAH]) and fah[2] is None
    assert claim_all(compute, service, scope, 3) == [by_protocol[FEFLOW][0], None, None]
    assert claim_all(compute, service, scope, 2) == [None, None]
    rows = {row["key"]: row for row in standin.tasks()}
    assert rows[str(urgent)]["claimed_by"] == str(service)


def test_taskhubs_query_and_transformation_routes(
    request: pytest.FixtureRequest,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    tf = transformations["feflow"]
    submitted = submit(user, tf, scope, 1)
    hubs = compute.query_taskhubs([Scope.from_str(scope)], return_gufe=True)
    (hub,) = hubs.values()
    assert hub.weight == 0.5 and hub.network == str(submitted["network"])
    (task,) = claim_all(compute, service, scope, 1)
    tf_sk = compute.get_task_transformation(task)
    assert tf_sk.gufe_key == tf.key
    assert user.get_task_transformation(task) == tf_sk
    got, extends = compute.retrieve_task_transformation(task)
    assert got.key == tf.key and extends is None


def test_too_many_failures_deny_the_claim(
    request: pytest.FixtureRequest,
    standin: Standin,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    tf = transformations["feflow"]
    submit(user, tf, scope, standin.settings.max_failures + 2)
    for _ in range(standin.settings.max_failures + 1):
        (task,) = claim_all(compute, service, scope, 1)
        compute.set_task_result(task, failed_pdr(tf), service)
    assert claim_all(compute, service, scope, 1) is None


# -- results --------------------------------------------------------------------------------------


def test_results_complete_fail_and_push_twice(
    request: pytest.FixtureRequest,
    standin: Standin,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    tf = transformations["feflow"]
    submit(user, tf, scope, 2)
    good, bad = claim_all(compute, service, scope, 2)

    pdr = ok_pdr(tf)
    ref = compute.set_task_result(good, pdr, service)
    assert ref.qualname == "ProtocolDAGResultRef"
    assert standin.task_status(str(good)) == "complete"
    assert [r.key for r in standin.results(str(good))] == [pdr.key]

    compute.set_task_result(bad, failed_pdr(tf, "the box trap"), service)
    assert standin.task_status(str(bad)) == "error"
    assert "the box trap" in standin.tracebacks(str(bad))[0][0]
    assert len(standin.state.registrations()[str(service)]["failure_times"]) == 1
    (failure,) = user.get_task_failures(bad, visualize=False)
    assert not failure.ok()

    # a second push makes a second ref (its key holds datetime_created), as alchemiscale's
    second = compute.set_task_result(good, pdr, service)
    assert second != ref
    assert len(user.get_task_results(good, visualize=False)) == 2
    assert len(user._get_resource(f"/tasks/{good}/results")) == 2
    row = {r["key"]: r for r in standin.tasks()}[str(good)]
    assert (row["status"], row["n_results"], row["claimed_by"]) == ("complete", 2, None)


def test_an_extending_task_waits_for_the_first_and_gets_its_result(
    request: pytest.FixtureRequest,
    standin: Standin,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    tf = transformations["fah"]
    submitted = submit(user, tf, scope, 2, extends_chain=True)
    first, second = next(iter(submitted["tasks"].values()))
    assert {r["key"]: r["extends"] for r in standin.tasks()}[str(second)] == str(first)

    assert claim_all(compute, service, scope, 2) == [first, None]
    assert claim_all(compute, service, scope, 1) == [None]
    pdr = ok_pdr(tf)
    compute.set_task_result(first, pdr, service)
    assert claim_all(compute, service, scope, 2) == [second, None]
    got, extends = compute.retrieve_task_transformation(second)
    assert got.key == tf.key
    assert extends.key == pdr.key and extends.ok()


def test_expired_registration_gives_its_running_tasks_back(
    request: pytest.FixtureRequest,
    standin: Standin,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    submit(user, transformations["feflow"], scope, 1)
    (task,) = claim_all(compute, service, scope, 1)
    standin.backdate_heartbeats(2000)
    other = ComputeServiceID.new_from_name("other")
    compute.heartbeat(other)  # any heartbeat runs the expiry
    assert str(service) not in standin.registrations()
    assert standin.task_status(str(task)) == "waiting"
    compute.register(other)
    assert claim_all(compute, other, scope, 1) == [task]
    compute.deregister(other)
    assert standin.task_status(str(task)) == "waiting"


def test_restart_errored_and_gather(
    request: pytest.FixtureRequest,
    standin: Standin,
    user: AlchemiscaleClient,
    compute: AlchemiscaleComputeClient,
    service: ComputeServiceID,
    transformations: dict[str, gufe.Transformation],
) -> None:
    scope = scope_for(request)
    feflow, fah = transformations["feflow"], transformations["fah"]
    submitted = submit(user, [feflow, fah], scope, 2)
    network = submitted["network"]
    tasks = {standin.state.get_gufe(k).key: v for k, v in submitted["tasks"].items()}

    for seed in range(2):
        (claimed,) = claim_all(compute, service, scope, 1, protocols=[FEFLOW])
        compute.set_task_result(claimed, ok_pdr(feflow, seed=seed), service)
    for _ in tasks[fah.key]:
        (claimed,) = claim_all(compute, service, scope, 1, protocols=[FAH])
        compute.set_task_result(claimed, failed_pdr(fah), service)

    rows = {row["name"]: row for row in gather(user, network)}
    done = rows[feflow.name]
    assert (done["n_results"], done["n_failures"]) == (2, 0)
    assert 4.0 < done["dG_kcal_per_mol"] < 8.0  # about 10 kT at 300 K
    assert 0 < done["dG_sigma_kcal_per_mol"] < 1.0
    failed = rows[fah.name]
    assert (failed["n_results"], failed["n_failures"], failed["dG_kcal_per_mol"]) == (0, 2, None)
    fah_sk = next(k for k in submitted["tasks"] if k.gufe_key == fah.key)
    assert user.get_transformation_results(fah_sk, visualize=False) is None
    assert len(user.get_transformation_failures(fah_sk, visualize=False)) == 2
    assert user.get_network_status(network) == {"complete": 2, "error": 2}

    restarted = restart_errored(user, network)
    assert sorted(restarted) == sorted(str(t) for t in tasks[fah.key])
    assert user.get_tasks_status(tasks[fah.key]) == ["waiting", "waiting"]
    assert restart_errored(user, network) == []
    # only error (or running) goes back to waiting; a complete Task stays complete
    assert user.set_tasks_status(tasks[feflow.key], "waiting") == [None, None]
    assert sorted(map(str, claim_all(compute, service, scope, 2))) == sorted(
        str(t) for t in tasks[fah.key]
    )


def test_unmodelled_store_methods_say_so(standin: Standin) -> None:
    with pytest.raises(NotImplementedError, match="stand-in: add_task_restart_patterns is not"):
        standin.state.add_task_restart_patterns(None, [], 1)


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_identity_key_file_is_private_and_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fahflow.cli import main

    root = tmp_path / "s"
    assert main(["standin", "identity", "add", "--root", str(root), "--user", "u", "--scope",
                 "o-c-p"]) == 0  # fmt: skip
    key_file = root / "keys" / "u.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() not in capsys.readouterr().out

    for argv, named in (
        (["submit", str(tmp_path / "missing.json"), "--scope", "o-c-p"], "missing.json"),
        (["submit", str(key_file), "--scope", "o-c-p"], "u.key"),
        (["submit", str(EXAMPLES / "benzene_toluene_fah.json"), "--scope", "o-*-p"], "--scope"),
        (["identity", "add", "--root", str(root), "--user", "v", "--scope", "bad"], "--scope"),
        (["gather", "not-a-key", "--url", "http://127.0.0.1:9"], "NETWORK"),
    ):
        assert main(["standin", *argv]) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert named in err[-1] and "Traceback" not in "\n".join(err), err


def test_cli_serve_writes_ready_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    root, ready = tmp_path / "s", tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fahflow", "standin", "serve", "--root", str(root),
         "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    try:
        printed = json.loads(proc.stdout.readline())
        assert json.loads(ready.read_text()) == printed
        import requests

        assert requests.get(printed["compute"] + "/ping", timeout=10).json() == {
            "api": "AlchemiscaleComputeAPI"
        }
        assert requests.get(printed["interface"] + "/ping", timeout=10).ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
