"""Typed models of the work server's (WS) and assignment server's (AS) JSON.

Field names follow the WS adaptive-sampling API (DESIGN §1). Every model ignores unknown fields
so that a newer WS adding a field does not break a running campaign; it validates what we rely on.
The simulator (``fahflow.sim``) does not use these models: it has its own records, and both sides
are pinned to the recorded JSON (``tests/test_ws_contract.py``), not to each other.

The shapes are pinned to the best evidence of real answers: the models of alchemiscale-fah's
``FahAdaptiveSamplingClient`` (``alchemiscale_fah/compute/models.py``), the only client known to
have run against a real WS (``tests/data/ws_shapes/``, docs/simulator.md). Where they are more
lenient than ours we accept what they accept (an integer ``server``, null counters); where they
are stricter (positive ``atoms`` and ``credit``) we warn before sending.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

logger = logging.getLogger(__name__)

MIN_TIMEOUT_S = 300
MAX_RUN_OR_CLONE = 65535


def _parse_core(value: Any) -> int:
    """Accept a core id as ``0x23``/``"0x23"`` (hex string) or as an int (``35``)."""
    bad = ValueError(f"core id must be hex like '0x23' or an integer, got {value!r}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        core = value
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            core = int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            raise bad from None
    else:
        raise bad
    if not 0 <= core <= 0xFF:
        raise ValueError(f"core id must be between 0x00 and 0xff, got {value!r}")
    return core


def _parse_hex_core(value: Any) -> int:
    """ProjectData insists on the hex spelling the WS uses (``"0x23"``)."""
    if isinstance(value, str) and not value.strip().lower().startswith("0x"):
        raise ValueError(f"core_id must be a hex string like '0x23', got {value!r}")
    return _parse_core(value)


def _utc(value: Any) -> Any:
    """Datetimes without a zone are UTC on the WS; make that explicit."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, str) and value and value[-1] not in "Zz" and "+" not in value[10:]:
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            return value
    return value


HexCore = Annotated[
    int, BeforeValidator(_parse_hex_core), PlainSerializer(lambda v: f"0x{v:02x}", return_type=str)
]
Core = Annotated[
    int, BeforeValidator(_parse_core), PlainSerializer(lambda v: f"0x{v:02x}", return_type=str)
]
UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Compression(StrEnum):
    NONE = "NONE"
    BZIP2 = "BZIP2"
    ZLIB = "ZLIB"
    GZIP = "GZIP"
    LZ4 = "LZ4"


class JobState(StrEnum):
    """Job states of the WS. FAILED: the WS gave up after repeated faulty returns."""

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
        """FINISHED and FAILED need an action from us; every other state is work in progress."""
        return self in (JobState.FINISHED, JobState.FAILED)


class JobAction(StrEnum):
    FAIL = "fail"
    RESET = "reset"
    STOP = "stop"
    RESTART = "restart"


class ProjectData(_Model):
    """A FAH PROJECT: WUs of similar cost, credited alike.

    Defaults follow alchemiscale-fah's ``ProjectData``: ``runs``/``clones`` 0 (jobs are created
    one by one through the API, not by the WS from these counts) and ``compression`` ZLIB. It
    requires positive ``atoms`` and ``credit``; we read 0 (a WS answer is a fact) but
    :meth:`to_json`, the form a project is sent and stored in, warns about it.
    """

    core_id: HexCore = Field(description="FAH core type, hex string such as '0x23'")
    contact: str = Field(description="email of the person responsible for the project")
    runs: int = Field(default=0, ge=0, le=MAX_RUN_OR_CLONE + 1)
    clones: int = Field(default=0, ge=0, le=MAX_RUN_OR_CLONE + 1)
    gens: int = Field(default=1, ge=1)
    atoms: int = Field(default=0, ge=0, description="approximate atoms per WU (set it: > 0)")
    credit: int = Field(default=0, ge=0, description="base credit per WU (set it: > 0)")
    timeout: int = Field(
        default=86400, ge=MIN_TIMEOUT_S, description="seconds before a WU is reassigned"
    )
    deadline: int = Field(
        default=172800, ge=MIN_TIMEOUT_S, description="seconds in which a WU earns credit"
    )
    compression: Compression = Compression.ZLIB

    def to_json(self) -> dict[str, Any]:
        """The JSON a project is created with (client) or stored as (simulator); warns when
        ``atoms`` or ``credit`` is 0, which the only client known to have run against a real
        WS refuses (alchemiscale-fah ``ProjectData``: ``PositiveInt``)."""
        for problem in self.problems():
            logger.warning("project settings: %s", problem)
        return self.model_dump(mode="json")

    def problems(self) -> list[str]:
        """Settings a real WS project should not have, each as a message naming the field."""
        return [
            f"{name} is 0: give a positive {name} ({what}); alchemiscale-fah, the only client "
            "known to have created projects on a real WS, requires it"
            for name, what in (("atoms", "approximate atoms per WU"), ("credit", "base credit"))
            if getattr(self, name) == 0
        ]


class JobData(_Model):
    """One CLONE (job) as the WS reports it.

    ``server`` is the WS id, an integer on a real WS (a name is accepted too). ``core``,
    ``last``, ``retries``, ``assigns`` and ``progress`` may be null (not reported): readers
    must cope with ``None``. ``progress`` is a fraction here; alchemiscale-fah declares it an
    integer, so its real scale is unknown and nothing in fahflow decides on it.
    """

    server: int | str | None = None
    core: Core | None = None
    project: int
    run: int = Field(ge=0, le=MAX_RUN_OR_CLONE)
    clone: int = Field(ge=0, le=MAX_RUN_OR_CLONE)
    gen: int = Field(default=0, ge=-1)
    state: JobState
    last: UtcDatetime | None = None
    retries: int | None = 0
    assigns: int | None = 0
    progress: float | None = 0.0


class JobResults(_Model):
    """Answer of ``GET /api/projects/{p}/jobs?since=``: the jobs changed since then, and the
    server time to pass as ``since`` next time (so no change falls between two polls)."""

    jobs: list[JobData] = Field(default_factory=list)
    ts: UtcDatetime


class FileData(_Model):
    path: str
    size: int = Field(ge=0)
    modified: UtcDatetime | None = None


class ASWorkServerData(_Model):
    """AS view of a work server: its share of assignments."""

    max_assign_rate: float | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, ge=0)
    constraints: str = Field(default="", validation_alias=AliasChoices("constraints", "contraints"))


class ASProjectData(_Model):
    """AS view of one project on a work server."""

    ws: str | None = None
    weight: float = Field(default=1.0, ge=0)
    constraints: str = Field(default="", validation_alias=AliasChoices("constraints", "contraints"))
