"""The alchemiscale Task source against a scripted compute client: registration and heartbeat,
claims, pushes exactly once, lost answers, credentials and the bound on a blocked call.

The same source runs against alchemiscale's real client and the stand-in in
tests/test_workflow_alchemiscale.py; here every failure is scripted, so each path is certain.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gufe

alchemiscale = pytest.importorskip("alchemiscale.compute.client")

from alchemiscale.base.client import AlchemiscaleConnectionError  # noqa: E402
from alchemiscale.compute.client import AlchemiscaleComputeClientError  # noqa: E402
from alchemiscale.models import ScopedKey  # noqa: E402

from fahflow.config import AlchemiscaleSettings  # noqa: E402
from fahflow.errors import ConfigError, OutcomeUnknown, TransientError  # noqa: E402
from fahflow.outcome import Outcome  # noqa: E402
from fahflow.tasks.alchemiscale import AlchemiscaleSource, ApiTimeout  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "src/fahflow/examples/benzene_toluene_feflow.json"
TASK = "Task-0123456789abcdef0123456789abcdef-org-campaign-project"
SECRET = "s3cret-key-never-shown"


def _refused() -> AlchemiscaleConnectionError:
    """What the client raises when nothing listens (the request never left)."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(None, "Connection refused")
    return AlchemiscaleConnectionError(MaxRetryError(None, "/", reason))


class FakeClient:
    """alchemiscale's compute client, scripted: ``script[method]`` is a list of results or
    exceptions used in order (the last one repeats); every call is recorded."""

    def __init__(self, calls: list, script: dict[str, list], **settings: Any) -> None:
        self.calls, self.script, self.settings = calls, script, settings

    def _do(self, name: str, *args: Any) -> Any:
        self.calls.append((name, self.settings["max_retries"], *args))
        steps = self.script.get(name, [None])
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, BaseException):
            raise step
        return step(*args) if callable(step) else step

    def register(self, sid: Any) -> Any:
        return self._do("register", str(sid))

    def deregister(self, sid: Any) -> Any:
        return self._do("deregister", str(sid))

    def heartbeat(self, sid: Any) -> Any:
        return self._do("heartbeat", str(sid))

    def claim_tasks(self, **kw: Any) -> Any:
        return self._do("claim", kw["count"], tuple(kw["protocols"]))

    def retrieve_task_transformation(self, task: Any) -> Any:
        return self._do("retrieve", str(task))

    def set_task_result(self, task: Any, pdr: Any, sid: Any) -> Any:
        return self._do("push", str(task), pdr)


@pytest.fixture
def transformation():
    import gufe

    return gufe.Transformation.from_json(EXAMPLE)


@pytest.fixture
def make_source(tmp_path: Path, transformation, monkeypatch):
    monkeypatch.setenv("ALCHEMISCALE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ALCHEMISCALE_ID", "fahflow-compute")
    monkeypatch.setenv("ALCHEMISCALE_KEY", SECRET)
    calls: list = []
    script: dict[str, list] = {
        "claim": [[ScopedKey.from_str(TASK), None]],
        "retrieve": [(transformation, None)],
        "push": [ScopedKey.from_str(TASK.replace("Task-", "ProtocolDAGResultRef-"))],
    }

    def make(**settings: Any) -> AlchemiscaleSource:
        config = AlchemiscaleSettings(state=tmp_path / "alchemiscale.sqlite", **settings)

        def factory(**kw: Any) -> FakeClient:
            return FakeClient(calls, script, **kw)

        return AlchemiscaleSource(config, "fahflow", client_factory=factory)

    make.calls, make.script = calls, script
    return make


def _names(calls: list) -> list[str]:
    return [c[0] for c in calls]


def test_one_registration_kept_across_batches_and_a_heartbeat_in_each(make_source):
    first = make_source()
    (task,) = first.claim("fahflow", 2)
    sid = first.ledger.registration().service_id
    assert sid.startswith("fahflow-") and task.key == TASK and task.kind == "gufe"
    first.close()
    second = make_source()
    assert second.claim("fahflow", 0) == []  # claim_max 0 still beats
    assert second.ledger.registration().service_id == sid
    assert _names(make_source.calls) == ["register", "claim", "retrieve", "heartbeat"]
    # Claims and registrations are sent once (no client retries); the heartbeat is retried.
    retries = {c[0]: c[1] for c in make_source.calls}
    assert retries == {"register": 0, "claim": 0, "retrieve": 2, "heartbeat": 2}


def test_a_stale_heartbeat_means_a_new_registration_and_a_reclaimed_task_is_the_same(
    make_source, caplog
):
    source = make_source()
    source.claim("fahflow", 1)
    old = source.ledger.registration().service_id
    stale = (datetime.now(UTC) - timedelta(seconds=1900)).isoformat()
    source.ledger._conn.execute("UPDATE registration SET heartbeat_at = ?", (stale,))
    source.close()
    again = make_source()
    with caplog.at_level(logging.WARNING):
        assert [t.key for t in again.claim("fahflow", 1)] == [TASK]
    new = again.ledger.registration().service_id
    assert new != old
    assert "registered again" in caplog.text and "1900 s ago" in caplog.text
    assert _names(make_source.calls)[-4:] == ["heartbeat", "deregister", "register", "claim"]
    assert [r["service_id"] for r in again.ledger.past_registrations()] == [old]
    # The Task handed back is the same Task: same key, same ledger id, fetched only once.
    assert _names(make_source.calls).count("retrieve") == 1


def test_a_lost_claim_answer_replaces_the_registration_a_refused_one_does_not(make_source):
    make_source.script["claim"] = [AlchemiscaleConnectionError("reset"), _refused(), []]
    source = make_source()
    with pytest.raises(TransientError, match="cannot reach"):
        source.claim("fahflow", 1)
    first = source.ledger.registration()
    assert first.claim_started_at is not None
    source.close()
    source = make_source()  # next batch: the lost answer may hold Tasks → new registration
    with pytest.raises(TransientError):
        source.claim("fahflow", 1)  # refused: never sent, nothing held
    second = source.ledger.registration()
    assert second.service_id != first.service_id and second.claim_started_at is None
    source.close()
    source = make_source()
    assert source.claim("fahflow", 1) == []
    assert source.ledger.registration().service_id == second.service_id


@pytest.mark.parametrize("answer", [None, [None, None]])
def test_a_denied_or_empty_claim_is_no_tasks(make_source, answer, caplog):
    make_source.script["claim"] = [answer]
    source = make_source()
    with caplog.at_level(logging.WARNING):
        assert source.claim("fahflow", 2) == []
    assert ("denied" in caplog.text) == (answer is None)
    assert source.ledger.registration().claim_started_at is None


def test_claims_ask_for_the_protocols_fahflow_runs_only(make_source):
    make_source().claim("fahflow", 3)
    claim = next(c for c in make_source.calls if c[0] == "claim")
    assert claim[2:] == (3, ("NonEquilibriumCyclingProtocol", "FahNonEquilibriumCyclingProtocol"))
    with pytest.raises(ConfigError, match="RelativeHybridTopologyProtocol not run by fahflow"):
        make_source(protocols=["RelativeHybridTopologyProtocol"])


def test_a_failure_is_pushed_once_as_a_failed_pdr_saying_why(make_source):
    source = make_source()
    source.claim("fahflow", 1)
    assert source.push(TASK, Outcome.failure("no PROJECT fits its 738 atoms"))
    assert not source.push(TASK, Outcome.failure("again"))
    assert source.has_outcome(TASK)
    (push,) = [c for c in make_source.calls if c[0] == "push"]
    pdr = push[3]
    assert not pdr.ok()
    (failure,) = pdr.protocol_unit_failures
    assert "no PROJECT fits its 738 atoms" in failure.traceback
    assert pdr.name == TASK  # the DAG is named by the Task, as alchemiscale's services do


def test_a_push_whose_answer_was_lost_is_held_then_settled(make_source):
    make_source.script["push"] = [
        AlchemiscaleConnectionError("connection reset"),
        ScopedKey.from_str(TASK.replace("Task-", "ProtocolDAGResultRef-")),
    ]
    source = make_source()
    source.claim("fahflow", 1)
    with pytest.raises(OutcomeUnknown, match="connection reset"):
        source.push(TASK, Outcome.failure("x"))
    source.close()
    source = make_source()  # the next batch
    with pytest.raises(OutcomeUnknown, match="settle"):
        source.has_outcome(TASK)
    with pytest.raises(OutcomeUnknown):
        source.push(TASK, Outcome.failure("x"))
    assert _names(make_source.calls).count("push") == 1  # never sent twice blindly
    source.settle(TASK, arrived=False)  # the operator looked: it had not arrived
    assert source.push(TASK, Outcome.failure("x"))
    assert _names(make_source.calls).count("push") == 2
    with pytest.raises(ConfigError, match="no push of it is waiting"):
        source.settle(TASK, arrived=True)


def test_a_push_refused_before_it_was_read_is_sent_again(make_source):
    make_source.script["push"] = [
        _refused(),
        ScopedKey.from_str(TASK.replace("Task-", "ProtocolDAGResultRef-")),
    ]
    source = make_source()
    source.claim("fahflow", 1)
    with pytest.raises(TransientError):
        source.push(TASK, Outcome.failure("x"))
    assert not source.has_outcome(TASK)  # certainly not arrived: nothing to settle
    assert source.push(TASK, Outcome.failure("x"))


def test_wrong_credentials_are_a_clear_error_that_never_shows_the_key(make_source, caplog):
    make_source.script["register"] = [AlchemiscaleComputeClientError("401", status_code=401)]
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as err:
        make_source().claim("fahflow", 1)
    assert "refused (401) for identity 'fahflow-compute'" in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in caplog.text


def test_missing_or_unsafe_credentials_name_the_setting(make_source, monkeypatch, tmp_path):
    monkeypatch.delenv("ALCHEMISCALE_KEY")
    with pytest.raises(ConfigError, match=r"no key_file.*ALCHEMISCALE_KEY"):
        make_source().claim("fahflow", 1)
    key = tmp_path / "key"
    key.write_text(SECRET)
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by others.*chmod 600") as err:
        make_source(compute={"key_file": key}).claim("fahflow", 1)
    assert SECRET not in str(err.value)
    key.chmod(0o600)
    assert make_source(compute={"key_file": key}).claim("fahflow", 1)


def test_a_call_that_never_answers_is_cut_off(make_source):
    never = threading.Event()
    make_source.script["register"] = [lambda sid: never.wait()]
    source = make_source(call_timeout_s=0.2)
    with pytest.raises(ApiTimeout, match=r"no answer within 0\.2 s"):
        source.claim("fahflow", 1)


def test_a_claim_answered_500_registers_anew_and_claims_once_more(make_source, caplog):
    """alchemiscale answers a claim by an id it no longer knows with 500 (its registration
    timeout shorter than fahflow's registration_expire_s)."""
    make_source.script["claim"] = [
        AlchemiscaleComputeClientError("500", status_code=500),
        [ScopedKey.from_str(TASK)],
    ]
    source = make_source()
    with caplog.at_level(logging.WARNING):
        assert [t.key for t in source.claim("fahflow", 1)] == [TASK]
    assert _names(make_source.calls)[:5] == ["register", "claim", "deregister", "register", "claim"]
    assert "answered the claim with 500" in caplog.text
    assert source.ledger.registration().claim_started_at is None


def test_status_warns_of_a_held_push_until_settled_and_of_an_old_heartbeat(tmp_path, monkeypatch):
    import yaml

    from fahflow.cli import main
    from fahflow.config import load_config
    from fahflow.tasks.alchemiscale_ledger import SourceLedger

    repo = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    state = tmp_path / "alchemiscale.sqlite"
    data["tasks"].update(
        source="alchemiscale", service_id="fahflow", alchemiscale={"state": str(state)}
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("ALCHEMISCALE_KEY", SECRET)
    ledger = SourceLedger(state)
    ledger.set_registration("fahflow-0123456789abcdef0123456789abcdef", why="test")
    ledger.claim_answered([TASK], "fahflow-0123456789abcdef0123456789abcdef")
    ledger.push_started(TASK, "ProtocolDAGResult-abc")
    ledger.close()
    from fahflow.campaign import source_warnings

    (warning,) = source_warnings(load_config(config))
    assert TASK in warning and "settle" in warning
    assert main(["alchemiscale", "settle", TASK, "--config", str(config)]) == 1  # say which
    assert main(["alchemiscale", "settle", TASK, "--arrived", "--config", str(config)]) == 0
    assert source_warnings(load_config(config)) == []
    assert SourceLedger(state).claim(TASK).pushed_at is not None
    # A heartbeat nearing the server's timeout (0.66 × 1800 s by default) is warned of.
    ledger = SourceLedger(state)
    old = (datetime.now(UTC) - timedelta(seconds=1300)).isoformat()
    with ledger._conn:
        ledger._conn.execute("UPDATE registration SET heartbeat_at = ?", (old,))
    ledger.close()
    (warning,) = source_warnings(load_config(config))
    assert "last heartbeat" in warning and "1300 s ago" in warning and "1800 s" in warning


def test_deregister_retires_the_service_and_the_next_claim_registers_anew(make_source):
    source = make_source()
    source.claim("fahflow", 0)
    old = source.ledger.registration().service_id
    assert source.deregister() == old
    assert source.ledger.registration() is None
    assert [r["why"] for r in source.ledger.past_registrations()] == [
        "deregistered by the operator"
    ]
    with pytest.raises(ConfigError, match="never registered"):
        source.deregister()
    source.close()
    again = make_source()
    again.claim("fahflow", 0)
    assert again.ledger.registration().service_id != old
    assert _names(make_source.calls) == ["register", "deregister", "register"]
