"""Bad input from the user ends in `Error: …` and a `Hint: …` with a documented exit code,
never a traceback; a full disk loses no earlier report."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portcall.cli.group import EXIT_BROKEN_PIPE, EXIT_LOCAL, EXIT_USAGE


def portcall(*args: object, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcall", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert lines and lines[0].startswith("Error: "), done.stderr
    assert any(line.startswith("Hint: ") for line in lines[1:]), done.stderr
    for word in words:
        assert word in done.stderr
    assert "Traceback" not in done.stderr


#: `portcall listen` cases: its arguments (given a scratch directory) and what the error says.
LISTEN = {
    "bind-not-an-address": (lambda _: ["--bind", "300.1.1.1"], "300.1.1.1"),
    "bind-foreign-address": (lambda _: ["--bind", "192.0.2.77"], "not one of this machine's"),
    "cert-missing": (
        lambda tmp: ["--cert", tmp / "none.pem", "--key", tmp / "none.key"],
        "cannot read",
    ),
    "cert-not-pem": (lambda tmp: ["--cert", tmp / "x.txt", "--key", tmp / "x.txt"], "PEM"),
    "cert-dir-is-a-file": (lambda tmp: ["--cert-dir", tmp / "x.txt"], "lab directory"),
    "unknown-port-key": (lambda _: ["--ports", "nosuch"], "'nosuch' is neither"),
    "offset-out-of-range": (lambda _: ["--port-offset", "70000"], "70000"),
    "bad-profile": (lambda _: ["--profile", "exchange2019"], "exchange2019"),
    "idle-timeout-nan": (lambda _: ["--idle-timeout", "nan"], "not a number of seconds"),
    "empty-hostname": (lambda _: ["--hostname", ""], "--hostname is empty"),
    "hostname-with-space": (lambda _: ["--hostname", "mail server"], "'mail server'"),
    "empty-bind": (lambda _: ["--bind", ""], "--bind is empty"),
    "offset-past-65535": (lambda _: ["--port-offset", "65000"], "above 65535"),
    "cert-without-key": (lambda tmp: ["--cert", tmp / "x.txt"], "go together"),
}


@pytest.mark.parametrize("case", LISTEN.values(), ids=LISTEN.keys())
def test_listen_refuses_bad_input(tmp_path: Path, case: tuple) -> None:  # type: ignore[type-arg]
    make, words = case
    (tmp_path / "x.txt").write_text("not PEM\n", encoding="utf-8")
    done = portcall("listen", "--port-offset", "20000", *make(tmp_path), timeout=20)
    assert_error(done, EXIT_USAGE, words)


CATALOGS = {
    "empty": (b"", "no [[port]] rows"),
    "not-utf8": (b"\xff\xfe[[port]]\n", "not UTF-8"),
    "wrong-type": (
        b'[[port]]\nkey = "x"\nport = "twenty-five"\nprotocol = "smtp"\ntls = "none"\n'
        b'component = "c"\ndescription = "d"\nneeds = "n"\nhint = "h"\n',
        "field 'port'",
    ),
    "duplicate-toml-key": (b'[[port]]\nkey = "a"\nkey = "b"\n', "not valid TOML"),
    "not-a-table": (b"port = 25\n", "[[port]]"),
}


@pytest.mark.parametrize("case", CATALOGS.values(), ids=CATALOGS.keys())
@pytest.mark.parametrize("command", ["ports", "check"])
def test_a_malformed_catalog_names_what_is_wrong(
    tmp_path: Path, case: tuple[bytes, str], command: str
) -> None:
    data, words = case
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    args = ["check", "127.0.0.1"] if command == "check" else ["ports"]
    assert_error(portcall(*args, "--catalog", path), EXIT_USAGE, str(path), words)


def test_a_missing_catalog_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert_error(portcall("ports", "--catalog", missing), EXIT_USAGE, str(missing))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of the test's own (root): a disk that fills up for real."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    try:
        with (disk / "filler").open("wb", buffering=0) as handle:
            while True:
                handle.write(b"\0" * 1024)
    except OSError as exc:
        assert "No space left" in str(exc)


def test_a_full_disk_keeps_the_earlier_report(small_disk: Path) -> None:
    report = small_disk / "report.txt"
    report.write_text("the earlier report\n", encoding="utf-8")
    fill(small_disk)
    # plan writes a large report through the same atomic writer as check and firewall.
    topology = Path(__file__).resolve().parents[2] / "examples" / "routing-groups.yml"
    done = portcall("plan", topology, "--json", "-o", report)
    assert_error(done, EXIT_LOCAL, f"cannot write {report}", "No space left on device")
    assert "the earlier file is unchanged" in done.stderr
    assert report.read_text(encoding="utf-8") == "the earlier report\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report.txt"]


def test_a_read_only_file_system_is_refused_before_any_work(tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(mount)], check=True)
    try:
        done = portcall("plan", "examples/frontend-perimeter.yml", "-o", mount / "plan.txt")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert_error(done, EXIT_USAGE, "cannot write into")


def test_an_error_about_a_hostile_path_is_printed_inert(tmp_path: Path) -> None:
    """A directory named with an escape sequence: the error and its hint quote the name, and
    neither may colour the terminal."""
    directory = tmp_path / "out\x1b[31m"
    directory.mkdir()
    done = portcall("check", "127.0.0.1", "--ports", "25", "-o", directory)
    assert_error(done, EXIT_USAGE, "is a directory", "out\\x1b[31m/report")
    assert "\x1b" not in done.stderr


@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["text", "json"])
def test_check_on_a_full_disk_keeps_the_earlier_report(
    small_disk: Path, as_json: list[str]
) -> None:
    report = small_disk / "report"
    report.write_text("the earlier report\n", encoding="utf-8")
    fill(small_disk)
    # Every catalog port on loopback: answered or refused at once, then the report is written.
    done = portcall("check", "127.0.0.1", "--timeout", "2", *as_json, "-o", report)
    assert_error(done, EXIT_LOCAL, f"cannot write {report}", "No space left on device")
    assert report.read_text(encoding="utf-8") == "the earlier report\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report"]


def test_a_reader_that_leaves_early_ends_the_run_quietly() -> None:
    # `portcall plan … | head -1`: a closed pipe is neither a traceback nor exit 1 ("warnings").
    topology = Path(__file__).resolve().parents[2] / "examples" / "routing-groups.yml"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "portcall", "plan", str(topology)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_BROKEN_PIPE
    assert done.stderr == ""
