"""The ``fahflow`` console script: a thin click group over the library.

Each command parses its arguments, calls one library function and writes its output atomically.
Exceptions become exit codes in one place, :func:`main`: a :class:`~fahflow.errors.FahflowError` is
logged as one line (traceback with ``-v``), anything else is a bug and exits 2.
"""

from __future__ import annotations

import logging
import sys

import click

from fahflow import __version__
from fahflow.cli import status
from fahflow.errors import FahflowError

logger = logging.getLogger("fahflow")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fahflow")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """fahflow: alchemical NEQ free-energy Tasks on Folding@home, driven by Snakemake."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def _register() -> None:
    # Imported here so that each command module can import `cli` without a cycle.
    from fahflow.cli import analysis, cert, protocol, sim, workflow, ws

    for module in (ws, cert, sim, protocol, analysis, workflow):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map exceptions to exit codes (see :mod:`fahflow.cli.status`)."""
    verbose = any(a in ("-v", "-vv", "--verbose") for a in (argv or sys.argv[1:]))
    try:
        cli.main(args=argv, prog_name="fahflow", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return status.ERROR
    except click.ClickException as exc:
        exc.show()
        return status.ERROR if exc.exit_code != 0 else status.SUCCESS
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except FahflowError as exc:
        logger.critical("%s", exc, exc_info=verbose)
        click.echo(f"fahflow: error: {exc}", err=True)
        return status.ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logger.critical("unexpected error: %r", exc, exc_info=True)
        return status.UNEXPECTED
    return status.SUCCESS


if __name__ == "__main__":
    sys.exit(main())
