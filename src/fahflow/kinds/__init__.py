"""Kinds of Task payload (:mod:`fahflow.kinds.base`): fahflow's own NEQ spec and gufe
Transformations. :func:`kind_for` returns the implementation; the gufe one is imported only when
a gufe Task is met, so a batch of spec Tasks never loads gufe."""

from __future__ import annotations

from fahflow.errors import ConfigError
from fahflow.kinds.base import TaskKind

KINDS = ("spec", "gufe")


def kind_for(name: str) -> TaskKind:
    """The implementation of kind ``name``."""
    if name == "spec":
        from fahflow.kinds.spec import SpecKind

        return SpecKind()
    if name == "gufe":
        try:
            from fahflow.kinds.gufe import GufeKind
        except ImportError as exc:
            raise ConfigError(
                f"a gufe Transformation needs the gufe stack ({exc.name} is missing): install "
                "the conda environment (environment.yml) or `pip install -e .[gufe]` with the "
                "wheelhouse (README)"
            ) from None
        return GufeKind()
    raise ConfigError(f"unknown kind of Task {name!r}: fahflow knows {', '.join(KINDS)}")


def kind_of_file(path: str) -> str:
    """The kind a submitted file holds, from its name: JSON is gufe, YAML a fahflow spec."""
    return "gufe" if str(path).lower().endswith(".json") else "spec"
