# Config validation, paths, and the read-only ledger filter that decides what this batch does.

from pathlib import Path

from snakemake.utils import validate

from fahflow.config import FahflowConfig, validate_model
from fahflow.ledger import actionable_tasks

# Every `fahflow batch` command reads the same config file Snakemake was given (so settings
# are changed by editing that YAML, not with --config on the command line).
CONFIG_FILE = str(workflow.configfiles[-1])


def config_source():
    """The config files as errors should name them, strongest first: `--configfile` files
    override the Snakefile's `configfile:` (e.g. "bad.yaml over config/config.yaml")."""
    cli = [str(f) for f in workflow.overwrite_configfiles or []]
    rest = [str(f) for f in workflow.configfiles if str(f) not in cli]
    return " over ".join(dict.fromkeys([*reversed(cli), *rest]))


# The model first: its errors name the config file, the key and the value (Snakemake's schema
# errors name neither); the schema is generated from it, so `validate` then only fills defaults.
SETTINGS = validate_model(config, FahflowConfig, config_source())
validate(config, schema="../schemas/config.schema.yaml")
RESULTS = str(SETTINGS.batch.results_dir)
LEDGER = str(SETTINGS.ledger.path)
# The claim and poll records have the same path in every batch (the profile's `forcerun` runs
# both each time): two batches started together then want the same outputs, and Snakemake's
# lock refuses the second instead of letting both create and push the same Tasks.
BATCH_DIR = str(Path(LEDGER).parent / "batch")


wildcard_constraints:
    task=r"[A-Za-z0-9_-]+",
    transformation=r"[A-Za-z0-9_-]+",


_actionable = None


def actionable():
    """The ledger's actionable Tasks, read once after the claim and poll checkpoints ran."""
    global _actionable
    if _actionable is None:
        _actionable = actionable_tasks(LEDGER)
    return _actionable


def get_final_output(wildcards):
    """created.json for Tasks to start, pushed.json for Tasks whose outcome is known, and the
    audit of what is still in flight."""
    checkpoints.claim.get()
    checkpoints.poll.get()
    act = actionable()
    return (
        [f"{RESULTS}/tasks/{t}/created.json" for t in act.create]
        + [f"{RESULTS}/tasks/{t}/pushed.json" for t in act.push]
        + [f"{BATCH_DIR}/audit.json"]
    )


def get_manifest(wildcards):
    tf = actionable().transformation_of[wildcards.task]
    return f"{RESULTS}/transformations/{tf}/manifest.json"


def get_outcome(wildcards):
    """A failed Task has no outcome file: push sends its reason from the ledger."""
    if wildcards.task in actionable().failed:
        return []
    return f"{RESULTS}/tasks/{wildcards.task}/outcome.json"
