"""A stand-in for an alchemiscale 0.8.0 server, for tests, the demo and operators (docs/standin.md).

alchemiscale's own compute and user FastAPI apps are served (routes, JWT auth, scope checks,
claim weighting and payloads all theirs), with their Neo4j state store replaced by a SQLite file
and their S3 object store by a folder, both under one root::

    standin = Standin(root)
    standin.add_identity("compute", "fah", key, ["org-campaign-project"])
    with standin.serve() as urls:
        client = AlchemiscaleComputeClient(urls.compute, "fah", key)

Nothing in fahflow's Task sources or batch steps imports this package.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fahflow.standin.server import ApiSettings, Urls
from fahflow.standin.store import OBJECTS_DIR, STATE_FILE, ObjectStore, StateStore

if TYPE_CHECKING:
    from gufe.protocols import ProtocolDAGResult

__all__ = ["Standin", "Urls"]


def _compute_defaults() -> tuple[int, int, int]:
    """ComputeAPISettings defaults: registration expiry, forgive time, max failures."""
    from alchemiscale.settings import ComputeAPISettings

    fields = ComputeAPISettings.model_fields
    return (
        fields["ALCHEMISCALE_COMPUTE_API_REGISTRATION_EXPIRE_SECONDS"].default,
        fields["ALCHEMISCALE_COMPUTE_API_FORGIVE_TIME_SECONDS"].default,
        fields["ALCHEMISCALE_COMPUTE_API_MAX_FAILURES"].default,
    )


class Standin:
    """One stand-in alchemiscale server's state, under ``root`` (created).

    Parameters
    ----------
    root
        Folder holding ``state.sqlite`` (the state store, with the JWT secret made for this root)
        and ``objects/`` (the object store).
    registration_expire_s, forgive_time_s, max_failures
        alchemiscale's ``ALCHEMISCALE_COMPUTE_API_REGISTRATION_EXPIRE_SECONDS``,
        ``_FORGIVE_TIME_SECONDS`` and ``_MAX_FAILURES``; ``None`` takes its default (600 s, 3).
    """

    def __init__(
        self,
        root: Path,
        *,
        registration_expire_s: int = 1800,
        forgive_time_s: int | None = None,
        max_failures: int | None = None,
    ) -> None:
        from alchemiscale.security.auth import generate_secret_key

        self.root = Path(root)
        self.state = StateStore(self.root / STATE_FILE)
        self.objects = ObjectStore(self.root / OBJECTS_DIR)
        _, default_forgive, default_max = _compute_defaults()
        self.settings = ApiSettings(
            jwt_secret=self.state.set_meta_once("jwt_secret", generate_secret_key()),
            registration_expire_s=registration_expire_s,
            forgive_time_s=default_forgive if forgive_time_s is None else forgive_time_s,
            max_failures=default_max if max_failures is None else max_failures,
        )

    def add_identity(
        self, kind: Literal["compute", "user"], identifier: str, key: str, scopes: list[str]
    ) -> None:
        """Create (or overwrite) a compute or user identity with a bcrypt-hashed ``key``.

        ``scopes`` like ``"org-campaign-project"`` or ``"*-*-*"``; a malformed one is a
        ValueError naming it.
        """
        from alchemiscale.models import Scope
        from alchemiscale.security.auth import hash_key
        from alchemiscale.security.models import (
            CredentialedComputeIdentity,
            CredentialedUserIdentity,
        )

        classes = {"compute": CredentialedComputeIdentity, "user": CredentialedUserIdentity}
        if kind not in classes:
            raise ValueError(f"identity kind {kind!r}: use 'compute' or 'user'")
        for scope in scopes:
            try:
                Scope.from_str(scope)
            except Exception as exc:
                raise ValueError(f"scope {scope!r}: {exc} (use org-campaign-project)") from None
        entity = classes[kind](identifier=identifier, hashed_key=hash_key(key), scopes=scopes)
        self.state.create_credentialed_entity(entity)

    @contextlib.contextmanager
    def serve(self, compute_port: int = 0, interface_port: int = 0) -> Iterator[Urls]:
        """Serve the compute and user APIs on 127.0.0.1 (port 0: a free one) until the block ends.

        The URLs are returned once both servers listen.
        """
        from alchemiscale.compute.api import app as compute_app
        from alchemiscale.interface.api import app as interface_app

        from fahflow.standin.server import app_over, serve_apps

        apps = {
            "compute": app_over(compute_app, self.state, self.objects, self.settings.compute()),
            "interface": app_over(
                interface_app, self.state, self.objects, self.settings.interface()
            ),
        }
        ports = {"compute": compute_port, "interface": interface_port}
        with serve_apps(apps, ports) as urls:
            yield Urls(compute=urls["compute"], interface=urls["interface"])

    # -- direct store access (no server needed) -------------------------------------------------

    def task_status(self, task: str) -> str:
        """The Task's status ("waiting", "running", …); KeyError for an unknown Task."""
        from alchemiscale.models import ScopedKey

        (status,) = self.state.get_task_status([ScopedKey.from_str(str(task))])
        if status is None:
            raise KeyError(f"no Task {task} in the stand-in at {self.root}")
        return status.value

    def tasks(self) -> list[dict]:
        """Every Task, oldest first: key, transformation, status, priority, extends, claimed_by,
        n_results, n_failures."""
        return self.state.task_rows()

    def registrations(self) -> dict[str, datetime.datetime]:
        """Compute-service id → its last heartbeat (UTC)."""
        return {k: v["heartbeat"] for k, v in self.state.registrations().items()}

    def backdate_heartbeats(self, seconds: float) -> None:
        """Make every registration's last heartbeat ``seconds`` older (expiry without sleeping)."""
        self.state.backdate_heartbeats(seconds)

    def results(self, task: str, ok: bool = True) -> list[ProtocolDAGResult]:
        """The Task's ProtocolDAGResults (``ok=False``: its failures), oldest first, read from
        the object store."""
        from alchemiscale.compression import decompress_gufe_zstd

        return [
            decompress_gufe_zstd(self.objects.pull_protocoldagresult(location=row["location"]))
            for row in self.state.result_rows(task, ok)
        ]

    def tracebacks(self, task: str) -> list[list[str]]:
        """The tracebacks stored with each of the Task's failure refs, oldest first."""
        return [self.state.tracebacks(row["sk"]) for row in self.state.result_rows(task, False)]
