"""The `portcall` click group and the exit codes every command shares.

Kept apart from the commands so each command module can register on `app` without
importing the package that gathers them.
"""

from __future__ import annotations

import click

from portcall import __version__

EXIT_HEALTHY = 0
EXIT_WARNINGS = 1
EXIT_FAILURES = 2
EXIT_USAGE = 64
#: This machine, not a target, kept the check from being made (EX_OSERR of sysexits.h).
EXIT_LOCAL = 71
EXIT_INTERRUPTED = 130
#: The reader of the output went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="portcall")
def app() -> None:
    """Know, open and prove the ports Exchange 2000/2003 and other mail and directory
    servers need.

    \b
    Exit codes: 0 healthy, 1 warnings, 2 failures, 64 usage error, 71 local error (this
    machine could not make the check), 130 interrupted.
    """
