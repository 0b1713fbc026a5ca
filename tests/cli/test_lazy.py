"""Start-up stays small: the command line imports a command's module only when the command
runs, and `import portcall` loads its public names on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from portcall.cli.group import COMMAND_MODULES, app

#: What a plain `portcall check` never needs: templates, the database, the exporter.
NOT_FOR_CHECK = ("jinja2", "sqlite3", "prometheus_client", "portcall.serve", "portcall.history")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_each_listed_command_is_defined_by_its_module(name: str) -> None:
    command = app.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.name == name
    assert command.callback is not None
    assert command.callback.__module__ == COMMAND_MODULES[name]


def test_importing_the_command_line_loads_no_command() -> None:
    loaded = modules_after("import portcall.cli")
    assert not {m for m in loaded if m.endswith("_cmd")}
    assert "portcall.probing.probe" not in loaded and "asyncio" not in loaded


def test_import_portcall_loads_its_names_on_first_use() -> None:
    assert "portcall.probing.probe" not in modules_after("import portcall")
    assert "portcall.probing.probe" in modules_after("import portcall; portcall.Settings")


def test_check_loads_neither_reports_nor_history_nor_exporter() -> None:
    code = (
        "from portcall.cli import main\n"
        "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass"
    )
    loaded = modules_after(code)
    assert "portcall.cli.check_cmd" in loaded
    assert not [m for m in loaded if m.startswith(NOT_FOR_CHECK)]


def test_the_mail_clients_load_no_domain_controller_protocol() -> None:
    """HTTP's client reads SPNEGO (the Negotiate header), which SMB shares: the module is
    one of `protocols`' own, so a check of mail ports never loads SMB's server, DNS or
    dnspython (a tenth of a second of start-up)."""
    code = "\n".join(
        f"import portcall.protocols.{name}.client"
        for name in ("http", "imap", "pop3", "smtp", "nntp", "ldap")
    )
    loaded = modules_after(code)
    assert "portcall.protocols.spnego" in loaded
    assert not [
        m
        for m in loaded
        if m.startswith(("portcall.protocols.smb", "portcall.protocols.dns", "dns."))
    ]
