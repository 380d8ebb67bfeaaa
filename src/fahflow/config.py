"""The workflow's configuration (``config/config.yaml``): one pydantic model, one loader.

Snakemake validates the same file against ``workflow/schemas/config.schema.yaml``, which is
generated from :class:`FahflowConfig` (``fahflow config-schema``), so the schema, the library and
the docs cannot drift apart. Every ``fahflow`` verb that a rule calls loads the file through
:func:`load_config`; relative paths in it are relative to the directory snakemake runs in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fahflow.corexml import CoreSettings
from fahflow.errors import ConfigError
from fahflow.nonbonded import NONBONDED_METHODS, canonical_method

M = TypeVar("M", bound=BaseModel)


def validation_message(source: str | Path, exc: ValidationError) -> str:
    """One line per problem, each naming the file, the dotted key and the offending value."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        value = repr(err.get("input"))
        if len(value) > 80:
            value = value[:77] + "..."
        lines.append(f"{source}: {key}: {err['msg']} (got {value})")
    return "\n".join(lines)


def yaml_error_message(path: str | Path, exc: yaml.YAMLError) -> str:
    """One line naming the file, the line and column, and PyYAML's problem.

    PyYAML's own text spans several lines and calls the file ``<unicode string>``.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where}: not valid YAML: {detail}: fix the file (see config/README.md)"


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    """Read a YAML mapping from ``path`` and validate it as ``model``; errors name file and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error_message(path, exc)) from None
    return validate_model(data, model, path)


def validate_model(data: Any, model: type[M], source: str | Path) -> M:
    """Validate a parsed mapping as ``model``; errors name ``source``, the key and the value."""
    if data is None:
        raise ConfigError(
            f"{source}: the file is empty: it must be a YAML mapping of settings "
            "(see config/README.md and config/config.yaml)"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of settings (key: value) at the top, got a "
            f"{type(data).__name__} ({str(data)[:60]!r}): see config/README.md"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(source, exc)) from None


# Strings that mean "off" to YAML 1.1, to people, or to requests (``verify="0"`` would be a path).
_OFF_WORDS = frozenset({"", "false", "no", "n", "off", "0", "none", "null", "disable", "disabled"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkServerSettings(_Section):
    """How to reach the work server and where its files live."""

    url: str = Field(description="base URL of the WS API, e.g. https://ws.example.org")
    cert: Path = Field(description="operator certificate (PEM) issued by the AS")
    key: Path = Field(description="private key of the operator certificate (PEM, mode 0600)")
    ca: Path | Literal[True] = Field(
        True,
        description="CA bundle that signed the WS certificate, or true for the system CAs; "
        "verification is never turned off",
    )
    as_url: str | None = Field(
        None, description="assignment server URL: each batch renews the certificate through it"
    )
    renew_below: float = Field(
        0.3, gt=0, lt=1, description="renew when less than this fraction of its lifetime is left"
    )
    timeout_s: tuple[float, float] = Field(
        (5.0, 60.0), description="(connect, read) HTTP timeouts in seconds"
    )
    retries: int = Field(5, ge=0, le=20, description="retries of idempotent calls on 429/502-504")
    create_form: Literal["clone", "run-offset", "run-count"] = Field(
        "clone",
        description="shape of the CLONE-create call: per-CLONE path (WS >= 10.3.4), or the "
        "RUN-level action with {clones: 1, offset: c} or {clones: c+1}",
    )
    staging: Literal["colocated", "api"] = Field(
        "colocated",
        description="colocated: write WU files straight into data_dir (fahflow runs on the WS "
        "host); api: upload them through the WS file API",
    )
    data_dir: Path | None = Field(
        None, description="WS data directory holding PROJ{p}/ (colocated staging and results)"
    )
    send: list[str] = Field(
        default_factory=lambda: [
            "$home/RUN$run/core.xml",
            "$home/RUN$run/system.xml.bz2",
            "$home/RUN$run/state.xml.bz2",
            "$home/RUN$run/integrator.xml.bz2",
        ],
        description="the <send> list of the WS config.xml core block: where each WU file must "
        "be before create is called ($home, $run, $clone are substituted)",
    )
    results: str = Field(
        "$home/RUN$run/CLONE$clone/results$gen",
        description="where the WS puts a returned GEN's files",
    )
    poll_overlap_s: float = Field(
        60.0, ge=0, description="each jobs?since= poll reaches this far behind the last one"
    )

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError("the WS API is HTTPS only: the URL must start with https://")
        return url.rstrip("/")

    @field_validator("ca", mode="before")
    @classmethod
    def _verification_stays_on(cls, ca: Any) -> Any:
        """Refuse every spelling of "off" (YAML reads ``no``/``off`` as false) before pydantic
        could coerce it: a batch must never talk to a work server whose identity is unchecked."""
        number = isinstance(ca, int | float) and not isinstance(ca, bool)  # 0 reads as false
        word = isinstance(ca, str) and ca.strip().lower() in _OFF_WORDS
        if ca is False or ca is None or number or word:
            raise ValueError(
                "TLS verification of the work server cannot be turned off: set ca to the path of "
                "the CA bundle that signed the WS certificate, or to true for the system CAs"
            )
        return ca

    @field_validator("send")
    @classmethod
    def _send_names(cls, send: list[str]) -> list[str]:
        names = [Path(item).name for item in send]
        if len(set(names)) != len(names):
            raise ValueError("two <send> entries share a file name")
        for item in send:
            if not item.startswith("$home/"):
                raise ValueError(f"{item!r} must start with $home/")
        return send

    @model_validator(mode="after")
    def _data_dir_for_colocated(self) -> WorkServerSettings:
        if self.staging == "colocated" and self.data_dir is None:
            raise ValueError("data_dir is required when staging is colocated")
        return self


class ProjectSettings(_Section):
    """One FAH PROJECT: an effort bucket (atoms and nonbonded method)."""

    id: int = Field(ge=1, le=2**31 - 1, description="FAH project number")
    atoms: int = Field(ge=1, description="atoms of the largest system this project takes")
    nonbonded_method: str = Field(
        "PME", description="OpenMM nonbonded method: PME (effort n ln n), NoCutoff (n^2), ..."
    )
    core_id: str = Field("0x23", description="FAH core type (hex)")
    contact: str = Field(description="email of the person responsible")
    credit: int = Field(
        ge=1, description="base credit per WU (positive: the WS refuses a project without it)"
    )
    timeout: int = Field(86400, ge=300, description="seconds before a WU is reassigned")
    deadline: int = Field(172800, ge=300, description="seconds in which a WU earns credit")

    @field_validator("nonbonded_method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        try:
            return canonical_method(method)
        except ConfigError:
            raise ValueError(f"must be one of {', '.join(NONBONDED_METHODS)}") from None


class LocalQueueSettings(_Section):
    path: Path = Field(Path("run/queue.sqlite"), description="SQLite file of the local queue")


class AlchemiscaleCredentials(_Section):
    """How to reach an alchemiscale API as one identity. Each value left out comes from
    alchemiscale's own environment variables (``ALCHEMISCALE_URL``, ``ALCHEMISCALE_ID``,
    ``ALCHEMISCALE_KEY``); the key itself is never written in the config, only a file holding it.
    """

    url: str | None = Field(None, description="API URL (default: $ALCHEMISCALE_URL)")
    identifier: str | None = Field(None, description="identity (default: $ALCHEMISCALE_ID)")
    key_file: Path | None = Field(
        None, description="file holding the identity's key, mode 0600 (default: $ALCHEMISCALE_KEY)"
    )


class PushCheckSettings(AlchemiscaleCredentials):
    """A *user* identity on alchemiscale's interface API, used for one thing only: to settle a
    result push whose answer was lost (the compute API cannot say whether it arrived). Without
    it such a push is held for the operator (``fahflow alchemiscale settle``)."""

    url: str | None = Field(None, description="interface API URL (required to check pushes)")
    identifier: str | None = Field(None, description="user identity")


class AlchemiscaleSettings(_Section):
    """``tasks.alchemiscale``: fahflow as one alchemiscale compute service (docs/alchemiscale.md).

    The retry settings bound the client's blocking retries: with the defaults a call to an
    unreachable API gives up after at most ``max_retries`` waits of ``retry_max_seconds`` (plus
    jitter), and no single call may take longer than ``call_timeout_s``.
    """

    compute: AlchemiscaleCredentials = Field(default_factory=AlchemiscaleCredentials)
    scopes: list[str] = Field(
        ["*-*-*"], min_length=1, description="scopes to claim from (org-campaign-project, * wild)"
    )
    scopes_exclude: list[str] = Field([], description="scopes never claimed from")
    protocols: list[str] | None = Field(
        None,
        description="protocol class names to claim (default: every protocol fahflow runs: "
        "NonEquilibriumCyclingProtocol, FahNonEquilibriumCyclingProtocol)",
    )
    registration_expire_s: float = Field(
        1800.0, gt=0, description="the server's registration timeout (its "
        "ALCHEMISCALE_COMPUTE_API_REGISTRATION_EXPIRE_SECONDS): a registration whose last "
        "heartbeat is older is dropped and its running Tasks return to waiting; run batches "
        "(cron) well inside it",
    )  # fmt: skip
    heartbeat_warn_fraction: float = Field(
        0.66, gt=0, lt=1, description="fahflow status warns once the last heartbeat is older "
        "than this fraction of registration_expire_s",
    )  # fmt: skip
    max_retries: int = Field(2, ge=0, description="client retries of 404/502/503/504 and resets")
    retry_base_seconds: float = Field(2.0, gt=1, description="backoff base (seconds, > 1)")
    retry_max_seconds: float = Field(8.0, gt=0, description="longest wait between retries")
    call_timeout_s: float = Field(
        120.0, gt=0, description="longest one client call may block, retries included"
    )
    state: Path = Field(
        Path("run/alchemiscale.sqlite"),
        description="the source's ledger: compute-service registration, claims and pushes",
    )
    check_pushes: PushCheckSettings | None = Field(
        None, description="a user identity to settle lost push answers (see docs)"
    )

    @field_validator("scopes", "scopes_exclude")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        for scope in scopes:
            parts = scope.split("-")
            if len(parts) != 3 or not all(p == "*" or p.isalnum() for p in parts):
                raise ValueError(
                    f"{scope!r} is not a scope: org-campaign-project, each alphanumeric or *"
                )
        return scopes


class TaskSettings(_Section):
    """Where Tasks come from and how many a batch takes."""

    source: Literal["local", "alchemiscale"] = Field(
        "local", description="local: fahflow's embedded queue; alchemiscale: a compute API"
    )
    local: LocalQueueSettings = Field(default_factory=LocalQueueSettings)
    claim_max: int = Field(10, ge=0, description="Tasks claimed per batch at most")
    service_id: str = Field(
        "fahflow", pattern=r"^[A-Za-z0-9_.-]+$", description="name this service claims under "
        "(alchemiscale: the name of its compute-service id, so no '-')",
    )  # fmt: skip
    alchemiscale: AlchemiscaleSettings = Field(default_factory=AlchemiscaleSettings)

    @model_validator(mode="after")
    def _alchemiscale_name(self) -> TaskSettings:
        if self.source == "alchemiscale" and not re.fullmatch(
            r"[A-Za-z][A-Za-z0-9_.:]*", self.service_id
        ):
            raise ValueError(
                f"service_id {self.service_id!r}: alchemiscale names a compute service "
                "'<name>-<uuid>', so the name starts with a letter and has no '-'"
            )
        return self


class LedgerSettings(_Section):
    path: Path = Field(Path("run/ledger.sqlite"), description="SQLite ledger (WAL)")


class EstimateSettings(_Section):
    """The ``analysis:`` block: how a Task's works become ΔG ± σ (batch analyze, ``results``).

    Not :class:`fahflow.analysis.report.AnalysisSettings`, the record of the settings an
    estimate was made with, which ``result.json`` carries.
    """

    bootstrap: int = Field(1000, ge=0, description="whole-CLONE bootstrap samples")
    seed: int = Field(0, description="seed of the bootstrap")
    max_abs_work_kT: float = Field(
        1.0e4,
        gt=0,
        description="a pair with |W_f| or |W_r| above this (kT) is implausible: classified, "
        "reported and left out of the estimate",
    )


class BatchSettings(_Section):
    max_restarts: int = Field(
        2, ge=0, description="restart calls sent for a FAILED WU (a lost answer counts as sent) "
        "before its Task fails",
    )  # fmt: skip
    results_dir: Path = Field(Path("results"), description="per-Task outputs of the workflow")
    check_unseen_after_s: float = Field(
        21600.0, gt=0, description="a WU the WS has not reported on for this long (jobs?since= "
        "only reports changes) is asked for by name in the next poll",
    )  # fmt: skip
    check_unseen_max: int = Field(
        1000, ge=1, description="WUs asked for by name per PROJECT and poll at most (oldest first)"
    )
    unseen_alert_s: float = Field(
        86400.0, gt=0, description="a WU still unseen after this long fails the batch's audit "
        "(and shows in fahflow status): nothing may stay in flight unseen",
    )  # fmt: skip

    @model_validator(mode="after")
    def _alert_after_check(self) -> BatchSettings:
        if self.unseen_alert_s <= self.check_unseen_after_s:
            raise ValueError(
                f"unseen_alert_s ({self.unseen_alert_s}) must be longer than check_unseen_after_s "
                f"({self.check_unseen_after_s}): a quiet WU is checked before it raises an alert"
            )
        return self


class SimulatorFaultSettings(_Section):
    """Fault rates of the simulated WS and volunteers, per event, every draw seeded.

    The same fields as :class:`fahflow.sim.config.FaultConfig` (a test keeps the two equal): the
    workflow config is read by every batch command, which must not import the simulator.
    """

    http_503_rate: float = Field(0.0, ge=0, le=1, description="API calls answered 503")
    drop_rate: float = Field(0.0, ge=0, le=1, description="API calls dropped before processing")
    drop_after_rate: float = Field(
        0.0, ge=0, le=1, description="API calls processed, then dropped before the answer"
    )
    vanish_rate: float = Field(0.0, ge=0, le=1, description="assignments never returned")
    faulty_return_rate: float = Field(0.0, ge=0, le=1, description="assignments returned faulty")
    duplicate_rows_rate: float = Field(
        0.0, ge=0, le=1, description="globals.csv with a pause/resume duplicate header + rows"
    )
    slow_rate: float = Field(1.0, ge=0, le=1, description="assignments delayed by slow_s")
    slow_s: float = Field(0.0, ge=0, description="extra seconds a slow volunteer takes")
    cert_lifetime_s: float | None = Field(
        None, description="lifetime of certificates the AS renews (None: 30 days)"
    )


class SimulatorSettings(_Section):
    """The ``simulator:`` block, read only by ``fahflow demo``.

    The rest of the simulated WS comes from the ``ws:`` block, as a real WS's would: its port
    from ``ws.url``, its root from ``ws.data_dir``, its ``<send>`` list from ``ws.send``.
    """

    volunteers: int = Field(2, ge=0, description="volunteer processes running WUs with OpenMM")
    seed: int = Field(0, description="seed of every fault draw (the same seed, the same faults)")
    clock_scale: float = Field(
        1.0, gt=0, description="simulated seconds per real second: WU timeouts (a vanished "
        "volunteer's WU is reassigned after the project's timeout) run this much faster",
    )  # fmt: skip
    faults: SimulatorFaultSettings = Field(default_factory=SimulatorFaultSettings)


class GufeSettings(_Section):
    """The ``gufe:`` block: core.xml of a gufe Transformation whose protocol has no FAH settings.

    feflow's ``NonEquilibriumCyclingProtocol`` knows nothing of the FAH core, so its WUs (one
    cycle each) run with these; alchemiscale-fah's ``FahNonEquilibriumCyclingProtocol`` carries
    its own ``fah_settings`` and ignores this block. ``numSteps`` always comes from the
    protocol's integrator settings (2·eq + 2·neq).
    """

    core: CoreSettings = Field(
        default_factory=CoreSettings,
        description="FAH core settings (core.xml spelling: precision, checkpointFreq, xtcFreq, "
        "...); numSteps is derived from the protocol",
    )
    global_var_freq_from_protocol: bool = Field(
        True,
        description="true: globalVarFreq is the protocol's work_save_frequency (the work is "
        "sampled as feflow's own cycle unit samples it); false: core.globalVarFreq, which must "
        "divide the protocol's eq and neq steps",
    )


class FahflowConfig(_Section):
    """The whole of ``config/config.yaml``."""

    ws: WorkServerSettings
    projects: list[ProjectSettings] = Field(min_length=1)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    analysis: EstimateSettings = Field(default_factory=EstimateSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    gufe: GufeSettings = Field(
        default_factory=GufeSettings,
        description="core.xml of gufe Transformations whose protocol has no FAH settings (feflow)",
    )
    simulator: SimulatorSettings | None = Field(
        None, description="the embedded WS simulator that `fahflow demo` (scripts/demo) starts; "
        "batches never read it",
    )  # fmt: skip

    @field_validator("projects")
    @classmethod
    def _unique_ids(cls, projects: list[ProjectSettings]) -> list[ProjectSettings]:
        ids = [p.id for p in projects]
        if len(set(ids)) != len(ids):
            raise ValueError(f"project ids must be unique, got {ids}")
        return projects


def load_config(path: str | Path) -> FahflowConfig:
    """Load and validate the workflow config; raises ConfigError naming file, key and value."""
    try:
        return load_yaml_model(path, FahflowConfig)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: {exc}") from None


def json_schema() -> dict[str, Any]:
    """JSON schema of the config, as Snakemake's ``validate`` reads it."""
    schema = FahflowConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
