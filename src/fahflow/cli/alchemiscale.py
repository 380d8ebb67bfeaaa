"""`fahflow alchemiscale ...`: the operator's view of fahflow as an alchemiscale compute service
(docs/alchemiscale.md): its registration and claims, and the settling of a lost push answer.

Everything but ``deregister`` reads only the source's own ledger (``tasks.alchemiscale.state``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fahflow.cli.workflow import CONFIG
from fahflow.config import load_config
from fahflow.errors import ConfigError


def _source(config_path: Path):  # -> AlchemiscaleSource
    config = load_config(config_path)
    if config.tasks.source != "alchemiscale":
        raise ConfigError(
            f"{config_path}: tasks.source is {config.tasks.source!r}, not alchemiscale"
        )
    from fahflow.tasks import open_source

    return open_source(config)


@click.group("alchemiscale")
def alchemiscale() -> None:
    """fahflow as an alchemiscale compute service: registration, claims, pushes."""


@alchemiscale.command()
@CONFIG
def info(config_path: Path) -> None:
    """The registration, its last heartbeat, and the Tasks claimed and not yet pushed (JSON)."""
    source = _source(config_path)
    try:
        reg = source.ledger.registration()
        record = {
            "service_id": reg.service_id if reg else None,
            "registered_at": reg.registered_at if reg else None,
            "heartbeat_age_s": source.heartbeat_age_s(),
            "registration_expire_s": source.settings.registration_expire_s,
            "open_claims": sorted(source.ledger.open_keys()),
            "unsettled_pushes": [c.key for c in source.ledger.unknown_pushes()],
            "past_registrations": [dict(r) for r in source.ledger.past_registrations()],
        }
    finally:
        source.close()
    click.echo(json.dumps(record, indent=2))


@alchemiscale.command()
@CONFIG
@click.argument("task")
@click.option("--arrived", "arrived", flag_value=True, default=None,
              help="The result is on alchemiscale: record the push as done.")  # fmt: skip
@click.option("--resend", "arrived", flag_value=False,
              help="It is not: the next batch sends it.")  # fmt: skip
def settle(config_path: Path, task: str, arrived: bool | None) -> None:
    """Settle a result push whose answer was lost, after looking at the Task on alchemiscale."""
    if arrived is None:
        raise click.UsageError("say --arrived or --resend")
    source = _source(config_path)
    try:
        source.settle(task, arrived=arrived)
    finally:
        source.close()
    click.echo(f"{task}: {'recorded as pushed' if arrived else 'will be pushed by the next batch'}")


@alchemiscale.command()
@CONFIG
def heartbeat(config_path: Path) -> None:
    """One heartbeat of the registration (for a cron line of its own, e.g. every 5 minutes, so
    that a long batch never lets it expire); exit 1 when there is no fresh registration."""
    source = _source(config_path)
    try:
        if not source.beat():
            raise ConfigError(
                "no registration fresh enough to keep alive: the next batch's claim registers anew"
            )
    finally:
        source.close()


@alchemiscale.command()
@CONFIG
def deregister(config_path: Path) -> None:
    """Deregister this compute service (retiring it): alchemiscale gives its running Tasks back
    to waiting. The next batch would register anew."""
    source = _source(config_path)
    try:
        service_id = source.deregister()
    finally:
        source.close()
    click.echo(f"deregistered {service_id}")


COMMANDS: list[click.Command] = [alchemiscale]
