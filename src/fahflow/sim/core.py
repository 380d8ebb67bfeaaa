"""Emulation of the Folding@home OpenMM core (core types 0x22/0x23/0x26/0x27) on an unpacked WU.

Reads ``core.xml`` and the serialized System/State/Integrator, runs ``numSteps`` steps and writes
what the real core returns: ``globals.csv`` in the core's layout, ``science.log`` and the final
``checkpointState.xml.bz2``. Layout of globals.csv (verified against a real core file, see
``tests/data/globals-real-core.csv``): ``Step,Time`` (Time in ps, the State's clock),
then the context parameters sorted by name, then every integrator global variable sorted by name;
one row at step 0, every ``globalVarFreq`` steps, and at the last step; numbers to 15 significant
digits. A NaN energy or an OpenMMException makes the WU a faulty return (:class:`FaultyWorkUnit`).
"""

from __future__ import annotations

import bz2
import gzip
import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import openmm

from fahflow.atomic import write_bytes, write_text
from fahflow.errors import ConfigError, FahflowError


class FaultyWorkUnit(FahflowError):
    """The WU blew up (NaN, OpenMMException): the volunteer returns it as faulty."""


@dataclass(frozen=True)
class CoreXml:
    """``core.xml`` as the core reads it: the fields the emulation uses, the real core's defaults
    (DESIGN §1), unknown elements ignored. Not :class:`fahflow.corexml.CoreSettings`,
    which is what *we* allow a spec to write; a test checks that the two agree."""

    numSteps: int
    xtcFreq: int = 0
    checkpointFreq: int = -5
    globalVarFreq: int = 1000
    globalVarFilename: str = "globals.csv"
    precision: str = "single"
    minimize: bool = False
    minimizeTolerance: float = 10.0
    minimizeMaxIterations: int = 0
    maxRetriesFromLastCheckpoint: int = 2

    @classmethod
    def from_xml(cls, path: Path) -> CoreXml:
        """Parse ``<config><numSteps>N</numSteps>...</config>`` (``v="N"`` attributes too).

        Unknown elements (viewerFreq, xtcAtoms, DisablePmeStream, ...) are accepted and ignored.
        """
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            raise ConfigError(f"{path}: cannot read core.xml: {exc}") from None
        raw = {
            el.tag: (el.get("v") if el.get("v") is not None else (el.text or "")).strip()
            for el in root
        }
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in raw:
                continue
            text = raw[field.name]
            kind = field.type if isinstance(field.type, str) else field.type.__name__
            try:
                if kind == "bool":
                    if text not in ("0", "1", "true", "false"):
                        raise ValueError
                    values[field.name] = text in ("1", "true")
                elif kind == "int":
                    values[field.name] = int(text)
                elif kind == "float":
                    values[field.name] = float(text)
                else:
                    values[field.name] = text
            except ValueError:
                raise ConfigError(f"{path}: field {field.name}: bad {kind} {text!r}") from None
        if "numSteps" not in values:
            raise ConfigError(f"{path}: field numSteps is required")
        settings = cls(**values)
        if settings.numSteps < 0:
            raise ConfigError(f"{path}: field numSteps must be ≥ 0, got {settings.numSteps}")
        if settings.globalVarFreq < 0:
            raise ConfigError(
                f"{path}: field globalVarFreq must be ≥ 0, got {settings.globalVarFreq}"
            )
        if settings.precision not in ("single", "mixed", "double"):
            raise ConfigError(
                f"{path}: field precision must be single|mixed|double, got {settings.precision!r}"
            )
        return settings

    @property
    def checkpoint_interval(self) -> int:
        """Steps between checkpoints: ``-N`` means every N% of numSteps; 0 none."""
        if self.checkpointFreq < 0:
            return max(1, self.numSteps * -self.checkpointFreq // 100)
        return self.checkpointFreq


def read_xml_file(wu_dir: Path, stem: str) -> str:
    """The text of ``stem.xml``, ``stem.xml.bz2`` or ``stem.xml.gz`` in ``wu_dir``."""
    for suffix, opener in ((".xml.bz2", bz2.open), (".xml.gz", gzip.open), (".xml", open)):
        path = wu_dir / f"{stem}{suffix}"
        if path.is_file():
            with opener(path, "rt") as handle:
                return handle.read()
    raise ConfigError(f"{wu_dir}: WU has no {stem}.xml[.bz2|.gz]")


def _fmt(value: float) -> str:
    return f"{value:.15g}"


class _Globals:
    """Collects globals.csv rows in the core's column order."""

    def __init__(self, context: openmm.Context, integrator: openmm.Integrator) -> None:
        self.context = context
        self.integrator = integrator
        self.params = sorted(context.getParameters().keys())
        self.globals: list[tuple[str, int]] = []
        if isinstance(integrator, openmm.CustomIntegrator):
            names = [
                integrator.getGlobalVariableName(i)
                for i in range(integrator.getNumGlobalVariables())
            ]
            self.globals = sorted((name, i) for i, name in enumerate(names))
        self.header = ",".join(["Step", "Time", *self.params, *(n for n, _ in self.globals)])
        self.rows: list[tuple[int, str]] = []

    def record(self, step: int) -> None:
        state = self.context.getState(getEnergy=True, getParameters=True)
        energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
        if not math.isfinite(energy):
            raise FaultyWorkUnit(f"potential energy is {energy} at step {step}")
        params = state.getParameters()
        time_ps = state.getTime().value_in_unit(openmm.unit.picosecond)
        cells = [str(step), _fmt(time_ps), *(_fmt(params[p]) for p in self.params)]
        cells += [_fmt(self.integrator.getGlobalVariable(i)) for _, i in self.globals]
        self.rows.append((step, ",".join(cells)))

    def text(self, pause_after: int | None = None, resume_from: int | None = None) -> str:
        """The CSV; with ``pause_after``/``resume_from`` the known core bug after a pause/resume:
        a second header, then the rows from the last checkpoint again."""
        lines = [self.header, *(row for _, row in self.rows)]
        if pause_after is not None and resume_from is not None:
            before = [row for step, row in self.rows if step <= pause_after]
            after = [row for step, row in self.rows if step >= resume_from]
            lines = [self.header, *before, self.header, *after]
        return "\n".join(lines) + "\n"


def _checkpoint(context: openmm.Context, out_dir: Path) -> None:
    state = context.getState(
        getPositions=True, getVelocities=True, getParameters=True, getIntegratorParameters=True
    )
    write_bytes(
        out_dir / "checkpointState.xml.bz2",
        bz2.compress(openmm.XmlSerializer.serialize(state).encode()),
    )


def run_core(
    wu_dir: Path,
    out_dir: Path,
    platform: str = "CPU",
    *,
    threads: int | None = None,
    duplicate_rows: bool = False,
) -> None:
    """Run the WU in ``wu_dir`` as the FAH OpenMM core would; results go to ``out_dir``.

    Parameters
    ----------
    wu_dir:
        Unpacked WU: ``core.xml`` and ``system``/``state``/``integrator`` ``.xml[.bz2|.gz]``.
    out_dir:
        Created if needed; receives ``globals.csv`` (or ``globalVarFilename``), ``science.log``
        and ``checkpointState.xml.bz2``.
    platform:
        OpenMM platform name (CPU, CUDA, OpenCL, Reference). ``precision`` from core.xml is
        applied where the platform has that property (CUDA, OpenCL).
    threads:
        CPU platform threads (default: OpenMM's choice).
    duplicate_rows:
        Emulate the core bug after a pause/resume at the first checkpoint: globals.csv gets a
        second header and the rows since that checkpoint twice.

    Raises
    ------
    ConfigError
        core.xml or a serialized file is missing or malformed (names file and field).
    FaultyWorkUnit
        NaN energy or an OpenMMException while running.
    """
    wu_dir, out_dir = Path(wu_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = CoreXml.from_xml(wu_dir / "core.xml")
    log: list[str] = []

    def say(message: str) -> None:
        log.append(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}")

    say("fahflow emulation of the Folding@home OpenMM core")
    say(f"core.xml: {settings}")
    try:
        system = openmm.XmlSerializer.deserialize(read_xml_file(wu_dir, "system"))
        state = openmm.XmlSerializer.deserialize(read_xml_file(wu_dir, "state"))
        integrator = openmm.XmlSerializer.deserialize(read_xml_file(wu_dir, "integrator"))
    except (OSError, EOFError, openmm.OpenMMException) as exc:
        raise ConfigError(f"{wu_dir}: cannot deserialize WU: {exc}") from exc
    try:
        chosen = openmm.Platform.getPlatformByName(platform)
    except openmm.OpenMMException:
        raise ConfigError(f"OpenMM platform {platform!r} is not available here") from None
    properties: dict[str, str] = {}
    if "Precision" in chosen.getPropertyNames():
        properties["Precision"] = settings.precision
    if threads and "Threads" in chosen.getPropertyNames():
        properties["Threads"] = str(threads)
    say(f"platform {platform} {properties}; {system.getNumParticles()} particles")
    if settings.xtcFreq:
        say(f"xtcFreq={settings.xtcFreq}: trajectory frames are not written by the emulation")

    try:
        context = openmm.Context(system, integrator, chosen, properties)
        context.setState(state)
        if settings.minimize:
            openmm.LocalEnergyMinimizer.minimize(
                context, settings.minimizeTolerance, settings.minimizeMaxIterations
            )
            say("minimized")
        table = _Globals(context, integrator)
        every = settings.globalVarFreq
        ckpt_every = settings.checkpoint_interval
        checkpoints: list[int] = []
        step = 0
        if every:
            table.record(0)
        while step < settings.numSteps:
            stops = [settings.numSteps]
            if every:
                stops.append((step // every + 1) * every)
            if ckpt_every:
                stops.append((step // ckpt_every + 1) * ckpt_every)
            target = min(stops)
            integrator.step(target - step)
            step = target
            if every and (step % every == 0 or step == settings.numSteps):
                table.record(step)
            if ckpt_every and step % ckpt_every == 0 and step < settings.numSteps:
                _checkpoint(context, out_dir)
                checkpoints.append(step)
                say(f"checkpoint at step {step}")
    except openmm.OpenMMException as exc:
        write_text(out_dir / "science.log", "\n".join([*log, f"ERROR {exc}"]) + "\n")
        raise FaultyWorkUnit(f"OpenMM error: {exc}") from exc
    except FaultyWorkUnit as exc:
        write_text(out_dir / "science.log", "\n".join([*log, f"ERROR {exc}"]) + "\n")
        raise

    pause_after = resume_from = None
    if duplicate_rows and every:
        resume_from = checkpoints[0] if checkpoints else (settings.numSteps // 2 // every) * every
        later = [s for s, _ in table.rows if s > resume_from]
        pause_after = later[min(2, len(later) - 1)] if later else resume_from
        say(f"paused after step {pause_after}, resumed from checkpoint at step {resume_from}")
    if every:
        write_text(out_dir / settings.globalVarFilename, table.text(pause_after, resume_from))
    _checkpoint(context, out_dir)
    say(f"completed {settings.numSteps} steps")
    write_text(out_dir / "science.log", "\n".join(log) + "\n")
