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
    try:
        import alchemiscale.compute.client  # noqa: F401  (the source's one dependency)

        from fahflow.tasks.alchemiscale import AlchemiscaleSource
    except ImportError as exc:
        raise ConfigError(
            f"tasks.source: alchemiscale needs alchemiscale and the gufe stack "
            f"(environment.yml; here scripts/bootstrap installs them): {exc}"
        ) from None
    return AlchemiscaleSource(config.tasks.alchemiscale, config.tasks.service_id)
