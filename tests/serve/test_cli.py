"""`portcall serve` on the command line: its configuration file, its usage errors, and the
process itself started, probed and stopped by SIGTERM."""

from __future__ import annotations

import ipaddress
import signal
from pathlib import Path

import pytest

from portcall.cli import EXIT_USAGE
from portcall.serve import ConfigError, combine, read_file
from portcall.serve.config import DEFAULT_ALLOW, parse_listen
from tests.conftest import Cli
from tests.responders.test_listen_cli import free_ports
from tests.responders.test_listen_cli import portcall as portcall_argv
from tests.serve.lab import Lab, Process, get, lab_env


def test_config_file_settings_relative_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(
        'listen = "[::1]:9700"\nallow = ["192.0.2.0/24", "2001:db8::7"]\n'
        'catalog = ["windows-dc", "mine.toml"]\ntimeout = 2\nprobe_timeout = 9.5\n'
        'max_concurrent = 8\nca = "ca.pem"\nsave = true\ndb = "/var/h.sqlite3"\n',
        encoding="utf-8",
    )
    settings = combine(read_file(str(config)), {})
    assert (settings.host, settings.port, settings.listen) == ("::1", 9700, "[::1]:9700")
    assert settings.allow == (
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8::7/128"),
    )
    assert settings.catalog == ("windows-dc", str(tmp_path / "mine.toml"))
    assert (settings.timeout, settings.probe_timeout, settings.max_concurrent) == (2, 9.5, 8)
    assert (settings.ca, settings.save, settings.db) == (
        str(tmp_path / "ca.pem"),
        True,
        "/var/h.sqlite3",
    )


def test_command_line_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('listen = "0.0.0.0:9700"\nmax_concurrent = 8\n', encoding="utf-8")
    settings = combine(read_file(str(config)), {"port": 9800, "host": "127.0.0.1", "timeout": None})
    assert (settings.host, settings.port, settings.max_concurrent) == ("127.0.0.1", 9800, 8)
    assert settings.allow == DEFAULT_ALLOW and settings.timeout == 5.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('alow = ["10.0.0.0/8"]\n', "unknown setting alow"),
        ('allow = ["10.0.0.300/8"]\n', "'10.0.0.300/8' is not an IP network"),
        ("allow = []\n", "non-empty list"),
        ('listen = "9691"\n', "'9691' is not HOST:PORT"),
        ("timeout = 0\n", "timeout must be a number of seconds from 0.1 to 120"),
        ('max_concurrent = "4"\n', "max_concurrent must be a whole number"),
        ('save = "yes"\n', "save must be true or false"),
        ("timeout = 20\nprobe_timeout = 10\n", "shorter than timeout"),
        ("listen = [\n", "is not valid TOML"),
    ],
)
def test_bad_config_is_a_usage_error(portcall: Cli, tmp_path: Path, text: str, says: str) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(text, encoding="utf-8")
    outcome = portcall("serve", "--config", config)
    assert outcome.code == EXIT_USAGE
    assert outcome.err.startswith("Error: ") and says in outcome.err, outcome.err
    assert "Hint: " in outcome.err and "Traceback" not in outcome.err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--config", "/nonexistent/serve.toml"), "cannot read '/nonexistent/serve.toml'"),
        (("--listen", "localhost"), "'localhost' is not HOST:PORT"),
        (("--allow", "everything"), "'everything' is not an IP network"),
        (("--catalog", "/nonexistent.toml"), "cannot read catalog"),
        (("--db", "x.sqlite3"), "--db is the database of --save"),
        (("--ca", "/nonexistent-ca.pem"), "--ca"),
    ],
)
def test_bad_option_is_a_usage_error(portcall: Cli, args: tuple[str, ...], says: str) -> None:
    outcome = portcall("serve", *args)
    assert outcome.code == EXIT_USAGE, outcome
    assert says in outcome.err and "Traceback" not in outcome.err, outcome.err


def test_listen_address_taken_is_a_usage_error(portcall: Cli, lab: Lab) -> None:
    taken = lab.ports["smtp"]  # the lab's responder listens there
    outcome = portcall("serve", "--listen", f"127.0.0.1:{taken}")
    assert outcome.code == EXIT_USAGE
    assert f"cannot listen on 127.0.0.1:{taken}" in outcome.err


def test_parse_listen() -> None:
    assert parse_listen("[::]:0") == ("::", 0)
    with pytest.raises(ConfigError):
        parse_listen("::1:9691")  # an IPv6 address needs its brackets


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_process_probes_and_stops_cleanly(lab: Lab, tmp_path: Path, stop: int) -> None:
    port = free_ports(1)[0]
    config = tmp_path / "serve.toml"
    config.write_text(
        f'catalog = "{lab.catalog}"\nca = "{lab.ca}"\nlisten = "127.0.0.1:1"\n'
        'allow = ["10.0.0.0/8"]\n',
        encoding="utf-8",
    )
    argv = portcall_argv("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}")
    argv += ["--allow", "127.0.0.1/32"]
    with Process(argv, "portcall serve:", lab_env(tmp_path)) as served:
        assert served.lines == [
            f"portcall serve: listening on http://127.0.0.1:{port}/; probing allowed in "
            "127.0.0.1/32"
        ]
        answer = get(port, "/probe?target=127.0.0.1&ports=imaps")
        assert answer.value("probe_success") == 1
        assert get(port, "/probe?target=127.0.0.2&ports=imaps").status == 403
        served.process.send_signal(stop)
        assert served.process.wait(10) == 0
    assert not [line for line in served.errors if "Traceback" in line], served.errors
