"""Named points where a test can kill a batch with SIGKILL, to prove that every line resumes.

``FAHFLOW_FAILPOINT=create.after_call`` makes the first process that reaches that point kill its
whole process group (Snakemake and every job it runs), exactly as ``kill -9`` of a cron batch
would. Unset, which is always the case outside the tests, a failpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "FAHFLOW_FAILPOINT"


def failpoint(name: str) -> None:
    """Kill this batch (SIGKILL to the process group) if ``$FAHFLOW_FAILPOINT`` is ``name``."""
    if os.environ.get(ENV) == name:
        os.killpg(os.getpgrp(), signal.SIGKILL)
