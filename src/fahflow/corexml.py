"""``core.xml``: the run settings of the FAH OpenMM core, rendered from typed settings.

The core reads one flat ``<config>`` element whose children are its settings (DESIGN §1). Two
mistakes are cheap to make by hand and expensive on FAH, so they are checked here rather than left
to a volunteer's core: ``numSteps`` must cover exactly the cycles the integrator runs (otherwise the
last cycle is cut or the core idles past it), and ``globalVarFreq`` must divide the eq and neq leg
lengths (otherwise no globals.csv row falls on a leg boundary and the work values cannot be read).
Booleans are written as 0/1 because that is what the core parses.

It sits below both the protocol layer and the config (which types the ``core:`` blocks of a spec
and of ``gufe:`` with it), and imports nothing heavier than pydantic.
"""

from __future__ import annotations

from typing import Literal
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fahflow.errors import ConfigError


class CoreSettings(BaseModel):
    """Settings of the FAH OpenMM core that fahflow lets a spec choose.

    Field names are snake_case; each has the core's own spelling as alias (``globalVarFreq``),
    and a spec may use either. ``numSteps`` is not here: it is derived from the protocol
    (:func:`num_steps`) so that it cannot disagree with the integrator.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    xtc_freq: int = Field(0, alias="xtcFreq", ge=0, description="steps between XTC frames; 0 off")
    checkpoint_freq: int = Field(
        -5, alias="checkpointFreq", description="steps between checkpoints; negative = percent"
    )
    viewer_freq: int = Field(-1, alias="viewerFreq", description="viewer frames; negative = %")
    global_var_freq: int = Field(
        1000, alias="globalVarFreq", gt=0, description="steps between globals.csv rows"
    )
    global_var_filename: Literal["globals.csv"] = Field(
        "globals.csv",
        alias="globalVarFilename",
        description="fahflow collects and analyzes globals.csv: no other name is accepted",
    )
    max_retries_from_last_checkpoint: int = Field(2, alias="maxRetriesFromLastCheckpoint", ge=0)
    precision: Literal["single", "mixed", "double"] = "mixed"
    xtc_atoms: str | None = Field(None, alias="xtcAtoms", description="e.g. 'solute'")
    trr_freq: int = Field(0, alias="trrFreq", ge=0)
    force_tolerance: float = Field(5.0, alias="forceTolerance", gt=0, description="kJ/mol/nm")
    energy_tolerance: float = Field(10.0, alias="energyTolerance", gt=0, description="kJ/mol")
    disable_pme_stream: bool = Field(True, alias="DisablePmeStream")
    disable_checkpoint_state_tests: bool = Field(False, alias="disableCheckpointStateTests")
    disable_viewer: bool = Field(False, alias="disableViewer")
    minimize: bool = Field(False, description="the core minimizes before running (we already did)")
    minimize_tolerance: float = Field(10.0, alias="minimizeTolerance", gt=0)
    minimize_max_iterations: int = Field(5000, alias="minimizeMaxIterations", ge=0)

    @model_validator(mode="after")
    def _xtc_atoms_needs_xtc(self) -> CoreSettings:
        if self.xtc_atoms is not None and self.xtc_freq == 0:
            raise ValueError("xtcAtoms is set but xtcFreq is 0 (no trajectory is written)")
        return self


def num_steps(cycles: int, eq_steps: int, neq_steps: int) -> int:
    """Steps one WU runs: each cycle is eq, forward neq, eq, reverse neq."""
    return cycles * (2 * eq_steps + 2 * neq_steps)


def check_schedule(
    settings: CoreSettings, *, cycles: int, eq_steps: int, neq_steps: int, n_steps: int
) -> None:
    """Raise :class:`ConfigError` unless ``n_steps`` and ``globalVarFreq`` fit the cycles."""
    expected = num_steps(cycles, eq_steps, neq_steps)
    if n_steps != expected:
        raise ConfigError(
            f"core.xml numSteps={n_steps} must equal cycles x (2*eq + 2*neq) = "
            f"{cycles} x (2*{eq_steps} + 2*{neq_steps}) = {expected}"
        )
    freq = settings.global_var_freq
    for name, steps in (("eq_steps", eq_steps), ("neq_steps", neq_steps)):
        if steps % freq:
            raise ConfigError(
                f"core.globalVarFreq={freq} must divide {name}={steps}: otherwise no globals.csv "
                "row falls on the leg boundary where the protocol work is read"
            )


def _render_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def render_core_xml(settings: CoreSettings, *, cycles: int, eq_steps: int, neq_steps: int) -> str:
    """Render ``core.xml`` for a WU of ``cycles`` cycles, after checking the schedule.

    Returns the document text: ``<config>`` with ``numSteps`` first, then every setting in field
    order under the core's spelling; unset optional settings are left out (the core's default).
    """
    n_steps = num_steps(cycles, eq_steps, neq_steps)
    check_schedule(settings, cycles=cycles, eq_steps=eq_steps, neq_steps=neq_steps, n_steps=n_steps)
    lines = ["<config>", f"  <numSteps>{n_steps}</numSteps>"]
    for name, field in CoreSettings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        tag = field.alias or name
        lines.append(f"  <{tag}>{escape(_render_value(value))}</{tag}>")
    lines.append("</config>")
    return "\n".join(lines) + "\n"
