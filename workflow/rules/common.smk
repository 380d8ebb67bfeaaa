# Config validation, paths, and the read-only ledger filter that decides what this batch does.

from pathlib import Path

from snakemake.utils import validate

from fahflow.config import FahflowConfig, load_config, validate_model
from fahflow.errors import ConfigError
from fahflow.ledger import actionable_tasks


def batch_config_file():
    """The one file every `fahflow batch` command reads: the last `--configfile` (the profile's
    `configfile:` is one), else the Snakefile's own. Snakemake lists the command line's files
    first and appends the Snakefile's, so `workflow.configfiles[-1]` would be
    config/config.yaml even under `--configfile .test/config_sim/config.yaml`."""
    given = workflow.overwrite_configfiles
    return str(given[-1] if given else workflow.configfiles[-1])


def differing_keys(ours, theirs, prefix=""):
    """Dotted keys whose values differ between two dumps of the config."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [
            key
            for name in sorted(set(ours) | set(theirs))
            for key in differing_keys(
                ours.get(name), theirs.get(name), f"{prefix}{name}."
            )
        ]
    return [] if ours == theirs else [prefix.rstrip(".")]


def check_one_config(settings, path):
    """The commands read only `path`: refuse a batch whose settings come partly from elsewhere
    (the Snakefile's config/config.yaml filling keys a --configfile left out, a second
    --configfile, or --config KEY=VALUE), which the rules would see and the commands not.
    """
    differ = differing_keys(
        settings.model_dump(mode="json"), load_config(path).model_dump(mode="json")
    )
    if differ:
        raise ConfigError(
            f"{config_source()}: the `fahflow batch` commands read only {path}, but this "
            f"run's settings differ from it at {', '.join(differ)}: put every setting in that "
            "one file (a complete config, like .test/config_sim/config.yaml)"
        )


# Every `fahflow batch` command reads this one file (so settings are changed by editing that
# YAML, not with --config on the command line).
CONFIG_FILE = batch_config_file()


def config_source():
    """The config files as errors should name them, strongest first: `--configfile` files
    override the Snakefile's `configfile:` (e.g. "bad.yaml over config/config.yaml")."""
    cli = [str(f) for f in workflow.overwrite_configfiles or []]
    rest = [str(f) for f in workflow.configfiles if str(f) not in cli]
    return " over ".join(dict.fromkeys([*reversed(cli), *rest]))


# The model first: its errors name the config file, the key and the value (Snakemake's schema
# errors name neither); the schema is generated from it, so `validate` then only fills defaults.
SETTINGS = validate_model(config, FahflowConfig, config_source())
check_one_config(SETTINGS, CONFIG_FILE)
validate(config, schema="../schemas/config.schema.yaml")
RESULTS = str(SETTINGS.batch.results_dir)
LEDGER = str(SETTINGS.ledger.path)
# The claim and poll records have the same path in every batch (the profile's `forcerun` runs
# both each time): two batches started together then want the same outputs, and Snakemake's
# lock refuses the second instead of letting both create and push the same Tasks.
BATCH_DIR = str(Path(LEDGER).parent / "batch")
# The WU files serialize writes (fahflow.protocol.build.FILE_NAMES, which imports OpenMM: the
# Snakefile is parsed by every run, so the names are repeated here and a test keeps them equal).
WU_FILES = ("core.xml", "system.xml.bz2", "state.xml.bz2", "integrator.xml.bz2")


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
