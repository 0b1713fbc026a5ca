"""256 hosts against real daemons: the verdicts of a whole /24 are those of one host.

The lab's daemons (slapd, Postfix, Dovecot, INN, nginx, and the responder for 691) listen on
every address, and the namespace's loopback holds all of 127.0.0.0/8, so each address of
127.0.1.0/24 is a host with the 17 catalog ports. One check of the /24 from inside the
namespace must give every port of every host the verdict, product and findings the same check
gives a single host: at scale nothing may turn silent, filtered or wrong.

One daemon here stands in for 256 servers, so each is given the limits such a farm would have
in all: Dovecot's login processes, nginx's connections and nnrpd's listen backlog (through a
super-server) and slapd's threads are sized for hundreds of clients at once.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.lab.farm import mail_server_farm
from tests.interop.lab.lab import Lab

pytestmark = pytest.mark.interop

HOST = "mail.lab.test"
#: 256 addresses, given one by one: a /24 written as a range would leave out its network and
#: broadcast addresses.
ADDRESSES = [f"127.0.1.{n}" for n in range(256)]
CATALOG_PORTS = 17
#: Seconds per connection: twice the default, as the daemons of 256 servers share two cores
#: with the check here; what is proven is that no verdict comes from portcall's scheduling.
TIMEOUT = 10


@pytest.fixture(scope="module")
def wide() -> Iterator[Lab]:
    with Lab(HOST, every_address=True) as lab:
        lab.start(*mail_server_farm())
        yield lab


def check(lab: Lab, targets: list[str]) -> list[dict[str, Any]]:
    """`portcall check -iL FILE` in the lab, names checked against the lab's certificate."""
    out, listed = lab.workdir / "check.json", lab.workdir / "targets.txt"
    listed.write_text("\n".join(targets) + "\n")
    argv = [sys.executable, "-m", "portcall", "check", "-iL", str(listed)]
    argv += ["--ca", str(lab.pki.ca_cert)]
    argv += ["--servername", HOST, "--timeout", str(TIMEOUT), "--json", "-o", str(out)]
    done = lab.run(argv, timeout=240)
    assert out.exists(), f"no output (exit {done.returncode}): {done.stderr[-2000:]}"
    document = json.loads(out.read_text())
    results: list[dict[str, Any]] = document["results"]
    return results


def essence(result: dict[str, Any]) -> tuple[Any, ...]:
    """What must not change with the number of hosts: the verdict and what it rests on."""
    tls = result["tls"] or {}
    facts = (tls.get("version"), tls.get("trusted"), tls.get("name_matches"))
    codes = tuple(sorted(f["code"] for f in result["findings"]))
    return (result["verdict"], result["product"], codes, facts)


def test_a_whole_network_gets_the_verdicts_of_one_host(wide: Lab) -> None:
    one = {r["port"]: essence(r) for r in check(wide, ["127.0.1.1"])}
    assert len(one) == CATALOG_PORTS
    assert {e[0] for e in one.values()} == {"ok"}, one
    results = check(wide, ADDRESSES)
    assert len(results) == 256 * CATALOG_PORTS
    changed = [
        (r["address"], r["port"], r["verdict"], r["reason"])
        for r in results
        if essence(r) != one[r["port"]]
    ]
    assert not changed, (len(changed), Counter(c[2] for c in changed), changed[:10])
    assert len({r["address"] for r in results}) == 256
