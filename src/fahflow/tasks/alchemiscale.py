"""alchemiscale as a Task source: fahflow is one compute service of an alchemiscale server.

Everything goes through alchemiscale's own compute client (``AlchemiscaleComputeClient``, DESIGN
§1); what its compute API cannot tell is kept in the source's own ledger
(:mod:`fahflow.tasks.alchemiscale_ledger`), written before and after each call that changes the
server:

* **one compute service.** The id ``<tasks.service_id>-<uuid4 hex>`` is registered once and
  beats in every batch (the claim step). alchemiscale drops a registration whose last heartbeat
  is older than its timeout and gives its running Tasks back to ``waiting``; a heartbeat of an
  unknown id is silently accepted, so fahflow judges by its own clock: a last heartbeat older
  than ``registration_expire_s`` means the registration is gone, and a new one is made (the
  old one deregistered, in case the server's timeout is longer). Tasks in flight on FAH go on:
  their results are still pushed (alchemiscale does not check the claim), and a Task handed
  back to this service is recognised by its key, never sent to FAH twice;
* **claims** ask the configured scopes for the protocols fahflow runs; ``None`` (the service
  was denied after too many failures) and an all-``None`` answer are simply no Tasks. A claim
  whose answer was lost leaves Tasks held under the registration that fahflow does not know:
  the next batch replaces the registration, which gives them back;
* **pushes** send the Task's ProtocolDAGResult (ok or failed) with ``set_task_result`` exactly
  once. The compute API cannot say whether a push arrived, so a push whose answer was lost is
  settled through a *user* identity's view of the Task's results (``check_pushes``) when one is
  configured, else held for the operator (``fahflow alchemiscale settle``) rather than sent
  twice;
* **bounded.** The client retries only idempotent calls (``max_retries`` with backoff); claim,
  register and push are sent once. No call blocks longer than ``call_timeout_s``.

Credentials come from the config or alchemiscale's environment variables; the key is read from a
file or the environment and never appears in a message or a log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fahflow.config import AlchemiscaleCredentials, AlchemiscaleSettings
from fahflow.errors import ConfigError, FahflowError, OutcomeUnknown, TransientError
from fahflow.failpoints import failpoint
from fahflow.outcome import Outcome
from fahflow.tasks.alchemiscale_ledger import Registration, SourceLedger
from fahflow.tasks.base import ClaimedTask, task_id_for

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The protocols fahflow runs (fahflow.kinds.gufe.SUPPORTED), by the names alchemiscale filters on.
PROTOCOLS = ("NonEquilibriumCyclingProtocol", "FahNonEquilibriumCyclingProtocol")


#: What :meth:`AlchemiscaleSource._claim_once` returns for a claim answered 500.
_UNREGISTERED = object()


class ApiTimeout(TransientError):
    """One client call blocked longer than ``call_timeout_s``."""


def credentials(settings: AlchemiscaleCredentials, role: str) -> tuple[str, str, str]:
    """(url, identifier, key) from the config, else alchemiscale's own environment variables;
    a ConfigError naming the key (never its value) when one is missing or unsafe."""
    url = settings.url or os.environ.get("ALCHEMISCALE_URL")
    identifier = settings.identifier or os.environ.get("ALCHEMISCALE_ID")
    where = f"tasks.alchemiscale.{role}"
    if settings.key_file is not None:
        path = Path(settings.key_file)
        try:
            mode = path.stat().st_mode
            key = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}.key_file: cannot read {path}: {exc.strerror}") from None
        if mode & 0o077:
            raise ConfigError(
                f"{where}.key_file: {path} is readable by others (mode {mode & 0o777:o}); "
                f"run `chmod 600 {path}`"
            )
    else:
        key = os.environ.get("ALCHEMISCALE_KEY", "")
    missing = [
        name
        for name, value, env in (
            ("url", url, "ALCHEMISCALE_URL"),
            ("identifier", identifier, "ALCHEMISCALE_ID"),
            ("key_file", key, "ALCHEMISCALE_KEY"),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"{where}: no {', '.join(missing)}: set it in the config or alchemiscale's "
            "environment variables (ALCHEMISCALE_URL, ALCHEMISCALE_ID, ALCHEMISCALE_KEY)"
        )
    assert url and identifier
    return url, identifier, key


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`ApiTimeout` in this (main) thread if the block runs past ``seconds``.

    alchemiscale's client sets no timeout on its requests, so an API that accepts connections and
    never answers would hold a batch forever; SIGALRM interrupts the blocked socket read. Off the
    main thread (no signals there) the block simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ApiTimeout(
            f"{what}: no answer within {seconds:g} s (tasks.alchemiscale.call_timeout_s)"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _never_sent(exc: BaseException) -> bool:
    """Whether a connection error happened before the request left (refused, no route, DNS)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    seen: list[BaseException] = [exc]
    while seen:
        err = seen.pop()
        if isinstance(err, NewConnectionError | requests.exceptions.ConnectTimeout):
            return True
        seen.extend(a for a in getattr(err, "args", ()) if isinstance(a, BaseException))
        reason = getattr(err, "reason", None)
        if isinstance(reason, BaseException):
            seen.append(reason)
    return False


class AlchemiscaleSource:
    """Tasks from an alchemiscale compute API (``tasks.source: alchemiscale``)."""

    name = "alchemiscale"

    def __init__(
        self,
        settings: AlchemiscaleSettings,
        service_name: str,
        *,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.settings = settings
        self.service_name = service_name
        self.ledger = SourceLedger(settings.state)
        self._client_factory = client_factory
        self._clients: dict[int, Any] = {}
        self._service_id: str | None = None
        unsupported = set(settings.protocols or ()) - set(PROTOCOLS)
        if unsupported:
            raise ConfigError(
                f"tasks.alchemiscale.protocols: {', '.join(sorted(unsupported))} not run by "
                f"fahflow; it runs {', '.join(PROTOCOLS)}"
            )
        self.protocols = list(settings.protocols or PROTOCOLS)

    def close(self) -> None:
        self.ledger.close()

    # --- the client --------------------------------------------------------------------------

    def _client(self, retries: int) -> Any:
        """alchemiscale's compute client; ``retries`` 0 for calls that must be sent once."""
        if retries not in self._clients:
            url, identifier, key = credentials(self.settings.compute, "compute")
            factory = self._client_factory
            if factory is None:
                from alchemiscale.compute.client import AlchemiscaleComputeClient as factory
            self._clients[retries] = factory(
                api_url=url,
                identifier=identifier,
                key=key,
                use_local_cache=False,
                max_retries=retries,
                retry_base_seconds=self.settings.retry_base_seconds,
                retry_max_seconds=self.settings.retry_max_seconds,
            )
        return self._clients[retries]

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One client call under the deadline, its errors in fahflow's words."""
        from alchemiscale.base.client import (
            AlchemiscaleBaseClientError,
            AlchemiscaleConnectionError,
        )

        url = self.settings.compute.url or os.environ.get("ALCHEMISCALE_URL", "")
        try:
            with deadline(self.settings.call_timeout_s, f"alchemiscale {what} at {url}"):
                return fn(*args, **kwargs)
        except AlchemiscaleConnectionError as exc:
            error = TransientError(f"alchemiscale {what}: cannot reach {url}: {exc}")
            error.never_sent = _never_sent(exc)  # type: ignore[attr-defined]
            raise error from None
        except AlchemiscaleBaseClientError as exc:
            status = getattr(exc, "status_code", None)
            if status == 401:
                raise ConfigError(
                    f"alchemiscale {what} at {url}: refused (401) for identity "
                    f"{self._identifier()!r}: check tasks.alchemiscale.compute (identifier, "
                    f"key_file) or ALCHEMISCALE_ID/ALCHEMISCALE_KEY, and the identity's scopes"
                ) from None
            raise TransientError(f"alchemiscale {what} at {url}: {exc}", status=status) from None

    def _identifier(self) -> str:
        return self.settings.compute.identifier or os.environ.get("ALCHEMISCALE_ID", "?")

    # --- the registration --------------------------------------------------------------------

    def heartbeat_age_s(self) -> float | None:
        """Seconds since the last heartbeat this service recorded (None: never registered)."""
        reg = self.ledger.registration()
        return None if reg is None else age_s(reg.heartbeat_at)

    def ensure_registered(self) -> str:
        """The compute-service id, registered and just beaten (the first thing of every batch).

        A new registration replaces the recorded one when there is none, when its last heartbeat
        is older than the server drops registrations after, or when a claim's answer was lost.
        """
        if self._service_id is not None:
            return self._service_id
        reg = self.ledger.registration()
        if reg is None:
            return self._register(None, "first registration")
        client = self._client(self.settings.max_retries)
        # Beat first: the server expires stale registrations, this one too, before it records
        # the beat; so after this call a stale registration is certainly gone.
        self._call("heartbeat", client.heartbeat, _service_id(reg.service_id))
        age = age_s(reg.heartbeat_at)
        if reg.claim_started_at is not None:
            why = (
                f"the answer to a claim sent at {reg.claim_started_at} was lost: Tasks it may "
                f"have claimed are held by {reg.service_id} without fahflow knowing them"
            )
            return self._register(reg, why)
        if age > self.settings.registration_expire_s:
            why = (
                f"its last heartbeat was {age:.0f} s ago, more than registration_expire_s "
                f"({self.settings.registration_expire_s:.0f} s): alchemiscale has dropped "
                f"{reg.service_id} and given its running Tasks back to waiting"
            )
            return self._register(reg, why)
        self.ledger.beat()
        self._service_id = reg.service_id
        return reg.service_id

    def beat(self) -> bool:
        """A heartbeat only (the end of a batch, or ``fahflow alchemiscale heartbeat`` from its
        own cron line): never registers; False when there is no fresh registration to keep
        alive (the next claim replaces it)."""
        reg = self.ledger.registration()
        if reg is None or age_s(reg.heartbeat_at) > self.settings.registration_expire_s:
            return False
        client = self._client(self.settings.max_retries)
        self._call("heartbeat", client.heartbeat, _service_id(reg.service_id))
        self.ledger.beat()
        return True

    def deregister(self) -> str:
        """Retire this compute service: alchemiscale gives its running Tasks back to waiting,
        and the next batch would register anew. Returns the id deregistered."""
        reg = self.ledger.registration()
        if reg is None:
            raise ConfigError("this compute service was never registered")
        self._call("deregister", self._client(0).deregister, _service_id(reg.service_id))
        self.ledger.forget_registration(why="deregistered by the operator")
        return reg.service_id

    def _register(self, old: Registration | None, why: str) -> str:
        from alchemiscale.storage.models import ComputeServiceID

        once = self._client(0)
        if old is not None:
            with contextlib.suppress(FahflowError):  # already gone: alchemiscale answers 500
                self._call("deregister", once.deregister, _service_id(old.service_id))
        new = ComputeServiceID.new_from_name(self.service_name)
        self._call("register", once.register, new)
        self.ledger.set_registration(str(new), why=why)
        if old is not None:
            logger.warning(
                "alchemiscale: registered again as %s: %s. Tasks in flight on FAH go on and their "
                "results are still pushed; a Task handed back to this service is not sent to "
                "FAH again",
                new, why,
            )  # fmt: skip
        else:
            logger.info("alchemiscale: registered compute service %s", new)
        self._service_id = str(new)
        return self._service_id

    # --- TaskSource --------------------------------------------------------------------------

    def claim(self, service_id: str, count: int) -> list[ClaimedTask]:
        """Beat, then claim up to ``count`` Tasks (``service_id`` is the config's name; the
        registered id is this source's own)."""
        sid = self.ensure_registered()
        if count <= 0:
            return []
        answer = self._claim_once(sid, count)
        if answer is _UNREGISTERED:
            # alchemiscale answers a claim by an id it does not know with 500: the registration
            # was dropped although fahflow's clock says it beat in time (the server's timeout
            # is shorter than registration_expire_s). Register again and claim once more.
            reg = self.ledger.registration()
            why = (
                "the server answered the claim with 500, as it does for an id it does not "
                "know (registration_expire_s too long?)"
            )
            sid = self._register(reg, why)
            answer = self._claim_once(sid, count)
            if answer is _UNREGISTERED:
                raise TransientError("alchemiscale claim: 500 again after registering anew")
        if answer is None:
            logger.warning(
                "alchemiscale denied %s its claim: too many failed results recently (the "
                "server's ALCHEMISCALE_COMPUTE_API_MAX_FAILURES within its forgive time)",
                sid,
            )
            answer = []
        keys = [str(k) for k in answer if k is not None]
        self.ledger.claim_answered(keys, sid)
        failpoint("alchemiscale.claim.after_answer")
        return [self.get(key) for key in keys]

    def _claim_once(self, sid: str, count: int) -> Any:
        """One ``POST /claim``, its intent recorded first; :data:`_UNREGISTERED` for a 500."""
        from alchemiscale.models import Scope

        scopes = [Scope.from_str(s) for s in self.settings.scopes]
        exclude = [Scope.from_str(s) for s in self.settings.scopes_exclude] or None
        self.ledger.claim_started()
        failpoint("alchemiscale.claim.after_intent")
        try:
            return self._call(
                "claim", self._client(0).claim_tasks, scopes=scopes, scopes_exclude=exclude,
                compute_service_id=_service_id(sid), count=count, protocols=self.protocols,
            )  # fmt: skip
        except TransientError as exc:
            if getattr(exc, "never_sent", False) or (exc.status is not None and exc.status < 500):
                self.ledger.claim_answered([], sid)  # nothing was claimed
            elif exc.status == 500:
                return _UNREGISTERED  # the intent stays: the new registration settles it
            raise

    def claimed_keys(self, service_id: str) -> set[str]:
        return self.ledger.open_keys()

    def get(self, key: str) -> ClaimedTask:
        """The Task, its Transformation and the result it extends (fetched once, then kept)."""
        from alchemiscale.models import ScopedKey

        claim = self.ledger.claim(key)
        if claim is None or claim.transformation is None:
            client = self._client(self.settings.max_retries)
            transformation, extends = self._call(
                f"transformation of {key}", client.retrieve_task_transformation,
                ScopedKey.from_str(key),
            )  # fmt: skip
            self.ledger.set_payload(
                key, transformation.to_json(), None if extends is None else extends.to_json()
            )
            claim = self.ledger.claim(key)
            assert claim is not None and claim.transformation is not None
        from fahflow.kinds.gufe import load_transformation

        transformation = load_transformation(claim.transformation, f"Task {key}")
        return ClaimedTask(
            key=key,
            task_id=task_id_for(key),
            transformation_id=task_id_for(str(transformation.key)),
            name=transformation.name or str(transformation.key),
            payload=claim.transformation,
            kind="gufe",
            extends=claim.extends,
            dag_name=key,
        )

    def has_outcome(self, key: str) -> bool:
        """Whether the Task's result was pushed. A push whose answer was lost is settled first:
        by the user identity of ``check_pushes`` when configured, else it raises
        :class:`OutcomeUnknown` (held for ``fahflow alchemiscale settle``)."""
        claim = self.ledger.claim(key)
        if claim is None:
            return False
        if claim.pushed_at is not None:
            return True
        if not claim.push_unknown:
            return False
        assert claim.pdr_key is not None
        arrived = self._check_push(key, claim.pdr_key)
        if arrived is None:
            check = (
                f"look at the Task's results on alchemiscale, then `fahflow alchemiscale settle "
                f"{key} --arrived` or `--resend` (or configure tasks.alchemiscale.check_pushes)"
            )
            raise OutcomeUnknown(
                f"Task {key}: its result (ProtocolDAGResult {claim.pdr_key}) was sent at "
                f"{claim.push_started_at} and the answer was lost; alchemiscale's compute API "
                f"cannot say whether it arrived, and a second push would be a second result: "
                f"{check}",
                check=check,
            )
        if arrived:
            self.ledger.pushed(key, "", settled="check_pushes: found on the server")
            logger.info("Task %s: its lost push had arrived (check_pushes)", key)
            return True
        self.ledger.push_not_sent(key)
        logger.info("Task %s: its lost push had not arrived (check_pushes); sending it", key)
        return False

    def push(self, key: str, outcome: Outcome) -> bool:
        """Send the Task's ProtocolDAGResult (its stored one; else a failed one saying why)."""
        from alchemiscale.models import ScopedKey

        if self.has_outcome(key):
            return False
        pdr = self._pdr(key, outcome)
        # The id the result names (alchemiscale logs a failure against it): the recorded one.
        # Pushes run in parallel and never register: only the claim step replaces a
        # registration, so two pushes cannot race to make two.
        reg = self.ledger.registration()
        sid = reg.service_id if reg is not None else self.ensure_registered()
        self.ledger.push_started(key, str(pdr.key))
        failpoint("alchemiscale.push.after_intent")
        once = self._client(0)
        try:
            result = self._call(
                f"result of {key}", once.set_task_result, ScopedKey.from_str(key), pdr,
                _service_id(sid),
            )  # fmt: skip
        except ConfigError:
            self.ledger.push_not_sent(key)
            raise
        except TransientError as exc:
            if getattr(exc, "never_sent", False) or (exc.status is not None and exc.status < 500):
                self.ledger.push_not_sent(key)
                raise
            check = "the next batch settles it (tasks.alchemiscale.check_pushes) or holds it"
            raise OutcomeUnknown(
                f"Task {key}: push of its result: {exc}; {check}", check=check
            ) from None
        failpoint("alchemiscale.push.after_call")
        self.ledger.pushed(key, str(result))
        logger.info("Task %s: pushed %s result %s", key, "ok" if pdr.ok() else "failed", result)
        return True

    def _pdr(self, key: str, outcome: Outcome) -> Any:
        from gufe.protocols.protocoldag import ProtocolDAGResult

        from fahflow.kinds.gufe import load_transformation
        from fahflow.kinds.gufe_results import failure_pdr

        stored = outcome.protocol.protocol_dag_result if outcome.protocol else None
        if stored and Path(stored).is_file():
            return ProtocolDAGResult.from_json(file=stored)
        claim = self.ledger.claim(key)
        if claim is None or claim.transformation is None:
            self.get(key)
            claim = self.ledger.claim(key)
        assert claim is not None and claim.transformation is not None
        transformation = load_transformation(claim.transformation, f"Task {key}")
        extends = (
            None if claim.extends is None else ProtocolDAGResult.from_json(content=claim.extends)
        )
        return failure_pdr(transformation, outcome.reason or "failed", extends=extends, name=key)

    def _check_push(self, key: str, pdr_key: str) -> bool | None:
        """Whether the Task's results on the server include ``pdr_key`` (None: cannot tell)."""
        check = self.settings.check_pushes
        if check is None:
            return None
        from alchemiscale.interface.client import AlchemiscaleClient
        from alchemiscale.models import ScopedKey

        url, identifier, user_key = credentials(check, "check_pushes")
        client = AlchemiscaleClient(
            api_url=url, identifier=identifier, key=user_key, use_local_cache=False,
            max_retries=self.settings.max_retries,
            retry_base_seconds=self.settings.retry_base_seconds,
            retry_max_seconds=self.settings.retry_max_seconds,
        )  # fmt: skip
        task = ScopedKey.from_str(key)
        found = self._call(f"results of {key}", client.get_task_results, task, visualize=False)
        found += self._call(f"failures of {key}", client.get_task_failures, task, visualize=False)
        return any(str(pdr.key) == pdr_key for pdr in found)

    def settle(self, key: str, *, arrived: bool) -> None:
        """The operator's answer for a push whose answer was lost."""
        claim = self.ledger.claim(key)
        if claim is None or not claim.push_unknown:
            raise ConfigError(f"Task {key}: no push of it is waiting to be settled")
        if arrived:
            self.ledger.pushed(key, "", settled="operator: arrived")
        else:
            self.ledger.push_not_sent(key)


def _service_id(text: str) -> Any:
    from alchemiscale.storage.models import ComputeServiceID

    return ComputeServiceID(text)


def age_s(stamp: str) -> float:
    """Seconds since ``stamp`` (an ISO time as fahflow's SQLite files store it)."""
    return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
