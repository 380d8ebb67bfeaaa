"""Step 2: build a Transformation's WU files (System, State, NEQ Integrator, core.xml), once.

What they are built from is its kind's business (:mod:`fahflow.kinds`): a fahflow spec is built
by :mod:`fahflow.protocol`; a gufe Transformation runs its protocol's setup unit here, locally,
once for all its Tasks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fahflow import atomic
from fahflow.batch.context import BatchContext, write_json
from fahflow.failpoints import failpoint
from fahflow.kinds import kind_for


def serialize(ctx: BatchContext, transformation_id: str, out: Path) -> dict[str, Any]:
    """Write the claimed Transformation and build its WU files beside ``out``, then ``out``
    (manifest.json).

    Built once per Transformation: every Task and CLONE of it shares the System (DESIGN §2);
    ``stage`` gives each CLONE its own velocities and integrator seed. The Transformation comes
    from the ledger (claim recorded it) and is written here as ``transformation.json``, so that
    one job per Transformation owns it as a declared output (workflow/rules/serialize.smk). A
    kind's own products (a gufe setup unit's files) go under ``units/``.
    """
    row = ctx.ledger.transformation(transformation_id)
    claimed = {"kind": row.kind, "name": row.name, "payload": row.payload}
    atomic.write_text(out.parent / "transformation.json", json.dumps(claimed, indent=1) + "\n")
    (out.parent / "units").mkdir(parents=True, exist_ok=True)
    manifest = kind_for(row.kind).build(
        row.payload, transformation_id, out.parent, config=ctx.config
    )
    failpoint("serialize.after_build")
    record = manifest.model_dump(mode="json", exclude_none=True)
    write_json(out, record)
    return record
