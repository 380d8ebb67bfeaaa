"""How a Task ended: the one model that analyze writes, push sends, a Task source stores and
``fahflow status``/``results`` read back.

A Task ends either with an estimate (``ok``: ΔG ± σ and every paired work it came from, so a
Transformation's Tasks can be pooled later) or with a failure and its reason (``failed``). Its
JSON (``outcome.json``, and what the local queue keeps) is flat and stable: readers written
against an earlier release still find ``status``, ``Delta_f_kT``, ``works`` where they were.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PairedWork(BaseModel):
    """One forward/reverse work pair, keyed by PRCG and cycle; ``group`` (the CLONE) is the
    unit of the bootstrap."""

    key: str
    group: str
    w_F_kT: float
    w_R_kT: float


class ExcludedWorkUnit(BaseModel):
    """A WU whose works were left out of the estimate, and why (its analysis status)."""

    key: str
    status: str
    reason: str | None = None


class ProtocolOutcome(BaseModel):
    """What a kind adds to a Task's outcome (gufe: the stored ProtocolDAGResult)."""

    ok: bool
    protocol: str = Field(description="the protocol's class name")
    protocol_dag_result: str = Field(description="path of the stored ProtocolDAGResult JSON")
    Delta_f_kcal_per_mol: float | None = None
    sigma_kcal_per_mol: float | None = None
    failure: str | None = Field(None, description="the failed units and their tracebacks")


class Outcome(BaseModel):
    """The end of one Task."""

    model_config = ConfigDict(extra="ignore")  # outcomes written by later releases still read

    status: Literal["ok", "failed"]
    task_id: str | None = Field(None, description="the ledger's id (None: refused at claim)")
    reason: str | None = Field(None, description="why it failed")
    analysis: str | None = Field(None, description="path of the full analysis.json")
    Delta_f_kT: float | None = None
    sigma_kT: float | None = None
    Delta_f_kcal_per_mol: float | None = None
    sigma_kcal_per_mol: float | None = None
    temperature_K: float | None = None
    n_pairs: int | None = None
    status_counts: dict[str, int] = Field(default_factory=dict)
    works: list[PairedWork] = Field(default_factory=list)
    excluded: list[ExcludedWorkUnit] = Field(default_factory=list)
    protocol: ProtocolOutcome | None = Field(
        None, description="what the Task's kind made of the works (gufe: its ProtocolDAGResult)"
    )

    @model_validator(mode="after")
    def _complete(self) -> Outcome:
        if self.status == "failed" and not self.reason:
            raise ValueError("a failed outcome needs its reason")
        if self.status == "ok" and (self.temperature_K is None or not self.works):
            raise ValueError("an ok outcome needs its works and their temperature")
        return self

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failure(cls, reason: str, task_id: str | None = None) -> Outcome:
        return cls(status="failed", reason=reason, task_id=task_id)

    def to_json(self) -> str:
        """Sorted keys, no null fields: what outcome.json and the local queue hold."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True)
