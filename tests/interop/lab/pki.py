"""The lab's throw-away PKI: one CA and three server certificates it signed.

* a good certificate for the lab host name, `localhost` and 127.0.0.1;
* the same names, but expired days ago;
* a valid certificate for another name only, to provoke a name mismatch.

Keys are RSA 2048: every TLS stack in the lab (TLS 1.0 at security level 0 included) accepts
them. Keys are readable by group `news` because nnrpd reads its key after dropping to that user.
"""

from __future__ import annotations

import datetime
import grp
import os
from pathlib import Path
from typing import Literal

from tests.interop.lab.base import Pki
from tests.tls.conftest import Issued, issue, make_ca

CA_NAME = "portcall lab CA"
OTHER_NAME = "other.lab.test"
KEY_GROUP = "news"
ORGANISATION = "portcall lab"
KEY_KIND = "rsa2048"
LAB_ADDRESSES = ("127.0.0.1",)

#: Which of the lab certificates a daemon presents.
CertChoice = Literal["good", "expired", "wrong-name"]

_DAY = datetime.timedelta(days=1)


def make_pki(directory: Path, hostname: str) -> Pki:
    """Write the CA and the three server certificates (with their keys) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    # The CA outlives the expired leaf on both sides, so only the leaf's dates are at fault.
    ca = make_ca(CA_NAME, kind=KEY_KIND, org=ORGANISATION)
    _write_cert(directory / "ca.pem", ca)
    lab_names = (hostname, "localhost")
    # Clocks may differ a little; the good certificates start an hour in the past.
    valid = (now - datetime.timedelta(hours=1), now + 365 * _DAY)
    expired = (now - 400 * _DAY, now - 3 * _DAY)
    leaves = {
        "server": (hostname, lab_names, LAB_ADDRESSES, valid),
        "expired": (hostname, lab_names, LAB_ADDRESSES, expired),
        "wrong-name": (OTHER_NAME, (OTHER_NAME,), (), valid),
    }
    for stem, (common_name, dns, ips, (start, end)) in leaves.items():
        leaf = issue(
            ca,
            cn=common_name,
            dns=dns,
            ips=ips,
            not_before=start,
            not_after=end,
            kind=KEY_KIND,
            org=ORGANISATION,
        )
        _write_cert(directory / f"{stem}.pem", leaf)
        _write_key(directory / f"{stem}.key", leaf)
    return Pki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        expired_cert=directory / "expired.pem",
        expired_key=directory / "expired.key",
        wrong_name_cert=directory / "wrong-name.pem",
        wrong_name_key=directory / "wrong-name.key",
    )


def cert_pair(pki: Pki, choice: CertChoice) -> tuple[Path, Path]:
    """The (certificate, key) files a daemon should present for `choice`."""
    if choice == "good":
        return pki.server_cert, pki.server_key
    if choice == "expired":
        return pki.expired_cert, pki.expired_key
    if choice == "wrong-name":
        return pki.wrong_name_cert, pki.wrong_name_key
    raise ValueError(f"unknown certificate choice {choice!r}")


def _write_cert(path: Path, issued: Issued) -> None:
    path.write_bytes(issued.pem)
    path.chmod(0o644)


def _write_key(path: Path, issued: Issued) -> None:
    path.write_bytes(issued.key_pem)
    try:
        os.chown(path, -1, grp.getgrnam(KEY_GROUP).gr_gid)
        path.chmod(0o640)
    except (KeyError, PermissionError):
        # Without the group (or the right to give it away) a lab key may as well be public.
        path.chmod(0o644)
