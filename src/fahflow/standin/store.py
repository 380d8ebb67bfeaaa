"""The stand-in's two stores: :class:`StateStore` (SQLite) for ``Neo4jStore``, :class:`ObjectStore`
(a folder) for ``S3ObjectStore``.

Each method here is one that alchemiscale 0.8.0's routes (or ``security.auth.authenticate``) call,
with the semantics of ``Neo4jStore``'s Cypher: the same allowed-from states, the same ``None`` in
the returned lists, the same exceptions where the route turns them into an HTTP status (a
``KeyError`` or ``IndexError`` the route does not catch is its 500). Where Neo4jStore's behaviour is
surprising, the comment says "as Neo4jStore" and why. Any other attribute raises
``NotImplementedError("stand-in: <name> is not modelled")``, which FastAPI answers with 500.

Nodes become rows: gufe objects by ScopedKey (keyed-chain JSON), Tasks with their status,
priority, EXTENDS target and CLAIMS holder, TaskHubs with their weight, ACTIONS with theirs,
compute-service registrations, ProtocolDAGResultRefs with the Task they are RESULTS_IN of.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alchemiscale.models import Scope, ScopedKey
from alchemiscale.security.models import CredentialedEntity
from alchemiscale.storage.models import (
    ComputeServiceID,
    ComputeServiceRegistration,
    NetworkStateEnum,
    ProtocolDAGResultRef,
    Task,
    TaskHub,
    TaskStatusEnum,
    Tracebacks,
)
from alchemiscale.storage.objectstore import OBJECT_FILENAME
from alchemiscale.storage.statestore import Neo4JStoreError, _select_tasks_from_taskpool
from alchemiscale.validators import validate_network_nonself
from gufe import AlchemicalNetwork, NonTransformation, Transformation
from gufe.tokenization import JSON_HANDLER, GufeKey, GufeTokenizable, KeyedChain

from fahflow import sqlite
from fahflow.atomic import write_bytes

STATE_FILE = "state.sqlite"
OBJECTS_DIR = "objects"

W = TaskStatusEnum.waiting.value
R = TaskStatusEnum.running.value
C = TaskStatusEnum.complete.value
E = TaskStatusEnum.error.value
I = TaskStatusEnum.invalid.value  # noqa: E741
D = TaskStatusEnum.deleted.value

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gufe (
    sk TEXT PRIMARY KEY, qualname TEXT NOT NULL, gufe_key TEXT NOT NULL,
    org TEXT NOT NULL, campaign TEXT NOT NULL, project TEXT NOT NULL, chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (
    sk TEXT PRIMARY KEY, name TEXT, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS network_transformations (
    network TEXT NOT NULL, transformation TEXT NOT NULL, PRIMARY KEY (network, transformation));
CREATE TABLE IF NOT EXISTS transformations (sk TEXT PRIMARY KEY, protocol TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS taskhubs (
    sk TEXT PRIMARY KEY, network TEXT NOT NULL UNIQUE, weight REAL NOT NULL,
    org TEXT NOT NULL, campaign TEXT NOT NULL, project TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    sk TEXT PRIMARY KEY, transformation TEXT NOT NULL, status TEXT NOT NULL,
    priority INTEGER NOT NULL, extends TEXT, creator TEXT, created TEXT NOT NULL,
    claimed_by TEXT, org TEXT NOT NULL, campaign TEXT NOT NULL, project TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_transformation ON tasks (transformation);
CREATE TABLE IF NOT EXISTS actions (
    taskhub TEXT NOT NULL, task TEXT NOT NULL, weight REAL NOT NULL, PRIMARY KEY (taskhub, task));
CREATE TABLE IF NOT EXISTS registrations (
    identifier TEXT PRIMARY KEY, registered TEXT NOT NULL, heartbeat TEXT NOT NULL,
    failure_times TEXT NOT NULL, manager_name TEXT);
CREATE TABLE IF NOT EXISTS identities (
    kind TEXT NOT NULL, identifier TEXT NOT NULL, entity TEXT NOT NULL,
    PRIMARY KEY (kind, identifier));
CREATE TABLE IF NOT EXISTS results (
    sk TEXT PRIMARY KEY, task TEXT NOT NULL, ok INTEGER NOT NULL, obj_key TEXT NOT NULL,
    location TEXT, created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS results_task ON results (task);
CREATE TABLE IF NOT EXISTS tracebacks (
    sk TEXT PRIMARY KEY, result TEXT NOT NULL, tracebacks TEXT NOT NULL);
"""

TRANSFORMATION_QUALNAMES = (Transformation.__qualname__, NonTransformation.__qualname__)


def utc(moment: datetime.datetime) -> str:
    """A time as the store keeps it: UTC ISO 8601 with microseconds, so that times sort as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def to_json(obj: Any) -> str:
    return json.dumps(obj, cls=JSON_HANDLER.encoder)


def from_json(text: str) -> Any:
    return json.loads(text, cls=JSON_HANDLER.decoder)


def _scope_columns(scope: Scope) -> tuple[str, str, str]:
    return scope.org, scope.campaign, scope.project


def _scope_where(scope: Scope, prefix: str = "") -> tuple[str, list[str]]:
    """``WHERE`` clause and values matching ``scope`` (its ``None`` parts match anything)."""
    conditions, values = [], []
    for column, value in zip(("org", "campaign", "project"), _scope_columns(scope), strict=True):
        if value is not None:
            conditions.append(f"{prefix}{column} = ?")
            values.append(value)
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), values


def _in(values: list[str]) -> str:
    return ",".join("?" * len(values))


class _NotModelled:
    """Any method the stand-in does not define (a Neo4jStore or S3ObjectStore method left
    unmodelled) raises NotImplementedError naming it, which FastAPI answers with 500."""

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not defined on the class.
        if name.startswith("__"):
            raise AttributeError(name)

        def not_modelled(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(f"stand-in: {name} is not modelled")

        return not_modelled


class StateStore(_NotModelled):
    """``Neo4jStore``'s methods, as the compute and user routes call them, over one SQLite file.

    Every write is one ``BEGIN IMMEDIATE`` transaction; readers see the last committed state (WAL).
    Safe to use from many threads (a connection per call) and from other processes on the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        conn = sqlite.connect(self.path)
        try:
            conn.executescript(SCHEMA)
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite.connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite.connect(self.path)
        try:
            with sqlite.transaction(conn):
                yield conn
        finally:
            conn.close()

    # -- meta, health ---------------------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row["value"]

    def set_meta_once(self, name: str, value: str) -> str:
        """Store ``value`` under ``name`` unless one is there; the stored one is returned."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (name, value))
            return db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()[0]

    def _store_check(self) -> bool:
        try:
            with self._read() as db:
                db.execute("SELECT count(*) FROM meta").fetchone()
        except (sqlite3.Error, OSError):
            return False
        return True

    # -- gufe objects ---------------------------------------------------------------------------

    def _put_gufe(self, db: sqlite3.Connection, obj: GufeTokenizable, scope: Scope) -> ScopedKey:
        """Merge ``obj`` under its ScopedKey in ``scope`` (properties replaced, as MERGE + SET)."""
        sk = ScopedKey(gufe_key=obj.key, **scope.to_dict())
        chain = to_json(list(KeyedChain.from_gufe(obj)))
        db.execute(
            "INSERT OR REPLACE INTO gufe (sk, qualname, gufe_key, org, campaign, project, chain)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(sk), sk.qualname, str(obj.key), *_scope_columns(scope), chain),
        )
        return sk

    def check_existence(self, scoped_key: ScopedKey) -> bool:
        with self._read() as db:
            row = db.execute("SELECT 1 FROM gufe WHERE sk = ?", (str(scoped_key),)).fetchone()
            if row is None:
                row = db.execute("SELECT 1 FROM tasks WHERE sk = ?", (str(scoped_key),)).fetchone()
        return row is not None

    def get_keyed_chain(self, scoped_key: ScopedKey) -> KeyedChain:
        with self._read() as db:
            row = db.execute("SELECT chain FROM gufe WHERE sk = ?", (str(scoped_key),)).fetchone()
        if row is None:
            if ScopedKey.from_str(str(scoped_key)).qualname == "Task":
                return KeyedChain.from_gufe(self._task_object(scoped_key))
            raise KeyError("No such object in database")
        return KeyedChain(from_json(row["chain"]))

    def get_gufe(self, scoped_key: ScopedKey) -> GufeTokenizable:
        return self.get_keyed_chain(scoped_key).to_gufe()

    def _task_object(self, task: ScopedKey | str) -> Task:
        with self._read() as db:
            row = db.execute("SELECT * FROM tasks WHERE sk = ?", (str(task),)).fetchone()
        if row is None:
            raise KeyError("No such object in database")
        return Task(
            status=row["status"],
            priority=row["priority"],
            datetime_created=datetime.datetime.fromisoformat(row["created"]),
            creator=row["creator"],
            extends=row["extends"],
            claim=row["claimed_by"],
            _key=ScopedKey.from_str(row["sk"]).gufe_key,
        )

    # -- identities -----------------------------------------------------------------------------

    def create_credentialed_entity(self, entity: CredentialedEntity) -> None:
        """Create or overwrite (key and scopes too) an identity, as Neo4jStore does."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO identities (kind, identifier, entity) VALUES (?, ?, ?)",
                (type(entity).__name__, entity.identifier, entity.model_dump_json()),
            )

    def get_credentialed_entity(self, identifier: str, cls: type[CredentialedEntity]) -> Any:
        # An unknown identifier is a KeyError, which `authenticate` does not catch: POST /token
        # for an identity that does not exist answers 500 in alchemiscale 0.8.0 (a wrong key: 401).
        with self._read() as db:
            row = db.execute(
                "SELECT entity FROM identities WHERE kind = ? AND identifier = ?",
                (cls.__name__, identifier),
            ).fetchone()
        if row is None:
            raise KeyError("No such object in database")
        return cls.model_validate_json(row["entity"])

    def list_credentialed_entities(self, cls: type[CredentialedEntity]) -> list[str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT identifier FROM identities WHERE kind = ? ORDER BY identifier",
                (cls.__name__,),
            ).fetchall()
        return [row["identifier"] for row in rows]

    def list_scopes(self, identifier: str, cls: type[CredentialedEntity]) -> list[Scope]:
        try:
            entity = self.get_credentialed_entity(identifier, cls)
        except KeyError:
            return []
        return [Scope.from_str(s) for s in entity.scopes]

    # -- networks and taskhubs ------------------------------------------------------------------

    def assemble_network(
        self,
        network: AlchemicalNetwork,
        scope: Scope,
        state: NetworkStateEnum | str = NetworkStateEnum.active,
    ) -> tuple[ScopedKey, ScopedKey, ScopedKey]:
        """Store the network, its Transformations, its NetworkMark and its TaskHub (weight 0.5).

        Submitting the same network again merges: its TaskHub's weight is reset to 0.5 and its
        state to ``state``, as Neo4jStore's MERGE + SET of the same nodes does.
        """
        from alchemiscale.storage.models import NetworkMark

        validate_network_nonself(network)
        state = NetworkStateEnum(state).value
        with self._write() as db:
            network_sk = self._put_gufe(db, network, scope)
            for transformation in network.edges:
                tf_sk = self._put_gufe(db, transformation, scope)
                protocol = type(transformation.protocol).__qualname__
                db.execute(
                    "INSERT OR REPLACE INTO transformations (sk, protocol) VALUES (?, ?)",
                    (str(tf_sk), protocol),
                )
                db.execute(
                    "INSERT OR IGNORE INTO network_transformations VALUES (?, ?)",
                    (str(network_sk), str(tf_sk)),
                )
            db.execute(
                "INSERT OR REPLACE INTO networks (sk, name, state) VALUES (?, ?, ?)",
                (str(network_sk), network.name, state),
            )
            taskhub = TaskHub(network=str(network_sk))
            taskhub_sk = self._put_gufe(db, taskhub, scope)
            db.execute(
                "INSERT OR REPLACE INTO taskhubs (sk, network, weight, org, campaign, project)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (str(taskhub_sk), str(network_sk), taskhub.weight, *_scope_columns(scope)),
            )
            mark_sk = self._put_gufe(db, NetworkMark(target=str(network_sk), state=state), scope)
        return network_sk, taskhub_sk, mark_sk

    def get_network_state(self, networks: list[ScopedKey]) -> list[str | None]:
        with self._read() as db:
            states = {
                row["sk"]: row["state"]
                for row in db.execute("SELECT sk, state FROM networks").fetchall()
            }
        return [states.get(str(n)) for n in networks]

    def query_networks(
        self, *, name=None, key=None, scope: Scope | None = None, state: str | None = None
    ) -> list[ScopedKey]:
        scope = scope or Scope()
        with self._read() as db:
            rows = db.execute(
                "SELECT n.sk, n.name, n.state, g.gufe_key, g.org, g.campaign, g.project"
                " FROM networks n JOIN gufe g ON g.sk = n.sk"
            ).fetchall()
        patterns = {
            "name": name,
            "state": state,
            "gufe_key": None if key is None else str(key),
            "org": scope.org,
            "campaign": scope.campaign,
            "project": scope.project,
        }
        return [
            ScopedKey.from_str(row["sk"])
            for row in rows
            if all(p is None or re.fullmatch(p, row[col] or "") for col, p in patterns.items())
        ]

    def get_network_transformations(self, network: ScopedKey) -> list[ScopedKey]:
        with self._read() as db:
            rows = db.execute(
                "SELECT transformation FROM network_transformations WHERE network = ?",
                (str(network),),
            ).fetchall()
        return [ScopedKey.from_str(row[0]) for row in rows]

    def get_transformation_networks(self, transformation: ScopedKey) -> list[ScopedKey]:
        with self._read() as db:
            rows = db.execute(
                "SELECT network FROM network_transformations WHERE transformation = ?",
                (str(transformation),),
            ).fetchall()
        return [ScopedKey.from_str(row[0]) for row in rows]

    def _taskhub(self, row: sqlite3.Row) -> TaskHub:
        return TaskHub(network=row["network"], weight=row["weight"])

    def query_taskhubs(
        self, scope: Scope | None = None, return_gufe: bool = False
    ) -> list[ScopedKey] | dict[ScopedKey, TaskHub]:
        scope = scope or Scope()
        where, values = _scope_where(scope, "")
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM taskhubs {where} ORDER BY org, campaign, project, sk", values
            ).fetchall()
        if return_gufe:
            return {ScopedKey.from_str(row["sk"]): self._taskhub(row) for row in rows}
        return [ScopedKey.from_str(row["sk"]) for row in rows]

    def get_taskhubs(
        self, network_scoped_keys: list[ScopedKey], return_gufe: bool = False
    ) -> list[ScopedKey | TaskHub | None]:
        for network in network_scoped_keys:
            if network.qualname != "AlchemicalNetwork":
                raise ValueError(
                    "`network` ScopedKey does not correspond to an `AlchemicalNetwork`"
                )
        with self._read() as db:
            rows = {row["network"]: row for row in db.execute("SELECT * FROM taskhubs")}
        found = []
        for network in network_scoped_keys:
            row = rows.get(str(network))
            if row is None:
                found.append(None)
            elif return_gufe:
                found.append(self._taskhub(row))
            else:
                found.append(ScopedKey.from_str(row["sk"]))
        return found

    def get_taskhub(self, network: ScopedKey, return_gufe: bool = False) -> Any:
        return self.get_taskhubs([network], return_gufe)[0]

    def set_taskhub_weight(
        self, networks: list[ScopedKey], weights: list[float]
    ) -> list[ScopedKey | None]:
        for weight in weights:
            if not 0 <= weight <= 1:
                raise ValueError("all `weights` must be between 0 and 1 (inclusive)")
        for network in networks:
            if network.qualname != "AlchemicalNetwork":
                raise ValueError(
                    "a `networks` ScopedKey does not correspond to an `AlchemicalNetwork`"
                )
        if len(networks) != len(weights):
            raise ValueError("length of `networks` and `weights` must be the same")
        done = []
        with self._write() as db:
            for network, weight in zip(networks, weights, strict=True):
                cur = db.execute(
                    "UPDATE taskhubs SET weight = ? WHERE network = ?", (weight, str(network))
                )
                done.append(network if cur.rowcount else None)
        return done

    def get_taskhub_weight(self, networks: list[ScopedKey]) -> list[float | None]:
        for network in networks:
            if network.qualname != "AlchemicalNetwork":
                raise ValueError(
                    "`network` ScopedKey does not correspond to an `AlchemicalNetwork`"
                )
        with self._read() as db:
            weights = {r["network"]: r["weight"] for r in db.execute("SELECT * FROM taskhubs")}
        return [weights.get(str(n)) for n in networks]

    def get_taskhub_actioned_tasks(self, taskhubs: list[ScopedKey]) -> list[dict[ScopedKey, float]]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM actions").fetchall()
        data: dict[str, dict[ScopedKey, float]] = {str(th): {} for th in taskhubs}
        for row in rows:
            if row["taskhub"] in data:
                data[row["taskhub"]][ScopedKey.from_str(row["task"])] = row["weight"]
        return [data[str(th)] for th in taskhubs]

    def action_tasks(self, tasks: list[ScopedKey], taskhub: ScopedKey) -> list[ScopedKey | None]:
        """ACTIONS (weight 0.5) from the hub to each Task of one of its network's Transformations
        that is waiting, running or error and not yet actioned there; ``None`` for the others
        (already actioned included, as Neo4jStore's ``WHERE NOT (th)-[:ACTIONS]->(task)``)."""
        actioned: list[ScopedKey | None] = []
        with self._write() as db:
            hub = db.execute(
                "SELECT network FROM taskhubs WHERE sk = ?", (str(taskhub),)
            ).fetchone()
            for task in tasks:
                row = None
                if hub is not None and task is not None:
                    row = db.execute(
                        "SELECT t.sk FROM tasks t JOIN network_transformations nt"
                        " ON nt.transformation = t.transformation AND nt.network = ?"
                        " WHERE t.sk = ? AND t.status IN (?, ?, ?) AND NOT EXISTS"
                        " (SELECT 1 FROM actions a WHERE a.taskhub = ? AND a.task = t.sk)",
                        (hub["network"], str(task), W, R, E, str(taskhub)),
                    ).fetchone()
                if row is None:
                    actioned.append(None)
                    continue
                db.execute("INSERT INTO actions VALUES (?, ?, 0.5)", (str(taskhub), str(task)))
                actioned.append(ScopedKey.from_str(str(task)))
        return actioned

    def set_task_weights(
        self,
        tasks: dict[ScopedKey, float] | list[ScopedKey],
        taskhub: ScopedKey,
        weight: float | None = None,
    ) -> list[ScopedKey | None]:
        if isinstance(tasks, dict):
            if weight is not None:
                raise ValueError("Cannot set `weight` to a scalar if `tasks` is a dict")
            if not all(0 <= w <= 1 for w in tasks.values()):
                raise ValueError("weights must be between 0 and 1 (inclusive)")
            pairs = list(tasks.items())
        else:
            if weight is None:
                raise ValueError("Must set `weight` to a scalar if `tasks` is a list")
            if not 0 <= weight <= 1:
                raise ValueError("weight must be between 0 and 1 (inclusive)")
            pairs = [(t, weight) for t in tasks]
        changed = []
        with self._write() as db:
            for task, w in pairs:
                cur = db.execute(
                    "UPDATE actions SET weight = ? WHERE taskhub = ? AND task = ?",
                    (w, str(taskhub), str(task)),
                )
                if cur.rowcount:  # as Neo4jStore: only the Tasks changed are listed
                    changed.append(ScopedKey.from_str(str(task)))
        return changed

    # -- tasks ----------------------------------------------------------------------------------

    def create_tasks(
        self,
        transformations: list[ScopedKey],
        extends: list[ScopedKey | None] | None = None,
        creator: str | None = None,
    ) -> list[ScopedKey]:
        if extends is None:
            extends = [None] * len(transformations)
        elif len(extends) != len(transformations):
            raise ValueError(
                "`extends` must either be `None` or have the same length as `transformations`"
            )
        for i, extended in enumerate(extends):
            if extended is not None:
                if not (qualname := getattr(extended, "qualname", None)):
                    raise ValueError(
                        f"`extends` entry for `Task` {transformations[i]} is not valid"
                    )
                if qualname != "Task":
                    raise ValueError(
                        f"`extends` ScopedKey ({extended}) does not correspond to a `Task`"
                    )
        for transformation in transformations:
            if transformation.qualname not in TRANSFORMATION_QUALNAMES:
                raise ValueError(
                    f"Got an unsupported `Transformation` type: {transformation.qualname}"
                )
        if not transformations:
            return []
        # As Neo4jStore: every Task takes the scope of the *last* Transformation given (its loop
        # variable outlives the loop); the routes pass Transformations of one scope in practice.
        scope = transformations[-1].scope
        sks = []
        with self._write() as db:
            extends_rows = {}
            for extended in {str(e) for e in extends if e is not None}:
                row = db.execute(
                    "SELECT status, transformation FROM tasks WHERE sk = ?", (extended,)
                ).fetchone()
                if row is None:
                    continue  # a KeyError below, as Neo4jStore's lookup of the missing node
                if row["status"] in (I, D):
                    raise ValueError(f"Cannot extend a `deleted` or `invalid` Task: {extended}")
                extends_rows[extended] = row
            for transformation, extended in zip(transformations, extends, strict=True):
                if (
                    db.execute("SELECT 1 FROM gufe WHERE sk = ?", (str(transformation),)).fetchone()
                    is None
                ):
                    raise KeyError(str(transformation))
                task = Task(creator=creator, extends=str(extended) if extended else None)
                sk = ScopedKey(gufe_key=task.key, **scope.to_dict())
                if extended is not None:
                    row = extends_rows[str(extended)]
                    if row["transformation"] != str(transformation):
                        raise ValueError(
                            f"{extended} extends a Transformation other than {transformation}"
                        )
                db.execute(
                    "INSERT INTO tasks (sk, transformation, status, priority, extends, creator,"
                    " created, org, campaign, project) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(sk),
                        str(transformation),
                        task.status.value,
                        task.priority,
                        task.extends,
                        creator,
                        utc(task.datetime_created),
                        *_scope_columns(scope),
                    ),
                )
                sks.append(sk)
        return sks

    def get_network_tasks(
        self, network: ScopedKey, status: TaskStatusEnum | None = None
    ) -> list[ScopedKey]:
        query = (
            "SELECT t.sk FROM tasks t JOIN network_transformations nt"
            " ON nt.transformation = t.transformation WHERE nt.network = ?"
        )
        values: list[str] = [str(network)]
        if status is not None:
            query += " AND t.status = ?"
            values.append(status.value)
        with self._read() as db:
            return [ScopedKey.from_str(r[0]) for r in db.execute(query, values).fetchall()]

    def get_task_networks(self, task: ScopedKey) -> list[ScopedKey]:
        with self._read() as db:
            rows = db.execute(
                "SELECT nt.network FROM tasks t JOIN network_transformations nt"
                " ON nt.transformation = t.transformation WHERE t.sk = ?",
                (str(task),),
            ).fetchall()
        return [ScopedKey.from_str(r[0]) for r in rows]

    def get_transformation_tasks(
        self,
        transformation: ScopedKey,
        extends: ScopedKey | None = None,
        return_as: str = "list",
        status: TaskStatusEnum | None = None,
    ) -> list[ScopedKey] | dict[ScopedKey, ScopedKey | None]:
        with self._read() as db:
            rows = db.execute(
                "SELECT sk, extends, status FROM tasks WHERE transformation = ?",
                (str(transformation),),
            ).fetchall()
        if status is not None:
            rows = [r for r in rows if r["status"] == status.value]
        if extends is not None:  # the Tasks reached from `extends` by any number of EXTENDS
            reached, frontier = set(), {str(extends)}
            while frontier:
                frontier = {r["sk"] for r in rows if r["extends"] in frontier} - reached
                reached |= frontier
            rows = [r for r in rows if r["sk"] in reached]
        if return_as == "graph":
            return {
                ScopedKey.from_str(r["sk"]): (
                    ScopedKey.from_str(r["extends"]) if r["extends"] else None
                )
                for r in rows
            }
        return [ScopedKey.from_str(r["sk"]) for r in rows]

    def get_task_transformation(self, task: ScopedKey, return_gufe: bool = True) -> tuple[Any, Any]:
        """The Task's Transformation and the result ref of the Task it EXTENDS (any ref, ok or
        not, as Neo4jStore's OPTIONAL MATCH; more than one ref there is Neo4JStoreError, a 500)."""
        with self._read() as db:
            row = db.execute(
                "SELECT transformation, extends FROM tasks WHERE sk = ?", (str(task),)
            ).fetchone()
            if (
                row is None
                or db.execute(
                    "SELECT 1 FROM gufe WHERE sk = ?", (row["transformation"],)
                ).fetchone()
                is None
            ):
                raise KeyError("No such object in database")
            refs = []
            if row["extends"]:
                refs = db.execute(
                    "SELECT sk FROM results WHERE task = ?", (row["extends"],)
                ).fetchall()
        if len(refs) > 1:
            raise Neo4JStoreError(
                "More than one such object in database; this should not be possible"
            )
        transformation = ScopedKey.from_str(row["transformation"])
        ref = ScopedKey.from_str(refs[0]["sk"]) if refs else None
        if return_gufe:
            return self.get_gufe(transformation), (self.get_gufe(ref) if ref else None)
        return transformation, ref

    def get_task_status(self, tasks: list[ScopedKey | None]) -> list[TaskStatusEnum | None]:
        with self._read() as db:
            statuses = []
            for task in tasks:
                row = db.execute("SELECT status FROM tasks WHERE sk = ?", (str(task),)).fetchone()
                statuses.append(TaskStatusEnum(row["status"]) if row else None)
        return statuses

    def set_task_priority(
        self, tasks: list[ScopedKey | None], priority: int
    ) -> list[ScopedKey | None]:
        if not (1 <= priority <= 2**63 - 1):
            raise ValueError("priority must be between 1 and 2**63 - 1, inclusive")
        done = []
        with self._write() as db:
            for task in tasks:
                cur = db.execute(
                    "UPDATE tasks SET priority = ? WHERE sk = ?", (priority, str(task))
                )
                done.append(ScopedKey.from_str(str(task)) if cur.rowcount else None)
        return done

    def get_task_priority(self, tasks: list[ScopedKey | None]) -> list[int | None]:
        with self._read() as db:
            out = []
            for task in tasks:
                row = db.execute("SELECT priority FROM tasks WHERE sk = ?", (str(task),)).fetchone()
                out.append(row["priority"] if row else None)
        return out

    def set_task_status(
        self, tasks: list[ScopedKey | None], status: TaskStatusEnum, raise_error: bool = False
    ) -> list[ScopedKey | None]:
        return getattr(self, f"set_task_{status.value}")(tasks, raise_error=raise_error)

    def _set_status(
        self,
        tasks: Iterable[ScopedKey | None],
        status: str,
        allowed_from: tuple[str, ...] | None,
        *,
        forbidden_from: tuple[str, ...] = (),
        drop_actions: bool = False,
        extenders_too: bool = False,
        raise_error: bool = False,
    ) -> list[ScopedKey | None]:
        """Neo4jStore's ``set_task_<status>`` queries: ``status`` for each Task whose current one
        is in ``allowed_from`` (or not in ``forbidden_from``); its CLAIMS dropped; with
        ``drop_actions`` its ACTIONS too; with ``extenders_too`` every Task extending it, at any
        depth and in any status, gets ``status`` and loses its ACTIONS (invalid, deleted)."""
        done: list[ScopedKey | None] = []
        with self._write() as db:
            for task in tasks:
                row = db.execute("SELECT status FROM tasks WHERE sk = ?", (str(task),)).fetchone()
                current = row["status"] if row else None
                allowed = row is not None and (
                    current in allowed_from if allowed_from else current not in forbidden_from
                )
                if not allowed:
                    if raise_error:
                        raise ValueError(
                            f"Cannot set task {task} with current status: {current} to `{status}`"
                        )
                    done.append(None)
                    continue
                db.execute(
                    "UPDATE tasks SET status = ?, claimed_by = NULL WHERE sk = ?",
                    (status, str(task)),
                )
                affected = [str(task)]
                if extenders_too:
                    frontier = [str(task)]
                    while frontier:
                        rows = db.execute(
                            f"SELECT sk FROM tasks WHERE extends IN ({_in(frontier)})", frontier
                        ).fetchall()
                        frontier = [r[0] for r in rows if r[0] not in affected]
                        affected += frontier
                    if len(affected) > 1:
                        db.execute(
                            f"UPDATE tasks SET status = ? WHERE sk IN ({_in(affected[1:])})",
                            [status, *affected[1:]],
                        )
                if drop_actions:
                    db.execute(f"DELETE FROM actions WHERE task IN ({_in(affected)})", affected)
                done.append(ScopedKey.from_str(str(task)))
        return done

    def set_task_waiting(self, tasks, raise_error: bool = False):
        return self._set_status(tasks, W, (W, R, E), raise_error=raise_error)

    def set_task_running(self, tasks, raise_error: bool = False):
        # From running or waiting; unlike the others it keeps the CLAIMS, as Neo4jStore's.
        done = []
        with self._write() as db:
            for task in tasks:
                cur = db.execute(
                    "UPDATE tasks SET status = ? WHERE sk = ? AND status IN (?, ?)",
                    (R, str(task), R, W),
                )
                if not cur.rowcount and raise_error:
                    raise ValueError(f"Cannot set task {task} to `running`")
                done.append(ScopedKey.from_str(str(task)) if cur.rowcount else None)
        return done

    def set_task_complete(self, tasks, raise_error: bool = False):
        return self._set_status(tasks, C, (C, R), drop_actions=True, raise_error=raise_error)

    def set_task_error(self, tasks, raise_error: bool = False):
        return self._set_status(tasks, E, (E, R), raise_error=raise_error)

    def set_task_invalid(self, tasks, raise_error: bool = False):
        return self._set_status(
            tasks, I, None, forbidden_from=(D,), drop_actions=True, extenders_too=True,
            raise_error=raise_error,
        )  # fmt: skip

    def set_task_deleted(self, tasks, raise_error: bool = False):
        return self._set_status(
            tasks, D, None, forbidden_from=(I,), drop_actions=True, extenders_too=True,
            raise_error=raise_error,
        )  # fmt: skip

    def _status_counts(self, query: str, values: list[str]) -> dict[str, int]:
        with self._read() as db:
            return {r[0]: r[1] for r in db.execute(query, values).fetchall()}

    def get_network_status(self, networks: list[ScopedKey]) -> list[dict[str, int]]:
        return [
            self._status_counts(
                "SELECT t.status, count(*) FROM tasks t JOIN network_transformations nt"
                " ON nt.transformation = t.transformation WHERE nt.network = ? GROUP BY t.status",
                [str(network)],
            )
            for network in networks
        ]

    def get_transformation_status(self, transformation: ScopedKey) -> dict[str, int]:
        return self._status_counts(
            "SELECT status, count(*) FROM tasks WHERE transformation = ? GROUP BY status",
            [str(transformation)],
        )

    def get_scope_status(
        self, scope: Scope, network_state: NetworkStateEnum | str | None = NetworkStateEnum.active
    ) -> dict[str, int]:
        if isinstance(network_state, NetworkStateEnum):
            network_state = network_state.value
        pattern = network_state if network_state is not None else ".*"
        where, values = _scope_where(scope, "t.")
        with self._read() as db:
            rows = db.execute(
                "SELECT DISTINCT t.sk, t.status, n.state FROM tasks t JOIN network_transformations"
                f" nt ON nt.transformation = t.transformation JOIN networks n ON n.sk = nt.network"
                f" {where}",
                values,
            ).fetchall()
        counts: dict[str, set[str]] = {}
        for row in rows:
            if re.fullmatch(pattern, row["state"]):
                counts.setdefault(row["status"], set()).add(row["sk"])
        return {status: len(sks) for status, sks in counts.items()}

    # -- compute services -----------------------------------------------------------------------

    def register_computeservice(self, registration: ComputeServiceRegistration) -> Any:
        if registration.manager_name:
            raise ValueError("Could not find ComputeManagerRegistration")  # managers: not modelled
        # A second registration of the same id breaks the uniqueness constraint: an
        # IntegrityError here, a ConstraintError in Neo4j; the route answers 500 either way.
        with self._write() as db:
            db.execute(
                "INSERT INTO registrations VALUES (?, ?, ?, ?, NULL)",
                (
                    str(registration.identifier),
                    utc(registration.registered),
                    utc(registration.heartbeat),
                    json.dumps([utc(t) for t in registration.failure_times]),
                ),
            )
        return registration.identifier

    def _drop_registration(self, db: sqlite3.Connection, identifier: str) -> None:
        """DETACH DELETE of a registration: its running Tasks go back to waiting, all its
        CLAIMS go."""
        db.execute(
            "UPDATE tasks SET status = ? WHERE claimed_by = ? AND status = ?", (W, identifier, R)
        )
        db.execute("UPDATE tasks SET claimed_by = NULL WHERE claimed_by = ?", (identifier,))
        db.execute("DELETE FROM registrations WHERE identifier = ?", (identifier,))

    def deregister_computeservice(self, compute_service_id: ComputeServiceID) -> ComputeServiceID:
        with self._write() as db:
            row = db.execute(
                "SELECT identifier FROM registrations WHERE identifier = ?",
                (str(compute_service_id),),
            ).fetchone()
            if row is None:
                # Neo4jStore's next() on an empty result: the route answers 500.
                raise KeyError(f"no registration {compute_service_id}")
            self._drop_registration(db, row["identifier"])
        return ComputeServiceID(row["identifier"])

    def heartbeat_computeservice(
        self, compute_service_id: ComputeServiceID, heartbeat: datetime.datetime
    ) -> ComputeServiceID:
        with self._write() as db:  # an unknown id matches nothing: a silent no-op
            db.execute(
                "UPDATE registrations SET heartbeat = ? WHERE identifier = ?",
                (utc(heartbeat), str(compute_service_id)),
            )
        return compute_service_id

    def expire_registrations(self, expire_time: datetime.datetime) -> list[ComputeServiceID]:
        with self._write() as db:
            rows = db.execute(
                "SELECT identifier FROM registrations WHERE heartbeat < ?", (utc(expire_time),)
            ).fetchall()
            for row in rows:
                self._drop_registration(db, row["identifier"])
        return [ComputeServiceID(row["identifier"]) for row in rows]

    def log_failure_compute_service(
        self, compute_service_id: ComputeServiceID, failure_time: datetime.datetime
    ) -> ComputeServiceID:
        with self._write() as db:
            row = db.execute(
                "SELECT failure_times FROM registrations WHERE identifier = ?",
                (str(compute_service_id),),
            ).fetchone()
            if row is not None:  # unknown id: nothing matched, nothing logged
                times = [utc(failure_time), *json.loads(row["failure_times"])]
                db.execute(
                    "UPDATE registrations SET failure_times = ? WHERE identifier = ?",
                    (json.dumps(times), str(compute_service_id)),
                )
        return compute_service_id

    def compute_services_can_claim(
        self,
        compute_service_ids: list[ComputeServiceID],
        forgive_time: datetime.datetime,
        max_failures: int,
    ) -> list[bool]:
        """Failures after ``forgive_time`` ≤ ``max_failures``; older ones are pruned, as
        Neo4jStore does. Unknown ids are left out of the list (so that
        :meth:`compute_service_can_claim` raises IndexError for one: the claim's 500)."""
        can = []
        with self._write() as db:
            for identifier in compute_service_ids:
                row = db.execute(
                    "SELECT failure_times FROM registrations WHERE identifier = ?",
                    (str(identifier),),
                ).fetchone()
                if row is None:
                    continue
                recent = [t for t in json.loads(row["failure_times"]) if t > utc(forgive_time)]
                db.execute(
                    "UPDATE registrations SET failure_times = ? WHERE identifier = ?",
                    (json.dumps(recent), str(identifier)),
                )
                can.append(len(recent) <= max_failures)
        return can

    def compute_service_can_claim(
        self,
        compute_service_id: ComputeServiceID,
        forgive_time: datetime.datetime,
        max_failures: int,
    ) -> bool:
        return self.compute_services_can_claim([compute_service_id], forgive_time, max_failures)[0]

    def registrations(self) -> dict[str, dict[str, Any]]:
        """Registrations by id: registered, heartbeat (datetimes), failure_times (a list)."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM registrations ORDER BY identifier").fetchall()
        return {
            row["identifier"]: {
                "registered": datetime.datetime.fromisoformat(row["registered"]),
                "heartbeat": datetime.datetime.fromisoformat(row["heartbeat"]),
                "failure_times": [
                    datetime.datetime.fromisoformat(t) for t in json.loads(row["failure_times"])
                ],
            }
            for row in rows
        }

    def backdate_heartbeats(self, seconds: float) -> None:
        delta = datetime.timedelta(seconds=seconds)
        with self._write() as db:
            for row in db.execute("SELECT identifier, heartbeat FROM registrations").fetchall():
                older = datetime.datetime.fromisoformat(row["heartbeat"]) - delta
                db.execute(
                    "UPDATE registrations SET heartbeat = ? WHERE identifier = ?",
                    (utc(older), row["identifier"]),
                )

    # -- claiming -------------------------------------------------------------------------------

    @staticmethod
    def _validate_protocols(protocols: list[str]) -> None:
        for protocol in protocols:
            if not re.fullmatch(r"^[a-zA-Z][a-zA-Z0-9_]*$", protocol):
                raise ValueError("Invalid `Protocol` name among `protocols`")

    def claim_taskhub_tasks(
        self,
        taskhub: ScopedKey,
        compute_service_id: ComputeServiceID,
        count: int = 1,
        protocols: list[Any] | None = None,
    ) -> list[ScopedKey | None]:
        """Neo4jStore's claim: waiting Tasks ACTIONed with weight > 0 whose EXTENDS target (if
        any) is complete, of the given protocols; whole priority levels, lowest value first,
        until ``count`` is reached; a weighted random draw within the last level needed.

        The chosen Tasks are returned even when none could be claimed, as Neo4jStore's
        CLAIM_QUERY only MATCHes: a Task already CLAIMed, or a ``compute_service_id`` with no
        registration, leaves the Task as it was (waiting, no CLAIMS) yet it is in the answer.
        """
        from gufe import Protocol

        if protocols is not None and len(protocols) == 0:
            raise ValueError("`protocols` must be either `None` or not empty")
        query = (
            "SELECT t.sk, t.priority, a.weight FROM actions a JOIN tasks t ON t.sk = a.task"
            " LEFT JOIN tasks o ON o.sk = t.extends"
            " WHERE a.taskhub = ? AND t.status = ? AND a.weight > 0"
            " AND (t.extends IS NULL OR o.status = ?)"
        )
        values: list[Any] = [str(taskhub), W, C]
        if protocols is not None:
            protocols = [
                p.__qualname__ if isinstance(p, type) and issubclass(p, Protocol) else p
                for p in protocols
            ]
            self._validate_protocols(protocols)
            query += (
                " AND t.transformation IN (SELECT sk FROM transformations"
                f" WHERE protocol IN ({_in(protocols)}))"
            )
            values += protocols
        query += " ORDER BY t.priority ASC"
        with self._write() as db:
            pool: dict[int, list[tuple[str, float]]] = {}
            for row in db.execute(query, values).fetchall():
                if sum(map(len, pool.values())) >= count and row["priority"] not in pool:
                    break
                pool.setdefault(row["priority"], []).append((row["sk"], row["weight"]))
            tasks: list[ScopedKey] = []
            for _, group in sorted(pool.items()):
                remaining = count - len(tasks)
                if len(group) <= remaining:
                    tasks += [ScopedKey.from_str(sk) for sk, _ in group]
                    if count - len(tasks) == 0:
                        break
                else:
                    picked = _select_tasks_from_taskpool(group, remaining)
                    tasks += [ScopedKey.from_str(str(sk)) for sk in picked]
            registered = db.execute(
                "SELECT 1 FROM registrations WHERE identifier = ?", (str(compute_service_id),)
            ).fetchone()
            if tasks and registered:
                db.executemany(
                    "UPDATE tasks SET status = ?, claimed_by = ?"
                    " WHERE sk = ? AND claimed_by IS NULL",
                    [(R, str(compute_service_id), str(t)) for t in tasks],
                )
        return tasks + [None] * (count - len(tasks))

    # -- results --------------------------------------------------------------------------------

    def set_task_result(self, task: ScopedKey, protocoldagresultref: ProtocolDAGResultRef) -> Any:
        """A new ref RESULTS_IN from the Task, whatever the Task's status (the route then sets
        complete or error only from running)."""
        if task.qualname != "Task":
            raise ValueError("`task` ScopedKey does not correspond to a `Task`")
        ref = protocoldagresultref
        with self._write() as db:
            if db.execute("SELECT 1 FROM tasks WHERE sk = ?", (str(task),)).fetchone() is None:
                raise KeyError("No such object in database")
            sk = self._put_gufe(db, ref, task.scope)
            db.execute(
                "INSERT OR IGNORE INTO results (sk, task, ok, obj_key, location, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(sk),
                    str(task),
                    int(ref.ok),
                    str(ref.obj_key),
                    ref.location,
                    utc(ref.datetime_created or datetime.datetime.now(datetime.UTC)),
                ),
            )
        return sk

    def add_protocol_dag_result_ref_tracebacks(
        self, protocol_unit_failures: list[Any], protocol_dag_result_ref_scoped_key: ScopedKey
    ) -> None:
        ref_sk = protocol_dag_result_ref_scoped_key
        with self._write() as db:
            if db.execute("SELECT 1 FROM results WHERE sk = ?", (str(ref_sk),)).fetchone() is None:
                raise KeyError("Could not find ProtocolDAGResultRef in database.")
            # As Neo4jStore: a failed PDR without a ProtocolUnitFailure (or with an empty
            # traceback) is a ValueError here, after the ref was stored: the push answers 500
            # and the Task stays running.
            tracebacks = Tracebacks(
                [f.traceback for f in protocol_unit_failures],
                [f.source_key for f in protocol_unit_failures],
                [f.key for f in protocol_unit_failures],
            )
            sk = self._put_gufe(db, tracebacks, ref_sk.scope)
            db.execute(
                "INSERT OR REPLACE INTO tracebacks VALUES (?, ?, ?)",
                (str(sk), str(ref_sk), json.dumps(tracebacks.tracebacks)),
            )

    def resolve_task_restarts(self, task_scoped_keys: Iterable[ScopedKey], *, tx=None) -> None:
        """Restart patterns are not modelled: no Task is ever restarted or canceled by one."""

    def _refs(self, query: str, key: ScopedKey, ok: bool) -> list[ScopedKey]:
        with self._read() as db:
            rows = db.execute(query, (str(key), int(ok))).fetchall()
        return [ScopedKey.from_str(row[0]) for row in rows]

    def get_task_results(self, task: ScopedKey) -> list[ScopedKey]:
        return self._refs("SELECT sk FROM results WHERE task = ? AND ok = ?", task, True)

    def get_task_failures(self, task: ScopedKey) -> list[ScopedKey]:
        return self._refs("SELECT sk FROM results WHERE task = ? AND ok = ?", task, False)

    _TF_REFS = (
        "SELECT DISTINCT r.sk FROM results r JOIN tasks t ON t.sk = r.task"
        " WHERE t.transformation = ? AND r.ok = ?"
    )

    def get_transformation_results(self, transformation: ScopedKey) -> list[ScopedKey]:
        return self._refs(self._TF_REFS, transformation, True)

    def get_transformation_failures(self, transformation: ScopedKey) -> list[ScopedKey]:
        return self._refs(self._TF_REFS, transformation, False)

    def tracebacks(self, result: ScopedKey | str) -> list[str]:
        """The tracebacks stored for a failure ref (empty when none)."""
        with self._read() as db:
            row = db.execute(
                "SELECT tracebacks FROM tracebacks WHERE result = ?", (str(result),)
            ).fetchone()
        return json.loads(row["tracebacks"]) if row else []

    # -- direct views for the Standin API -------------------------------------------------------

    def task_rows(self) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT t.*, (SELECT count(*) FROM results r WHERE r.task = t.sk AND r.ok = 1)"
                " AS n_results, (SELECT count(*) FROM results r WHERE r.task = t.sk AND r.ok = 0)"
                " AS n_failures FROM tasks t ORDER BY t.created, t.sk"
            ).fetchall()
        return [
            {
                "key": row["sk"],
                "transformation": row["transformation"],
                "status": row["status"],
                "priority": row["priority"],
                "extends": row["extends"],
                "claimed_by": row["claimed_by"],
                "n_results": row["n_results"],
                "n_failures": row["n_failures"],
            }
            for row in rows
        ]

    def result_rows(self, task: ScopedKey | str, ok: bool) -> list[sqlite3.Row]:
        with self._read() as db:
            return db.execute(
                "SELECT r.*, t.transformation FROM results r JOIN tasks t ON t.sk = r.task"
                " WHERE r.task = ? AND r.ok = ? ORDER BY r.created",
                (str(task), int(ok)),
            ).fetchall()


class ObjectStore(_NotModelled):
    """``S3ObjectStore``'s ProtocolDAGResult methods over a folder, with its location scheme:
    ``protocoldagresult/<org>/<campaign>/<project>/<transformation gufe key>/results|failures/
    <pdr gufe key>/obj.json.zst`` under ``root``. Writes are atomic (temporary file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _store_check(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)

    @staticmethod
    def location(scope: Scope, transformation_key: str, ok: bool, pdr_key: str) -> str:
        route = "results" if ok else "failures"
        return "/".join(
            ("protocoldagresult", *scope.to_tuple(), str(transformation_key), route, str(pdr_key),
             OBJECT_FILENAME)
        )  # fmt: skip

    def push_protocoldagresult(
        self,
        protocoldagresult: bytes,
        protocoldagresult_ok: bool,
        protocoldagresult_gufekey: GufeKey,
        transformation: ScopedKey,
        creator: str | None = None,
    ) -> ProtocolDAGResultRef:
        ok = protocoldagresult_ok
        location = self.location(
            transformation.scope, transformation.gufe_key, ok, protocoldagresult_gufekey
        )
        write_bytes(self.root / location, protocoldagresult)
        return ProtocolDAGResultRef(
            location=location,
            obj_key=protocoldagresult_gufekey,
            scope=transformation.scope,
            ok=ok,
            datetime_created=datetime.datetime.now(tz=datetime.UTC),
            creator=creator,
        )

    def pull_protocoldagresult(
        self,
        protocoldagresult: ScopedKey | None = None,
        transformation: ScopedKey | None = None,
        location: str | None = None,
        ok: bool = True,
    ) -> bytes:
        if location is None:
            if None in (transformation, protocoldagresult):
                raise ValueError(
                    "`transformation` and `protocoldagresult` must both be given if `location` "
                    "is ``None``"
                )
            if transformation.scope != protocoldagresult.scope:
                raise ValueError(
                    f"transformation scope '{transformation.scope}' differs from "
                    f"protocoldagresult scope '{protocoldagresult.scope}'"
                )
            location = self.location(
                protocoldagresult.scope, transformation.gufe_key, ok, protocoldagresult.gufe_key
            )
        return (self.root / location).read_bytes()
