"""Configuration of the simulated work server: the WS ``config.xml`` core block, faults, clock.

A real WS reads ``/etc/fah-work/config.xml``; its ``<core>`` block names the files sent with each
WU (``<send>``) and how many GENs a job runs (``gens``). The simulator takes the same two facts
from ``ROOT/sim.yaml`` (or an XML file with the same ``<core>`` block), plus what only a simulator
has: fault rates, a seed, a clock scale and the volunteers' OpenMM platform.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from string import Template
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fahflow.errors import ConfigError

DEFAULT_SEND = [
    "$home/RUN$run/core.xml",
    "$home/RUN$run/system.xml.bz2",
    "$home/RUN$run/state.xml.bz2",
    "$home/RUN$run/integrator.xml.bz2",
]
"""DESIGN §2: system/state/integrator are written once per RUN, not copied per CLONE."""

CONFIG_NAMES = ("sim.yaml", "sim.yml", "sim.xml")
"""Where :meth:`SimConfig.from_root` looks, in this order."""

SEND_VARIABLES = {"home": "/home", "project": 1, "run": 0, "clone": 0, "gen": 0}
"""The variables a ``<send>`` entry may use (values here only to check the spelling)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultConfig(_Strict):
    """Fault injection. Rates are probabilities per event; every draw is seeded (see ``faults``)."""

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


class SimConfig(_Strict):
    """Everything the simulator needs besides its root directory and port."""

    seed: int = 0
    send: list[str] = Field(default_factory=lambda: list(DEFAULT_SEND))
    gens: int = Field(1, ge=1)
    max_retries: int = Field(3, ge=1, description="faulty returns before a job is FAILED")
    faults: FaultConfig = Field(default_factory=FaultConfig)
    clock_scale: float = Field(
        1.0, gt=0, description="simulated seconds per real second (timeouts run this much faster)"
    )
    platform: str = "CPU"
    threads: int | None = Field(None, ge=1, description="CPU threads per volunteer")
    assign_wait_s: float = Field(5.0, gt=0, description="long-poll of an idle volunteer")
    server_id: int = Field(
        1, ge=0, description="the WS id reported as JobData.server (an integer on a real WS)"
    )
    max_body_bytes: int = Field(
        2 * 1024**3, ge=1, description="largest request body (upload) accepted; larger: 413"
    )
    socket_timeout_s: float = Field(
        30.0, gt=0, description="longest wait for one read or write on a connection (idle too)"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="TLS handshake, and request line + headers, from the first byte"
    )
    body_timeout_s: float = Field(
        600.0, gt=0, description="reading one request body, from the end of its headers"
    )

    @field_validator("send")
    @classmethod
    def _send_variables_known(cls, send: list[str]) -> list[str]:
        """A misspelt variable fails when the config is read, not as a 500 on every create."""
        for item in send:
            try:
                Template(item).substitute(SEND_VARIABLES)
            except (KeyError, ValueError) as exc:
                known = ", ".join(f"${name}" for name in SEND_VARIABLES)
                message = f"send entry {item!r}: bad variable {exc} (known: {known})"
                raise ValueError(message) from None
        return send

    @classmethod
    def load(cls, path: str | Path) -> SimConfig:
        """Read ``path``: YAML (the fields of this class) or XML mirroring ``config.xml``.

        The XML form reads ``<send>`` (whitespace-separated paths) and ``<gens v="N"/>`` from the
        first ``<core>`` element (or the root), and ``<sim .../>`` attributes for the rest.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read simulator config: {exc}") from exc
        data = _parse_xml(path, text) if path.suffix == ".xml" else _parse_yaml(path, text)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            raise ConfigError(
                f"{path}: field {field!r}: {err['msg']} (got {err.get('input')!r})"
            ) from None

    @classmethod
    def from_root(cls, root: Path) -> SimConfig:
        """The config file found in ``root`` (``CONFIG_NAMES``), or the defaults."""
        for name in CONFIG_NAMES:
            if (root / name).is_file():
                return cls.load(root / name)
        return cls()


def _parse_yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def _parse_xml(path: Path, text: str) -> dict[str, Any]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ConfigError(f"{path}: not valid XML: {exc}") from exc
    core = root if root.tag == "core" else root.find(".//core")
    core = root if core is None else core
    data: dict[str, Any] = {}
    send = core.find("send")
    if send is not None and send.text:
        data["send"] = send.text.split()
    gens = core.find("gens")
    if gens is not None:
        data["gens"] = gens.get("v", gens.text)
    sim = root.find(".//sim")
    if sim is not None:
        for key, value in sim.attrib.items():
            section, _, name = key.partition(".")
            if section == "faults" and name:
                data.setdefault("faults", {})[name] = value
            else:
                data[key] = value
    return data
