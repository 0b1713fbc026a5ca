"""The history as a user meets it: `portcall listen` serves with one certificate, then with a
renewed one; `portcall check --save` records each run; `portcall diff` names exactly the
certificates that changed, and nothing when nothing did. Every process is a real subprocess
on loopback, stopped by the test."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portcall.catalog import load_catalog
from tests.responders.test_listen_cli import HOST, free_ports, listening, portcall

#: The rows served and checked: three with TLS (STARTTLS or implicit), one without.
KEYS = ("smtp", "smtps", "imaps", "http")
TLS_KEYS = ("smtp", "smtps", "imaps")
FIRST_SERIAL, RENEWED_SERIAL = 0x51A1, 0x51A2
NOW = datetime.now(UTC).replace(microsecond=0)


def write_catalog(path: Path, ports: dict[str, int]) -> Path:
    """The built-in catalog's rows named in `ports`, each moved to its port there."""
    rows = []
    for entry in load_catalog().entries:
        if entry.key in ports:
            fields = {**entry.to_dict(), "port": ports[entry.key]}
            # JSON strings, numbers and booleans are TOML values as well.
            rows.append(
                "[[port]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
            )
    path.write_text('[catalog]\nname = "lab"\ntitle = "moved"\n\n' + "\n".join(rows))
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass(frozen=True)
class Pki:
    ca: Path
    certs: dict[int, tuple[Path, Path]]  # serial -> (certificate, key)


def make_pki(directory: Path) -> Pki:
    """A CA and two certificates for HOST that differ only in serial and end of validity."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("history test CA"))
        .issuer_name(_name("history test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs = {
        serial: _leaf(directory, ca, ca_key, serial, days)
        for serial, days in ((FIRST_SERIAL, 200), (RENEWED_SERIAL, 565))
    }
    return Pki(directory / "ca.crt", certs)


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing,
        crl_sign=signing,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf(
    directory: Path,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    serial: int,
    days: int,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([x509.DNSName(HOST)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(names, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / f"{serial:X}.crt", directory / f"{serial:X}.key"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths[1], key)
    return paths


class Lab:
    """A catalog of free loopback ports, the PKI, and the history database of the runs."""

    def __init__(self, directory: Path) -> None:
        ports = dict(zip(KEYS, free_ports(len(KEYS)), strict=True))
        self.catalog = write_catalog(directory / "lab.toml", ports)
        self.pki = make_pki(directory)
        self.db = directory / "history.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if k != "PORTCALL_DB"}
        self.env["XDG_DATA_HOME"] = str(directory / "xdg")

    def checked_with(self, serial: int) -> subprocess.CompletedProcess[str]:
        """`listen` with the certificate `serial`, one `check --save` run of it, `listen`
        stopped."""
        cert, key = self.pki.certs[serial]
        served = ["--catalog", str(self.catalog), "--hostname", HOST]
        with listening([*served, "--cert", str(cert), "--key", str(key)], self.env) as listener:
            checked = self.portcall(
                "check", "127.0.0.1", "--catalog", str(self.catalog), "--ca", str(self.pki.ca),
                "--servername", HOST, "--timeout", "3", "--save", "--db", str(self.db),
            )  # fmt: skip
            listener.stop()
        assert checked.returncode == 0, checked.stdout + checked.stderr
        return checked

    def portcall(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            portcall(*args), capture_output=True, text=True, env=self.env, timeout=30
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield Lab(tmp_path_factory.mktemp("history-e2e"))


def _days(serial: int) -> int:
    return 200 if serial == FIRST_SERIAL else 565


def test_a_renewed_certificate_is_the_only_change_then_nothing_changes(lab: Lab) -> None:
    lab.checked_with(FIRST_SERIAL)
    lab.checked_with(RENEWED_SERIAL)
    changed = lab.portcall("diff", "--db", str(lab.db), "--json")
    assert changed.returncode == 1, changed.stderr
    report = json.loads(changed.stdout)
    assert (report["old"]["id"], report["new"]["id"]) == (1, 2)
    found = {(c["key"], c["kind"], c["note"], c["old"], c["new"]) for c in report["changes"]}
    assert found == {
        (key, "certificate", "renewed", f"{FIRST_SERIAL:X}", f"{RENEWED_SERIAL:X}")
        for key in TLS_KEYS
    }
    for change in report["changes"]:
        for side, serial in (("old", FIRST_SERIAL), ("new", RENEWED_SERIAL)):
            end = datetime.fromisoformat(change[f"{side}_not_after"])
            assert end == NOW + timedelta(days=_days(serial))

    text = lab.portcall("diff", "--db", str(lab.db))
    assert text.returncode == 1
    assert text.stdout.splitlines()[0].endswith(": 3 changes")
    assert f"certificate renewed: serial {FIRST_SERIAL:X} -> {RENEWED_SERIAL:X}" in text.stdout

    lab.checked_with(RENEWED_SERIAL)
    same = lab.portcall("diff", "--db", str(lab.db))
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout == same.stdout.splitlines()[0] + "\n"
    assert same.stdout.startswith("run 2 (") and "-> run 3 (" in same.stdout
    assert same.stdout.rstrip().endswith(": no changes")

    listed = lab.portcall("history", "--db", str(lab.db), "--json")
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["id"], r["health"], r["counts"]) for r in runs] == [
        (n, "healthy", {"ok": len(KEYS)}) for n in (3, 2, 1)
    ]
