"""Typed models of the work server's (WS) and assignment server's (AS) JSON.

Field names follow the WS adaptive-sampling API (DESIGN §1). Every model ignores unknown fields
so that a newer WS adding a field does not break a running campaign; it validates what we rely on.
The simulator (``fahflow.sim``) serializes the same models, so client and server cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

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
    """A FAH PROJECT: WUs of similar cost, credited alike."""

    core_id: HexCore = Field(description="FAH core type, hex string such as '0x23'")
    contact: str = Field(description="email of the person responsible for the project")
    runs: int = Field(default=1, ge=0, le=MAX_RUN_OR_CLONE + 1)
    clones: int = Field(default=1, ge=0, le=MAX_RUN_OR_CLONE + 1)
    gens: int = Field(default=1, ge=1)
    atoms: int = Field(default=0, ge=0, description="approximate atoms per WU")
    credit: int = Field(default=0, ge=0, description="base credit per WU")
    timeout: int = Field(
        default=86400, ge=MIN_TIMEOUT_S, description="seconds before a WU is reassigned"
    )
    deadline: int = Field(
        default=172800, ge=MIN_TIMEOUT_S, description="seconds in which a WU earns credit"
    )
    compression: Compression = Compression.NONE

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class JobData(_Model):
    """One CLONE (job) as the WS reports it."""

    server: str | None = None
    core: Core | None = None
    project: int
    run: int = Field(ge=0, le=MAX_RUN_OR_CLONE)
    clone: int = Field(ge=0, le=MAX_RUN_OR_CLONE)
    gen: int = Field(default=0, ge=-1)
    state: JobState
    last: UtcDatetime | None = None
    retries: int = 0
    assigns: int = 0
    progress: float = 0.0


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
    constraints: str = ""


class ASProjectData(_Model):
    """AS view of one project on a work server."""

    ws: str | None = None
    weight: float = Field(default=1.0, ge=0)
    constraints: str = ""
