"""The Outcome model: what a Task ends with, as analyze writes it and a source stores it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from fahflow.outcome import Outcome, PairedWork

WORK = PairedWork(key="P1/R0/C0/G0/cycle0", group="P1/R0/C0", w_F_kT=2.0, w_R_kT=-1.5)


def test_an_outcome_round_trips_through_its_json() -> None:
    outcome = Outcome(status="ok", task_id="t", Delta_f_kT=1.7, sigma_kT=0.2, temperature_K=300,
                      works=[WORK])  # fmt: skip
    data = json.loads(outcome.to_json())
    assert data["status"] == "ok" and data["works"][0]["w_F_kT"] == 2.0
    assert "reason" not in data  # no null fields: flat keys as earlier releases wrote them
    assert Outcome.model_validate_json(outcome.to_json()) == outcome


def test_an_outcome_says_what_it_lacks() -> None:
    with pytest.raises(ValidationError, match="a failed outcome needs its reason"):
        Outcome(status="failed")
    with pytest.raises(ValidationError, match="an ok outcome needs its works"):
        Outcome(status="ok", Delta_f_kT=1.0)
    with pytest.raises(ValidationError, match="status"):
        Outcome(status="complete", reason="x")
    assert not Outcome.failure("WU FAILED").ok
