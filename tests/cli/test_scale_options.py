"""The options a check at scale needs: targets from a list or stdin, exclusions, every address
of a name, a connection rate, and results streamed as JSON lines."""

from __future__ import annotations

import io
import itertools
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portcall.catalog import load_catalog
from tests.conftest import Cli

CATALOG = load_catalog()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_row_catalog(path: Path, port: int) -> Path:
    entry = CATALOG.by_key("pop3")
    assert entry is not None
    fields = {**entry.to_dict(), "port": port}
    rows = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    path.write_text(f'[catalog]\nname = "one"\n\n[[port]]\n{rows}', "utf-8")
    return path


@pytest.fixture
def refused(tmp_path: Path) -> Path:
    """A catalog of one row on a port where nothing listens: every probe is refused."""
    return one_row_catalog(tmp_path / "refused.toml", closed_port())


def hosts_of(out: str) -> list[str]:
    return [json.loads(line)["host"] for line in out.splitlines()]


def test_targets_come_from_a_list_with_comments(portcall: Cli, refused: Path) -> None:
    listing = refused.parent / "targets.txt"
    listing.write_text("# lab hosts\n127.0.0.1  127.0.0.2\n\n127.0.0.3 # the last\n", "utf-8")
    done = portcall("check", "-iL", listing, "--catalog", refused, "--jsonl")
    assert sorted(hosts_of(done.out)) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert done.code == 1  # every port refused: nothing answers, a warning


def test_targets_come_from_stdin(
    portcall: Cli, refused: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("127.0.0.4\n127.0.0.5\n"))
    done = portcall("check", "-iL", "-", "127.0.0.6", "--catalog", refused, "--jsonl")
    assert sorted(hosts_of(done.out)) == ["127.0.0.4", "127.0.0.5", "127.0.0.6"]


def test_exclusions_by_range_and_by_address(portcall: Cli, refused: Path) -> None:
    done = portcall(
        "check", "127.0.0.0/28", "--exclude", "127.0.0.0/30,127.0.0.9", "--exclude",
        "127.0.0.12/30", "--catalog", refused, "--jsonl",
    )  # fmt: skip
    assert sorted(hosts_of(done.out), key=lambda a: int(a.rsplit(".", 1)[1])) == [
        f"127.0.0.{n}" for n in (4, 5, 6, 7, 8, 10, 11)
    ]


def test_excluding_everything_is_a_usage_error(portcall: Cli, refused: Path) -> None:
    done = portcall("check", "127.0.0.1", "--exclude", "127.0.0.0/8", "--catalog", refused)
    assert done.code == 64 and "--exclude leaves no target" in done.err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-iL", "/nonexistent/targets"], "--input-list: cannot read '/nonexistent/targets'"),
        (["127.0.0.1", "--json", "--jsonl"], "--json and --jsonl exclude each other"),
        (["--locate", "example.test", "--jsonl"], "--jsonl is for TARGET... checks"),
        (["127.0.0.1", "--exclude", "10.0.0.0/33"], "'10.0.0.0/33' is not a valid CIDR range"),
        (["127.0.0.1", "--rate", "0"], "--rate"),
    ],
)
def test_bad_scale_options_are_usage_errors(portcall: Cli, args: list[str], words: str) -> None:
    done = portcall("check", *args)
    assert done.code in (2, 64), done.err  # click's own range errors exit 2
    assert words in done.err


def test_a_list_with_a_control_character_is_refused(portcall: Cli, tmp_path: Path) -> None:
    listing = tmp_path / "bad.txt"
    listing.write_text("127.0.0.1\x1b[2J\n", "utf-8")
    done = portcall("check", "-iL", listing)
    assert done.code == 64 and "line 1: a target holds a control character" in done.err


def test_jsonl_lines_are_results_of_the_check_schema(portcall: Cli, refused: Path) -> None:
    done = portcall("check", "127.0.0.1", "127.0.0.2", "--catalog", refused, "--jsonl")
    lines = [json.loads(line) for line in done.out.splitlines()]
    assert len(lines) == 2
    json_done = portcall("check", "127.0.0.1", "127.0.0.2", "--catalog", refused, "--json")
    document = json.loads(json_done.out)
    assert [set(line) for line in lines] == [set(r) for r in document["results"]]
    assert {line["verdict"] for line in lines} == {"refused"}
    assert done.code == json_done.code == 1


def test_jsonl_to_a_file_says_how_many(portcall: Cli, refused: Path) -> None:
    target = refused.parent / "out.jsonl"
    done = portcall("check", "127.0.0.1", "--catalog", refused, "--jsonl", "-o", target)
    assert done.out == ""
    assert "1 results written to" in done.err
    assert json.loads(target.read_text("utf-8").strip())["verdict"] == "refused"


def test_every_address_of_a_name(portcall: Cli, refused: Path) -> None:
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", None, socket.AF_UNSPEC)}
    done = portcall("check", "localhost", "--all-addresses", "--catalog", refused, "--jsonl")
    lines = [json.loads(line) for line in done.out.splitlines()]
    assert {line["address"] for line in lines} == addresses
    assert {line["host"] for line in lines} == {"localhost"}
    first_only = portcall("check", "localhost", "--catalog", refused, "--jsonl")
    assert len(first_only.out.splitlines()) == 1


class _Accepts(socketserver.ThreadingTCPServer):
    """Notes when each connection is accepted, in the accepting thread itself: a time taken
    in each connection's own thread would carry that thread's start-up jitter, and two
    connections 50 ms apart could look closer than they came."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.times: list[float] = []
        super().__init__(("0.0.0.0", 0), socketserver.BaseRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.times.append(time.monotonic())
        super().process_request(request, client_address)


@pytest.fixture
def accepts() -> Iterator[_Accepts]:
    server = _Accepts()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_rate_spaces_new_connections(portcall: Cli, accepts: _Accepts, tmp_path: Path) -> None:
    catalog = one_row_catalog(tmp_path / "c.toml", accepts.server_address[1])
    done = portcall(
        "check", "127.0.0.0/28", "--catalog", catalog, "--rate", "20", "--timeout", "1", "--jsonl"
    )
    assert len(done.out.splitlines()) == 14
    times = sorted(accepts.times)
    assert len(times) >= 14
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 20 per second: one every 50 ms (a little jitter allowed), never a burst.
    assert min(gaps) > 0.035, gaps
