"""Task sources: where Tasks come from and where their outcomes go back to.

A source is anything that satisfies :class:`~fahflow.tasks.base.TaskSource`: the embedded local
queue (:mod:`fahflow.tasks.local`, the default) or alchemiscale's compute API. The rest of fahflow
sees only :class:`~fahflow.tasks.base.ClaimedTask` and never imports gufe.
"""

from __future__ import annotations

from fahflow.config import FahflowConfig
from fahflow.errors import ConfigError
from fahflow.tasks.base import ClaimedTask, TaskSource
from fahflow.tasks.local import LocalQueue

__all__ = ["ClaimedTask", "LocalQueue", "TaskSource", "open_source"]


def open_source(config: FahflowConfig) -> TaskSource:
    """The Task source the config names."""
    if config.tasks.source == "local":
        return LocalQueue(config.tasks.local.path)
    raise ConfigError(
        f"tasks.source: {config.tasks.source!r} is not available in this release: the "
        "alchemiscale adapter needs gufe/openfe/feflow from the conda environment "
        "(environment.yml) and is not written yet; use 'local'"
    )
