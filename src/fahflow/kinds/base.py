"""The seam between the batch steps and what a Task *is*: one interface, one class per kind.

A Task's Transformation arrives as a payload (text) of some kind: a fahflow NEQ spec (YAML,
:mod:`fahflow.kinds.spec`) or a gufe Transformation (JSON, :mod:`fahflow.kinds.gufe`). The steps
never look inside it; they ask its kind:

* ``claim`` → :meth:`TaskKind.claim`: is it runnable here (else the Task is refused at once,
  before anything is staged), how many WUs, and (gufe) the Task's ProtocolDAG, created once and
  stored in the ledger so that a resumed batch reuses the same unit keys;
* ``serialize`` → :meth:`TaskKind.build`: the WU files every Task of the Transformation shares
  (``core.xml``, ``system/state/integrator.xml.bz2``) and the manifest;
* ``analyze`` → :meth:`TaskKind.finish`: after fahflow's own BAR analysis of the collected
  works, what the kind makes of them (gufe: the ProtocolDAGResult and its protocol's estimate);
* ``fahflow results`` → :meth:`TaskKind.gather`: the protocol's pooled estimate over a
  Transformation's Tasks, shown beside fahflow's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from fahflow.errors import FahflowError
from fahflow.outcome import ProtocolOutcome

__all__ = ["WU_FILES", "Claimed", "Manifest", "ProtocolOutcome", "TaskKind", "TaskRefused"]

#: Files every kind writes into the Transformation's folder (``serialize``'s declared outputs).
WU_FILES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")


class TaskRefused(FahflowError):
    """The payload cannot run here (invalid, or a protocol fahflow does not support): the Task is
    failed at the source with this message at claim time, before anything is staged."""


class Claimed(BaseModel):
    """What claim records of a Task besides its payload."""

    name: str = Field(description="human name of the Transformation")
    n_wus: int = Field(ge=1, description="WUs (CLONEs) the Task needs")
    dag: str | None = Field(None, description="the Task's ProtocolDAG, keyed-chain JSON (gufe)")


class Manifest(BaseModel):
    """What serialize built for a Transformation (``manifest.json``); stage reads it."""

    model_config = {"extra": "allow"}  # a kind may add what it needs to remember

    transformation_id: str
    kind: str
    name: str
    n_atoms: int
    nonbonded_method: str
    num_steps: int
    temperature_K: float
    files: dict[str, str]
    setup_failure: str | None = Field(
        None, description="why the setup could not be built (each Task then fails with it)"
    )


class TaskKind(Protocol):
    """One kind of Task payload. Every method is deterministic in its inputs or idempotent: a
    batch may die anywhere and the step runs again."""

    name: str

    def claim(
        self, payload: str, where: str, *, extends: str | None = None, dag_name: str | None = None
    ) -> Claimed:
        """Validate ``payload`` (``where`` names it in messages); raise :class:`TaskRefused`.
        ``extends``: the result of the Task this one extends (alchemiscale), ``dag_name`` the
        name its DAG gets (the source's key of the Task)."""
        ...

    def build(
        self, payload: str, transformation_id: str, out_dir: Path, *, config: Any
    ) -> Manifest:
        """Write :data:`WU_FILES` (and anything else under ``out_dir / "units"``) for the
        Transformation; a setup that fails is reported in ``Manifest.setup_failure``, not
        raised, so that its Tasks fail with the reason instead of the batch."""
        ...

    def finish(
        self,
        *,
        payload: str,
        dag: str | None,
        transformation_dir: Path,
        task_dir: Path,
        globals_by_wu: dict[int, Path],
    ) -> ProtocolOutcome | None:
        """After the works are collected (``globals_by_wu``: WU index → its globals.csv), what
        the kind makes of them; None when it adds nothing (fahflow's own spec)."""
        ...

    def gather(self, payload: str, results: list[Path]) -> tuple[float, float] | None:
        """The kind's own pooled estimate over stored results of one Transformation's Tasks
        (gufe: ``protocol.gather`` of their ProtocolDAGResults): ΔG and σ in kcal/mol, or None
        when the kind has no estimate of its own."""
        ...
