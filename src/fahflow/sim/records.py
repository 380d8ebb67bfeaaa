"""The simulator's own representation of what a WS and an AS hold, and its JSON.

Deliberately not :mod:`fahflow.ws.models`: the client and the simulator are two readings of the
same real WS, and sharing one set of models would make a misreading invisible. Each record here
serializes to the JSON shapes on record (``tests/data/ws_shapes/``, taken from alchemiscale-fah's
models, the only client known to have run against a real WS); ``tests/test_ws_contract.py`` pins
both the simulator's answers and the client to those files, not to each other.

Request bodies are checked here explicitly (``from_json``): a bad field is an
:class:`~fahflow.sim.errors.HttpError` 400 naming the field and the value. Unknown fields are
ignored, as a WS that is newer or older than its client would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fahflow.sim.errors import bad_request

MAX_RUN_OR_CLONE = 65535
MAX_PROJECT = 2**31 - 1
MIN_TIMEOUT_S = 300
COMPRESSIONS = ("NONE", "BZIP2", "ZLIB", "GZIP", "LZ4")


class JobState(StrEnum):
    """FAH job states. The simulator moves jobs through NEW, READY, ASSIGNED, FINISHED, FAILED
    and STOPPED (store/jobs.py); PROCESSING and HELD exist on a real WS and are accepted."""

    NEW = "NEW"
    READY = "READY"
    ASSIGNED = "ASSIGNED"
    PROCESSING = "PROCESSING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    HELD = "HELD"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.FINISHED, JobState.FAILED)


class JobAction(StrEnum):
    """The job-control verbs of ``PUT .../clones/{c}/{action}``."""

    FAIL = "fail"
    RESET = "reset"
    STOP = "stop"
    RESTART = "restart"


def utc_json(moment: datetime) -> str:
    """``2026-11-26T14:30:00.123456Z``: the spelling of the times on record."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def core_hex(core: int) -> str:
    return f"0x{core:02x}"


# -- checks of request bodies -----------------------------------------------------------------


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"{what} must be a JSON object, got {body!r}")
    return body


def _int(body: dict[str, Any], what: str, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(f"{what} field {name!r}: must be an integer {low}..{high}, got {value!r}")
    return value


def _number(body: dict[str, Any], what: str, name: str, default: float | None) -> float | None:
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise bad_request(f"{what} field {name!r}: must be a number ≥ 0, got {value!r}")
    return float(value)


def _str(body: dict[str, Any], what: str, name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        need = "is required (a string)" if value is None else "must be a string"
        raise bad_request(f"{what} field {name!r} {need}, got {value!r}")
    return value


def parse_core(value: Any, what: str = "project field 'core_id'") -> int:
    """A core type as the WS spells it (``"0x23"``) or as an integer (35)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text.startswith("0x") and len(text) > 2 and all(c in "0123456789abcdef" for c in text[2:]):
        value = int(text, 16)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise bad_request(f"{what}: must be a hex string 0x00..0xff like '0x23', got {value!r}")
    return value


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    """A FAH PROJECT's settings (ProjectData on record, defaults as alchemiscale-fah's)."""

    core_id: int
    contact: str
    runs: int = 0
    clones: int = 0
    gens: int = 1
    atoms: int = 0
    credit: int = 0
    timeout: int = 86400
    deadline: int = 172800
    compression: str = "ZLIB"

    @classmethod
    def from_json(cls, body: Any) -> Project:
        what = "project"
        data = _object(body, what)
        if "core_id" not in data:
            raise bad_request("project field 'core_id' is required (a hex string like '0x23')")
        compression = data.get("compression", "ZLIB")
        if compression not in COMPRESSIONS:
            raise bad_request(
                f"project field 'compression': must be one of {COMPRESSIONS}, got {compression!r}"
            )
        counts = MAX_RUN_OR_CLONE + 1
        big = 2**31 - 1
        return cls(
            core_id=parse_core(data["core_id"]),
            contact=_str(data, what, "contact"),
            runs=_int(data, what, "runs", 0, 0, counts),
            clones=_int(data, what, "clones", 0, 0, counts),
            gens=_int(data, what, "gens", 1, 1, big),
            atoms=_int(data, what, "atoms", 0, 0, big),
            credit=_int(data, what, "credit", 0, 0, big),
            timeout=_int(data, what, "timeout", 86400, MIN_TIMEOUT_S, big),
            deadline=_int(data, what, "deadline", 172800, MIN_TIMEOUT_S, big),
            compression=compression,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "core_id": core_hex(self.core_id),
            "contact": self.contact,
            "runs": self.runs,
            "clones": self.clones,
            "gens": self.gens,
            "atoms": self.atoms,
            "credit": self.credit,
            "timeout": self.timeout,
            "deadline": self.deadline,
            "compression": self.compression,
        }


@dataclass(frozen=True)
class Job:
    """One CLONE as the WS reports it (JobData on record: integer ``server`` and ``core``)."""

    server: int
    core: int | None
    project: int
    run: int
    clone: int
    gen: int
    state: JobState
    last: datetime
    retries: int
    assigns: int
    progress: float

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "core": self.core,
            "project": self.project,
            "run": self.run,
            "clone": self.clone,
            "gen": self.gen,
            "state": self.state.value,
            "last": utc_json(self.last),
            "retries": self.retries,
            "assigns": self.assigns,
            "progress": self.progress,
        }


@dataclass(frozen=True)
class JobsAnswer:
    """The answer of ``GET /api/projects/{p}/jobs?since=``: changed jobs, and the ``since`` for
    next time."""

    jobs: list[Job]
    ts: datetime

    def to_json(self) -> dict[str, Any]:
        return {"jobs": [job.to_json() for job in self.jobs], "ts": utc_json(self.ts)}


@dataclass(frozen=True)
class FileEntry:
    """One file of a listing (FileData on record: ``path``, ``size``, ``modified``)."""

    path: str
    size: int
    modified: datetime

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "modified": utc_json(self.modified)}


def _constraints(data: dict[str, Any], what: str) -> str:
    """The constraints field, read in either spelling: ``contraints`` is the one on record."""
    key = "contraints" if "contraints" in data else "constraints"
    return _str(data, what, key, "")


@dataclass(frozen=True)
class ASWorkServer:
    """The AS's view of a WS (ASWorkServerData on record, field spelled ``contraints``)."""

    max_assign_rate: float | None = None
    weight: float = 1.0
    constraints: str = ""

    @classmethod
    def from_json(cls, body: Any) -> ASWorkServer:
        what = "AS work server"
        data = _object(body, what)
        return cls(
            max_assign_rate=_number(data, what, "max_assign_rate", None),
            weight=_number(data, what, "weight", 1.0) or 0.0,
            constraints=_constraints(data, what),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "max_assign_rate": self.max_assign_rate,
            "weight": self.weight,
            "contraints": self.constraints,
        }


@dataclass(frozen=True)
class ASProject:
    """The AS's view of one project on a WS (ASProjectData on record)."""

    ws: str | None = None
    weight: float = 1.0
    constraints: str = ""

    @classmethod
    def from_json(cls, body: Any) -> ASProject:
        what = "AS project"
        data = _object(body, what)
        ws = data.get("ws")
        if ws is not None and not isinstance(ws, str):
            raise bad_request(f"AS project field 'ws' must be a string, got {ws!r}")
        return cls(
            ws=ws,
            weight=_number(data, what, "weight", 1.0) or 0.0,
            constraints=_constraints(data, what),
        )

    def to_json(self) -> dict[str, Any]:
        return {"ws": self.ws, "weight": self.weight, "contraints": self.constraints}
