"""`fahflow` commands of this area (filled in by its issue)."""

import click

COMMANDS: list[click.Command] = []
