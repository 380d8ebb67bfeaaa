"""docs/architecture.md shows the state tables the ledger enforces: the doc and the code agree."""

from __future__ import annotations

from pathlib import Path

import fahflow.errors
from fahflow.states import TASK_TRANSITIONS, WU_TRANSITIONS, markdown_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_state_tables_in_the_doc_are_the_ledgers() -> None:
    text = DOC.read_text()
    for table in (TASK_TRANSITIONS, WU_TRANSITIONS):
        assert markdown_table(table) in text, (
            "docs/architecture.md is out of date: paste fahflow.states.markdown_table() output"
        )


def test_the_errors_the_doc_names_exist() -> None:
    text = DOC.read_text()
    for name in ("TransientError", "OutcomeUnknown", "NotFound", "Conflict", "CertificateError"):
        assert name in text and issubclass(getattr(fahflow.errors, name), Exception)
