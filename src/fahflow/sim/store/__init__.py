"""The simulator's state in SQLite (``ROOT/sim.sqlite``), split by what it holds.

- :mod:`~fahflow.sim.store.base`: one connection, one lock, transactions, the clock.
- :mod:`~fahflow.sim.store.jobs`: projects and jobs (create, actions, ``jobs?since=``).
- :mod:`~fahflow.sim.store.assignments`: WUs handed to volunteers (assign, return, timeout).
- :mod:`~fahflow.sim.store.as_data`: the assignment server's weights.

:class:`Store` joins them over the one connection; methods raise
:class:`~fahflow.sim.errors.HttpError` (404, 409) as the WS answers.
"""

from __future__ import annotations

from fahflow.sim.store.as_data import AS_SCHEMA, ASTables
from fahflow.sim.store.assignments import ASSIGNMENTS_SCHEMA, Assignment, AssignmentTables
from fahflow.sim.store.base import META_SCHEMA
from fahflow.sim.store.jobs import JOBS_SCHEMA


class Store(AssignmentTables, ASTables):
    """Persistent WS + AS state: every table of the parts above, one transaction at a time."""

    SCHEMA = META_SCHEMA + JOBS_SCHEMA + ASSIGNMENTS_SCHEMA + AS_SCHEMA


__all__ = ["Assignment", "Store"]
