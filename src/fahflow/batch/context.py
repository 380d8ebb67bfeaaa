"""What every step needs: the config, the ledger, the Task source, a WS client and the way to
the WS's files (staging), made once.

Each is created lazily, so steps that never talk to the work server (serialize, analyze) do not
need its certificates to exist, and colocated staging never makes a client of its own.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from fahflow import atomic
from fahflow.config import FahflowConfig, load_config
from fahflow.ledger import Ledger
from fahflow.outcome import ProtocolOutcome
from fahflow.tasks import TaskSource, open_source
from fahflow.ws.client import WorkServerClient
from fahflow.ws.staging import Staging, open_staging


class BatchContext:
    """Config + ledger + source + WS client of one ``fahflow batch`` command."""

    def __init__(self, config: FahflowConfig) -> None:
        self.config = config
        self.results_dir = config.batch.results_dir

    @classmethod
    def from_file(cls, path: str | Path) -> BatchContext:
        return cls(load_config(path))

    @functools.cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.config.ledger.path)

    @functools.cached_property
    def source(self) -> TaskSource:
        return open_source(self.config)

    @property
    def tls(self) -> dict[str, Any]:
        """``cert=`` and ``verify=`` for a WS or AS client, from the config."""
        ws = self.config.ws
        return {
            "cert": (str(ws.cert), str(ws.key)),
            "verify": str(ws.ca) if isinstance(ws.ca, Path) else ws.ca,
        }

    @functools.cached_property
    def ws(self) -> WorkServerClient:
        ws = self.config.ws
        return WorkServerClient(
            ws.url,
            **self.tls,
            timeout=ws.timeout_s,
            retries=ws.retries,
            create_form=ws.create_form,
        )

    @functools.cached_property
    def staging(self) -> Staging:
        """How stage places WU files and collect fetches results (``ws.staging``)."""
        return open_staging(self.config.ws, lambda: self.ws)

    def close(self) -> None:
        for name in ("ledger", "ws"):
            if name in self.__dict__:
                self.__dict__[name].close()
        if "source" in self.__dict__ and hasattr(self.source, "close"):
            self.source.close()

    def __enter__(self) -> BatchContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- where things live -------------------------------------------------------------------

    def transformation_dir(self, transformation_id: str) -> Path:
        return self.results_dir / "transformations" / transformation_id

    def task_dir(self, task_id: str) -> Path:
        return self.results_dir / "tasks" / task_id

    def protocol_outcome(
        self, task_id: str, globals_by_wu: dict[int, Path]
    ) -> ProtocolOutcome | None:
        """What the Task's kind makes of its collected works (``TaskKind.finish``; gufe: the
        stored ProtocolDAGResult): analyze gives it every WU's globals.csv, stage none (the
        Transformation's setup failed)."""
        from fahflow.kinds import kind_for

        task = self.ledger.task(task_id)
        row = self.ledger.transformation(task.transformation_id)
        return kind_for(row.kind).finish(
            payload=row.payload,
            dag=self.ledger.task_dag(task_id),
            transformation_dir=self.transformation_dir(task.transformation_id),
            task_dir=self.task_dir(task_id),
            globals_by_wu=globals_by_wu,
        )

    def protocol_record(self, task_id: str) -> Path:
        """What a Task's kind recorded when the Task failed before analyze (a failed setup)."""
        return self.task_dir(task_id) / "protocol.json"

    def clone_files_dir(self, task_id: str, run: int, clone: int) -> Path:
        """A CLONE's own State and Integrator, before stage places them (``RUN{r}-CLONE{c}``)."""
        return self.task_dir(task_id) / "clones" / f"RUN{run}-CLONE{clone}"


def write_json(path: Path, data: Any) -> Path:
    """The sentinel/record files of the steps: sorted, indented JSON, written atomically."""
    return atomic.write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
