"""The ``fahflow`` console script: a thin click group over the library.

Each command parses its arguments, calls one library function and writes its output atomically.
Exceptions become exit codes in one place, :func:`main`: a :class:`~fahflow.errors.FahflowError` is
logged as one line (traceback with ``-v``), and so are the failures of the machine rather than of
fahflow (an ``OSError`` such as a full disk, a ``sqlite3`` error), naming the file where known;
anything else is a bug and exits 2.
"""

from __future__ import annotations

import errno
import importlib
import logging
import sqlite3
import sys

import click

from fahflow import __version__
from fahflow.cli import status
from fahflow.errors import FahflowError, StorageError

logger = logging.getLogger("fahflow")

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


# Command name → "module:attribute". Loaded on first use, so that `fahflow batch claim` (run by a
# Snakemake rule, many times a batch) does not pay for importing OpenMM, matplotlib or the
# simulator. tests/test_cli.py checks this table against each module's COMMANDS list.
LAZY_COMMANDS = {
    "ws": "fahflow.cli.ws:ws",
    "cert": "fahflow.cli.cert:cert",
    "sim": "fahflow.cli.sim:sim",
    "standin": "fahflow.cli.standin:standin",
    "alchemiscale": "fahflow.cli.alchemiscale:alchemiscale",
    "build-wu": "fahflow.cli.protocol:build_wu",
    "propose-projects": "fahflow.cli.protocol:propose_projects",
    "analyze": "fahflow.cli.analysis:analyze",
    "submit": "fahflow.cli.workflow:submit",
    "status": "fahflow.cli.workflow:status",
    "results": "fahflow.cli.workflow:results",
    "batch": "fahflow.cli.workflow:batch",
    "config-schema": "fahflow.cli.workflow:config_schema",
    "demo": "fahflow.cli.workflow:demo",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported only when run (or listed by --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fahflow")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """fahflow: alchemical NEQ free-energy Tasks on Folding@home, driven by Snakemake."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def _fail(message: str, verbose: int) -> int:
    """One line on stderr (the traceback too with ``-v``) and the error exit code."""
    if verbose:
        logger.critical("traceback of the error below", exc_info=True)
    click.echo(f"fahflow: error: {message}", err=True)
    return status.ERROR


def _os_error_message(exc: OSError) -> str:
    """A file-system failure as advice naming the file; any other OSError as itself."""
    if exc.filename is not None or exc.errno in STORAGE_ERRNOS:
        return str(StorageError.from_os_error(exc))
    return f"{type(exc).__name__}: {exc}"


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
        return _fail(str(exc), verbose)
    except OSError as exc:
        # A full disk or a read-only folder met outside fahflow's atomic writer.
        return _fail(_os_error_message(exc), verbose)
    except sqlite3.Error as exc:
        message = f"database error: {exc}: check the ledger and queue files (df -h) and run again"
        return _fail(message, verbose)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logger.critical("unexpected error: %r", exc, exc_info=True)
        return status.UNEXPECTED
    return status.SUCCESS


if __name__ == "__main__":
    sys.exit(main())
