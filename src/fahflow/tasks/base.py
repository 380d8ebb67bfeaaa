"""The small interface every Task source implements."""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from pydantic import BaseModel, Field

from fahflow.outcome import Outcome

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_id(text: str, *, max_len: int = 80) -> str:
    """An id that is safe as one path component and a Snakemake wildcard: ``[A-Za-z0-9_-]+``.

    Anything else (dots, slashes, spaces) becomes ``_``; ``..`` can therefore never appear.
    """
    cleaned = _UNSAFE.sub("_", text).strip("_")[:max_len]
    if not cleaned:
        raise ValueError(f"cannot make a safe id from {text!r}")
    return cleaned


def task_id_for(key: str) -> str:
    """The ledger's id of the Task the source calls ``key``: a readable, safe prefix of the key
    plus 16 hex digits of its SHA-256, so keys that sanitize alike (``col/1``, ``col_1``,
    ``col.1``) or share their first 64 characters still get different ids.

    At most 81 characters of ``[A-Za-z0-9_-]``: one path component and one Snakemake wildcard,
    with room for alchemiscale's ``Task-<32 hex>-<org>-<campaign>-<project>`` keys. Injective
    up to a 64-bit hash collision, which the ledger refuses loudly rather than merging.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    prefix = _UNSAFE.sub("_", key).strip("_")[:64].rstrip("_") or "task"
    return f"{prefix}-{digest}"


class ClaimedTask(BaseModel):
    """A Task handed to this service, with everything needed to run it."""

    key: str = Field(description="the source's own id of the Task")
    task_id: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="safe id used in paths")
    transformation_id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(description="human name of the Transformation")
    payload: str = Field(description="the Transformation, as its kind reads it")
    kind: str = Field("spec", description="fahflow.kinds: 'spec' (fahflow YAML) or 'gufe'")
    extends: str | None = Field(
        None, description="the result (gufe: ProtocolDAGResult JSON) of the Task this one extends"
    )
    dag_name: str | None = Field(None, description="the name of the Task's DAG (gufe)")


class TaskSource(Protocol):
    """Where Tasks come from. Every method is idempotent: a batch may be killed between any two
    calls and the next batch calls them again."""

    name: str

    def claim(self, service_id: str, count: int) -> list[ClaimedTask]:
        """Hand out up to ``count`` new Tasks to ``service_id``."""
        ...

    def claimed_keys(self, service_id: str) -> set[str]:
        """Keys of every Task currently claimed by ``service_id`` and not finished."""
        ...

    def get(self, key: str) -> ClaimedTask:
        """One Task by key (to repair a claim that was interrupted)."""
        ...

    def push(self, key: str, outcome: Outcome) -> bool:
        """Record the Task's outcome (a result or a failure with its reason); False if the Task
        already had one (nothing changed: the first outcome stands)."""
        ...

    def has_outcome(self, key: str) -> bool:
        """Whether the Task already has a result or failure (checked before every push, so a
        push interrupted before the ledger recorded it is not sent twice)."""
        ...
