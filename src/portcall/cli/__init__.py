"""The command line: parse, call the library, render, exit with a documented code.

Exit codes: 0 healthy, 1 warnings only, 2 failures, 64 usage error (bad option, target,
catalog or file), 71 local error (this machine could not make the check: too few file
descriptors, no route from here, an unusable trust store), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

import click

from portcall.cli.group import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURES,
    EXIT_HEALTHY,
    EXIT_INTERRUPTED,
    EXIT_LOCAL,
    EXIT_USAGE,
    EXIT_WARNINGS,
    app,
)
from portcall.report.inert import inert
from portcall.verdicts import LocalFault

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURES",
    "EXIT_HEALTHY",
    "EXIT_INTERRUPTED",
    "EXIT_LOCAL",
    "EXIT_USAGE",
    "EXIT_WARNINGS",
    "app",
    "main",
]


def _reader_left() -> NoReturn:
    """The reader of our output went away (`portcall check … | head -1`): stop quietly with
    the shell's code for SIGPIPE, never a traceback or the code for warnings."""
    with contextlib.suppress(OSError, ValueError):
        # Python's own flush at exit must not fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.exit(EXIT_BROKEN_PIPE)


def _fail_usage(exc: click.ClickException) -> NoReturn:
    click.echo(f"Error: {inert(exc.format_message())}", err=True)
    hint = getattr(exc, "hint", None)
    if hint:
        click.echo(f"Hint: {inert(hint)}", err=True)
    elif isinstance(exc, click.UsageError) and exc.ctx is not None:
        click.echo(f"Hint: run '{exc.ctx.command_path} --help' for the options.", err=True)
    sys.exit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> None:
    try:
        app.main(args=argv, prog_name="portcall", standalone_mode=False)
    except BrokenPipeError:
        _reader_left()
    except SystemExit as stop:
        # click meets a closed pipe (EPIPE) itself: it wraps stdout in its PacifyFlushWrapper
        # (_PacifyFlushWrapper from click 8.5) to stay quiet and exits 1, which would read as
        # "warnings". The class is matched by name: click deprecates importing it.
        if type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            _reader_left()
        raise stop
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        _fail_usage(exc)
    except LocalFault as fault:
        click.echo(f"Error: {inert(fault)}", err=True)
        click.echo(
            "Hint: this is about the machine portcall runs on, not about any target; "
            "no verdict was given.",
            err=True,
        )
        sys.exit(EXIT_LOCAL)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
