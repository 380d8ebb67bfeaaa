"""The simulator's JSON log (``ROOT/sim-log.jsonl``): one line per API call and state change.

JSON lines, so that an operator can ``grep``/``jq`` what happened to one PRCG during a rehearsal.
No secrets go in: certificates are named by their common name only.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger("fahflow.sim")


class EventLog:
    """Append-only, thread-safe JSON-lines writer; each line is flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = path.open("a", encoding="utf-8")

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).isoformat(), "event": event, **fields}
        line = json.dumps(record, default=str, sort_keys=False)
        with self._lock:
            if not self._handle.closed:
                self._handle.write(line + "\n")
                self._handle.flush()
        logger.debug("%s", line)

    def read(self, event: str | None = None) -> list[dict[str, Any]]:
        """The records written so far, optionally only those of one ``event`` kind."""
        with self.path.open(encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        return [r for r in records if event is None or r["event"] == event]

    def close(self) -> None:
        with self._lock:
            self._handle.close()
