"""Step 2: build a Transformation's System, State, NEQ-cycling Integrator and core.xml, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fahflow import atomic
from fahflow.batch.context import BatchContext, write_json
from fahflow.batch.seeds import seed_for
from fahflow.failpoints import failpoint


def serialize(ctx: BatchContext, transformation_id: str, out: Path) -> dict[str, Any]:
    """Write the spec and build the WU files of one Transformation beside ``out``, then ``out``
    (manifest.json).

    Built once per Transformation: every Task and CLONE of it shares the System (DESIGN §2);
    ``stage`` gives each CLONE its own velocities and integrator seed. The spec comes from the
    ledger (claim recorded it) and is written here, so that one job per Transformation owns
    ``spec.yaml`` as a declared output (workflow/rules/serialize.smk), not the batch's claim.
    """
    from fahflow.protocol.build import build_work_unit  # imports openmm: only here
    from fahflow.protocol.spec import load_spec

    spec_path = atomic.write_text(
        out.parent / "spec.yaml", ctx.ledger.transformation(transformation_id).spec_yaml
    )
    spec = load_spec(spec_path)
    wu = build_work_unit(spec, out.parent, seed=seed_for(transformation_id))
    failpoint("serialize.after_build")
    manifest = {
        "transformation_id": transformation_id,
        "name": spec.name,
        "n_atoms": wu.n_atoms,
        "nonbonded_method": wu.nonbonded_method,
        "num_steps": wu.num_steps,
        "temperature_K": wu.temperature_K,
        "seed": wu.seed,
        "files": {name: path.name for name, path in wu.files.items()},
    }
    write_json(out, manifest)
    return manifest
