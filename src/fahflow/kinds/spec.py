"""fahflow's own NEQ spec (YAML, :mod:`fahflow.protocol.spec`) as a kind of Task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fahflow.batch.seeds import seed_for
from fahflow.errors import ConfigError
from fahflow.kinds.base import Claimed, Manifest, ProtocolOutcome, TaskRefused


class SpecKind:
    """Spec in, WU files out; the outcome is fahflow's own BAR analysis alone."""

    name = "spec"

    def claim(
        self, payload: str, where: str, *, extends: str | None = None, dag_name: str | None = None
    ) -> Claimed:
        from fahflow.protocol.spec import parse_spec

        if extends is not None:
            raise TaskRefused(f"{where}: a fahflow spec Task cannot extend another Task")

        try:
            spec = parse_spec(yaml.safe_load(payload), f"{where} spec")
        except yaml.YAMLError as exc:
            raise TaskRefused(f"{where}: spec is not valid YAML: {exc}") from None
        except ConfigError as exc:
            raise TaskRefused(str(exc)) from None
        return Claimed(name=spec.name, n_wus=spec.wus_per_task)

    def build(
        self, payload: str, transformation_id: str, out_dir: Path, *, config: Any
    ) -> Manifest:
        from fahflow.protocol.build import build_work_unit  # imports openmm: only here
        from fahflow.protocol.spec import parse_spec

        spec = parse_spec(yaml.safe_load(payload), f"Transformation {transformation_id} spec")
        wu = build_work_unit(spec, out_dir, seed=seed_for(transformation_id))
        return Manifest(
            transformation_id=transformation_id,
            kind=self.name,
            name=spec.name,
            n_atoms=wu.n_atoms,
            nonbonded_method=wu.nonbonded_method,
            num_steps=wu.num_steps,
            temperature_K=wu.temperature_K,
            seed=wu.seed,
            files={name: path.name for name, path in wu.files.items()},
        )

    def finish(self, **_: Any) -> ProtocolOutcome | None:
        return None

    def gather(self, payload: str, results: list[Path]) -> tuple[float, float] | None:
        return None
