"""Interop tests need root and real daemons. When either is missing they fail, loudly:
a CI run that silently skipped them would claim a proof it never made."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.interop.lab.lab import sweep_stale_namespaces
from tests.interop.samba_domain import Domain, provision

#: Programs the lab itself and its own tests run (OpenLDAP, nginx, iproute2, nftables).
REQUIRED_TOOLS = (
    "ip",
    "nft",
    "slapd",
    "slapadd",
    "ldapsearch",
    "nginx",
    "openssl",
    "postfix",
    "dovecot",
)
#: INN's programs live outside PATH.
REQUIRED_FILES = ("/usr/lib/news/bin/nnrpd", "/usr/lib/news/bin/makehistory")

INSTALL_HINT = (
    "install them with: apt-get install -y slapd ldap-utils dovecot-imapd dovecot-pop3d "
    "postfix inn2 nginx-light nftables openssl iproute2"
)


@pytest.fixture(scope="session", autouse=True)
def lab_tools_present() -> None:
    """Fail (never skip) when the lab cannot run here."""
    if os.geteuid() != 0:
        pytest.fail(
            "interop tests create network namespaces and start daemons: run them as root "
            "(or deselect them with -m 'not interop')",
            pytrace=False,
        )
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    missing += [path for path in REQUIRED_FILES if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"interop lab programs not found on PATH: {', '.join(missing)}; {INSTALL_HINT}",
            pytrace=False,
        )
    # Namespaces of runs that were killed hold daemons that would never be stopped otherwise.
    sweep_stale_namespaces()


@pytest.fixture(scope="session")
def domain() -> Iterator[Domain]:
    """The Samba AD DC of the lab, provisioned once for every module that asks for it."""
    yield from provision()
