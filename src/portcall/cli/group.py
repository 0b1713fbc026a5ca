"""The `portcall` click group and the exit codes every command shares.

Kept apart from the commands so each command module can register on `app` without
importing the package that gathers them.
"""

from __future__ import annotations

import importlib

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


#: The module that defines each command. A command's module is imported when the command is
#: run (or listed by --help), so `portcall check` never loads the templates, the database or
#: the exporter, and `portcall ports` none of the probing.
COMMAND_MODULES = {
    "ports": "portcall.cli.catalog_cmd",
    "check": "portcall.cli.check_cmd",
    "plan": "portcall.cli.plan_cmd",
    "firewall": "portcall.cli.firewall_cmd",
    "audit": "portcall.cli.audit_cmd",
    "listen": "portcall.cli.responders_cmd",
    "demo": "portcall.cli.responders_cmd",
    "report": "portcall.cli.report_cmd",
    "history": "portcall.cli.history_cmd",
    "diff": "portcall.cli.history_cmd",
    "serve": "portcall.cli.serve_cmd",
}


class LazyGroup(click.Group):
    """A group whose commands register themselves on `app` when their module is imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="portcall")
def app() -> None:
    """Know, open and prove the ports Exchange 2000/2003 and other mail and directory
    servers need.

    \b
    Exit codes: 0 healthy, 1 warnings, 2 failures, 64 usage error, 71 local error (this
    machine could not make the check), 130 interrupted.
    """
