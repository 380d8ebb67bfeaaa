"""analysis.max_abs_work_kT: in the config with its default, checked, and used by the batch step."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from fahflow.analysis.globals import DEFAULT_MAX_ABS_WORK_KT
from fahflow.analysis.synthetic import globals_csv_text
from fahflow.batch.analyze import analyze
from fahflow.config import load_config
from fahflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def config_with(tmp_path: Path, **analysis: Any) -> Path:
    data = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    data["analysis"].update(analysis)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class FakeLedger:
    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []

    def advance_task(self, task_id: str, state: str, **_: Any) -> None:
        self.states.append((task_id, state))

    def wus(self, task_id: str) -> list:
        return []


def test_default_and_validation(tmp_path: Path) -> None:
    assert load_config(config_with(tmp_path)).analysis.max_abs_work_kT == DEFAULT_MAX_ABS_WORK_KT
    with pytest.raises(ConfigError, match=r"analysis\.max_abs_work_kT"):
        load_config(config_with(tmp_path, max_abs_work_kT=0))


@pytest.mark.parametrize(("bound", "state"), [(None, "analyzed"), (100.0, "failed")])
def test_batch_analyze_uses_the_configured_bound(
    tmp_path: Path, bound: float | None, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"bootstrap": 0} if bound is None else {"bootstrap": 0, "max_abs_work_kT": bound}
    config = load_config(config_with(tmp_path, **settings))
    task_dir = tmp_path / "tasks" / "T1"
    wu = task_dir / "globals" / "PROJ1" / "RUN0" / "CLONE0" / "results0" / "globals.csv"
    wu.parent.mkdir(parents=True)
    wu.write_text(globals_csv_text([(500.0, -490.0)]))  # believable at 1e4 kT, not at 100
    ledger = FakeLedger()
    # A spec Task: its kind adds nothing to fahflow's own analysis.
    ctx = SimpleNamespace(config=config, ledger=ledger, protocol_outcome=lambda *_: None)
    with caplog.at_level(logging.WARNING, logger="fahflow.batch.analyze"):
        outcome = analyze(ctx, "T1", task_dir / "collected.json", task_dir / "analyzed.json")
    assert ledger.states == [("T1", state)]
    if bound is None:
        assert "Task T1: only 1 work pair(s)" in caplog.text  # warnings reach the batch log
    else:
        assert "1 implausible" in outcome["reason"]
    assert json.loads((task_dir / "analyzed.json").read_text())["status"] == outcome["status"]
