"""The transformation spec: one YAML file that says everything a Task's work units need.

A spec names where the system comes from (an OpenMM XML System with a State or PDB, a named
openmmtools test system, or an analytic harmonic oscillator with a known answer), which atoms are
alchemical and how, how the context parameters follow the integrator's ``lambda``, the dynamics
(temperature, timestep, collision rate), the cycle (eq and neq steps per leg, cycles per WU, WUs per
Task) and the core.xml run settings. Everything is validated on load, and every error names the
file, the field and the offending value, because a spec mistake found on FAH costs days.

Units are in the field names (``temperature_K``, ``timestep_fs``); quantities passed through to
openmmtools test systems are strings such as ``"2.0 nanometer"``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fahflow.corexml import CoreSettings, check_schedule, num_steps
from fahflow.errors import ConfigError

#: The context parameter the harmonic source's spring constant follows.
HARMONIC_PARAMETER = "lambda_harmonic"

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_EXPRESSION = re.compile(r"^[A-Za-z0-9_+\-*/^().,<>=! ]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_])(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: Names an expression may use: the integrator's ``lambda`` and OpenMM's (Lepton's) functions.
_EXPRESSION_NAMES = frozenset(
    {
        "lambda",
        "sqrt",
        "exp",
        "log",
        "sin",
        "cos",
        "sec",
        "csc",
        "tan",
        "cot",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "erf",
        "erfc",
        "step",
        "delta",
        "square",
        "cube",
        "recip",
        "min",
        "max",
        "abs",
        "floor",
        "ceil",
        "select",
    }
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HarmonicSource(_Model):
    """Independent 3-D harmonic oscillators whose spring constant follows ``lambda_harmonic``.

    Not an alchemical system (no alchemical factory is involved): it exists because its free
    energy is known exactly, ``ΔF = n_particles · (3/2) · kT · ln(K1/K0)``, which gives the
    analysis an end-to-end check against the truth in seconds of CPU time.
    """

    kind: Literal["harmonic"]
    n_particles: int = Field(1, ge=1, le=1000)
    mass_amu: float = Field(39.948, gt=0)
    k0_kJ_per_mol_per_nm2: float = Field(gt=0, description="spring constant at lambda_harmonic=0")
    k1_kJ_per_mol_per_nm2: float = Field(gt=0, description="spring constant at lambda_harmonic=1")

    def exact_delta_f_kT(self) -> float:
        """Exact free energy of the 0 → 1 change, in kT."""
        return (
            self.n_particles
            * 1.5
            * math.log(self.k1_kJ_per_mol_per_nm2 / self.k0_kJ_per_mol_per_nm2)
        )


class TestSystemSource(_Model):
    """A named ``openmmtools.testsystems`` class with its keyword arguments.

    Quantity arguments are strings ``"<number> <unit>"`` (``"2.0 nanometer"``, ``"9 angstrom"``).
    """

    __test__ = False  # not a pytest test class despite the name

    kind: Literal["testsystem"]
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="e.g. WaterBox")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _exists(cls, value: str) -> str:
        from openmmtools import testsystems

        found = getattr(testsystems, value, None)
        if not (isinstance(found, type) and issubclass(found, testsystems.TestSystem)):
            raise ValueError(f"{value!r} is not an openmmtools.testsystems test system")
        return value


class XmlSource(_Model):
    """An OpenMM System XML plus a State XML or a PDB for the coordinates (paths relative to the
    spec file; ``.bz2`` accepted)."""

    kind: Literal["xml"]
    system: Path
    state: Path | None = None
    pdb: Path | None = None

    @model_validator(mode="after")
    def _one_coordinate_source(self) -> XmlSource:
        if (self.state is None) == (self.pdb is None):
            raise ValueError("give exactly one of 'state' (OpenMM State XML) or 'pdb'")
        return self


Source = Annotated[HarmonicSource | TestSystemSource | XmlSource, Field(discriminator="kind")]


class AlchemicalRegionSpec(_Model):
    """Which atoms are alchemical and whether their interactions are annihilated or decoupled.

    Decoupling (``annihilate_*: false``) keeps the region's interactions with itself and removes
    only those with the environment; annihilating removes both. The openmmtools default, and ours,
    is to annihilate electrostatics and decouple sterics.
    """

    atoms: list[int] = Field(min_length=1, description="0-based atom indices")
    annihilate_electrostatics: bool = True
    annihilate_sterics: bool = False
    softcore_alpha: float = Field(0.5, ge=0)

    @field_validator("atoms")
    @classmethod
    def _unique_nonnegative(cls, atoms: list[int]) -> list[int]:
        if any(a < 0 for a in atoms):
            raise ValueError(f"atom indices must be >= 0, got {atoms}")
        if len(set(atoms)) != len(atoms):
            raise ValueError(f"atom indices must be unique, got {atoms}")
        return sorted(atoms)


class PreparationSpec(_Model):
    """What the builder does before writing the state: minimize, then equilibrate at λ=0."""

    minimize: bool = True
    minimize_tolerance_kJ_per_mol_per_nm: float = Field(10.0, gt=0)
    minimize_max_iterations: int = Field(0, ge=0, description="0 = until converged")
    equilibration_steps: int = Field(1000, ge=0)
    threads: int = Field(
        1, ge=1, description="CPU threads; fixed so that the files are the same bytes every time"
    )


class TransformationSpec(_Model):
    """One alchemical transformation and the NEQ-cycling protocol its Tasks run on FAH.

    Sign convention: the forward leg drives ``lambda`` 0 → 1 and the reverse leg 1 → 0, so the
    free energy the analysis reports is F(λ=1) − F(λ=0). The parameters' meaning at λ=0 and λ=1 is
    set by ``lambda_functions``.
    """

    name: str = Field(pattern=_NAME, description="used in file and directory names")
    description: str = ""
    source: Source
    alchemical: AlchemicalRegionSpec | None = None
    lambda_functions: dict[str, str] = Field(
        min_length=1, description="context parameter -> expression in `lambda`"
    )
    temperature_K: float = Field(gt=0)
    timestep_fs: float = Field(gt=0, le=10)
    collision_rate_per_ps: float = Field(gt=0)
    eq_steps: int = Field(ge=1, description="steps of each equilibrium leg")
    neq_steps: int = Field(ge=1, description="steps of each nonequilibrium leg")
    cycles_per_wu: int = Field(ge=1)
    wus_per_task: int = Field(1, ge=1)
    tasks: int = Field(1, ge=1, description="independent Tasks `fahflow submit` enqueues")
    preparation: PreparationSpec = Field(default_factory=PreparationSpec)
    core: CoreSettings = Field(default_factory=CoreSettings)

    @field_validator("lambda_functions")
    @classmethod
    def _expressions(cls, functions: dict[str, str]) -> dict[str, str]:
        for parameter, expression in functions.items():
            if not _IDENTIFIER.match(parameter):
                raise ValueError(f"{parameter!r} is not a context parameter name")
            if parameter == "lambda":
                raise ValueError("'lambda' is the integrator's own variable, not a parameter")
            if not isinstance(expression, str) or not _EXPRESSION.match(expression):
                raise ValueError(
                    f"{parameter}: {expression!r} is not an expression in lambda "
                    "(e.g. 'max(0, 1 - 2*lambda)')"
                )
            words = _WORD.findall(_NUMBER.sub(" ", expression))
            unknown = sorted(set(words) - _EXPRESSION_NAMES)
            if unknown:
                raise ValueError(
                    f"{parameter}: {expression!r} uses {unknown}; an expression may use only "
                    "`lambda` and OpenMM's functions (min, max, step, sqrt, ...)"
                )
        return functions

    @model_validator(mode="after")
    def _consistent(self) -> TransformationSpec:
        is_harmonic = isinstance(self.source, HarmonicSource)
        if is_harmonic and self.alchemical is not None:
            raise ValueError("'alchemical' does not apply to source kind 'harmonic'")
        if not is_harmonic and self.alchemical is None:
            raise ValueError(f"'alchemical' is required for source kind {self.source.kind!r}")
        if is_harmonic and set(self.lambda_functions) != {HARMONIC_PARAMETER}:
            raise ValueError(
                f"lambda_functions for a harmonic source must drive exactly "
                f"{HARMONIC_PARAMETER!r}, got {sorted(self.lambda_functions)}"
            )
        check_schedule(
            self.core,
            cycles=self.cycles_per_wu,
            eq_steps=self.eq_steps,
            neq_steps=self.neq_steps,
            n_steps=self.num_steps,
        )
        return self

    @property
    def num_steps(self) -> int:
        """core.xml ``numSteps``: cycles × (2·eq + 2·neq)."""
        return num_steps(self.cycles_per_wu, self.eq_steps, self.neq_steps)

    @property
    def kT_kJ_per_mol(self) -> float:
        """Thermal energy at ``temperature_K``."""
        return 0.008314462618 * self.temperature_K

    def exact_delta_f_kT(self) -> float | None:
        """The exact F(λ=1) − F(λ=0) in kT where the source has one (harmonic), else None."""
        if isinstance(self.source, HarmonicSource):
            return self.source.exact_delta_f_kT()
        return None


def _location(loc: tuple[int | str, ...]) -> str:
    # Drop pydantic's union tags (e.g. 'harmonic') so that the path reads as in the YAML.
    parts = [str(p) for p in loc if p not in ("harmonic", "testsystem", "xml")]
    return ".".join(parts) or "(top level)"


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{path}: {_location(item['loc'])}: {message}{shown}")
    return "\n".join(lines)


def _resolve_paths(spec: TransformationSpec, base: Path, path: Path) -> TransformationSpec:
    source = spec.source
    if not isinstance(source, XmlSource):
        return spec
    resolved: dict[str, Path | None] = {}
    for field in ("system", "state", "pdb"):
        value = getattr(source, field)
        if value is None:
            resolved[field] = None
            continue
        full = value if value.is_absolute() else base / value
        if not full.is_file():
            raise ConfigError(f"{path}: source.{field}: file not found: {full}")
        resolved[field] = full
    return spec.model_copy(update={"source": source.model_copy(update=resolved)})


def parse_spec(data: Any, path: str | Path = "<spec>") -> TransformationSpec:
    """Validate an already-parsed spec mapping; errors name ``path`` and the field."""
    path = Path(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a spec must be a YAML mapping, got {type(data).__name__}")
    try:
        spec = TransformationSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None
    return _resolve_paths(spec, path.parent, path)


def load_spec(path: str | Path) -> TransformationSpec:
    """Read and validate a YAML spec. Relative source paths are taken from the spec's folder.

    Raises :class:`~fahflow.errors.ConfigError` naming the file and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read spec: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_spec(data, path)


def example_path(name: str) -> Path:
    """Path of a bundled example, shipped as package data: a fahflow spec (``harmonic``,
    ``water``: YAML) or a gufe Transformation (``benzene_toluene_feflow``: JSON)."""
    from importlib import resources

    base = Path(str(resources.files("fahflow") / "examples"))
    for suffix in (".yaml", ".json"):
        if (base / f"{name}{suffix}").is_file():
            return base / f"{name}{suffix}"
    known = sorted(p.stem for p in (*base.glob("*.yaml"), *base.glob("*.json")))
    raise ConfigError(f"no bundled example {name!r}; known: {', '.join(known)}")
