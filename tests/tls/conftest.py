"""Certificates made on the spot: a test CA and leaves with every defect portcall reports."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

NOW = datetime(2024, 3, 13, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def make_key(kind: str = "ec") -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    bits = int(kind.removeprefix("rsa") or 2048)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(cn: str | None, org: str = "Portcall Test") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


@dataclass
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, the form every TLS server here loads."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write certificate and key as PEM; returns (cert path, key path)."""
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.pem)
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def make_ca(
    cn: str = "Portcall Test CA", *, kind: str = "ec", org: str = "Portcall Test"
) -> Issued:
    key = make_key(kind)
    name = _name(cn, org)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - 3650 * DAY)
        .not_valid_after(datetime.now(UTC) + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(builder.sign(key, _hash_for(key)), key)


def issue(
    ca: Issued | None,
    *,
    cn: str | None = "mail.example.com",
    dns: Sequence[str] = ("mail.example.com",),
    ips: Sequence[str] = (),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    kind: str = "ec",
    org: str = "Portcall Test Server",
) -> Issued:
    """A server certificate signed by `ca`, or self-signed when `ca` is None."""
    key = make_key(kind)
    subject = _name(cn, org)
    start = not_before or datetime.now(UTC) - DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + 90 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca is not None:
        # Strict verifiers (OpenSSL's X509_STRICT, the default of Python 3.13) want a CA-issued
        # certificate to name its issuer's key (RFC 5280 section 4.2.1.1).
        issuer = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
        builder = builder.add_extension(issuer, critical=False)
    signer = ca.key if ca else key
    return Issued(builder.sign(signer, _hash_for(signer)), key)


class Pki:
    """Factory handed to tests: one CA for the session, leaves on demand."""

    def __init__(self, ca: Issued, directory: Path) -> None:
        self.ca = ca
        self.directory = directory
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(ca.pem)
        self._count = 0

    def issue(
        self,
        *,
        cn: str | None = "mail.example.com",
        dns: Sequence[str] = ("mail.example.com",),
        ips: Sequence[str] = (),
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        kind: str = "ec",
    ) -> Issued:
        return issue(
            self.ca,
            cn=cn,
            dns=dns,
            ips=ips,
            not_before=not_before,
            not_after=not_after,
            kind=kind,
        )

    def files(self, issued: Issued) -> tuple[Path, Path]:
        self._count += 1
        return issued.write(self.directory, f"leaf{self._count}")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(make_ca(), tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def valid(pki: Pki) -> Issued:
    return pki.issue(
        cn="mail.example.com",
        dns=("mail.example.com", "owa.example.com"),
        not_before=NOW - 30 * DAY,
        not_after=NOW + 200 * DAY,
    )


@pytest.fixture(scope="session")
def expired(pki: Pki) -> Issued:
    return pki.issue(not_before=NOW - 400 * DAY, not_after=NOW - 12 * DAY)


@pytest.fixture(scope="session")
def not_yet_valid(pki: Pki) -> Issued:
    return pki.issue(not_before=NOW + 5 * DAY, not_after=NOW + 100 * DAY)


@pytest.fixture(scope="session")
def cn_only(pki: Pki) -> Issued:
    return pki.issue(cn="exchange.corp.example", dns=(), kind="rsa2048")


@pytest.fixture(scope="session")
def wildcard(pki: Pki) -> Issued:
    return pki.issue(cn="*.example.com", dns=("*.example.com", "*.com", "example.com"))


@pytest.fixture(scope="session")
def ip_san(pki: Pki) -> Issued:
    return pki.issue(
        cn="mail.example.com", dns=("mail.example.com",), ips=("192.0.2.10", "2001:db8::1")
    )


@pytest.fixture(scope="session")
def self_signed() -> Issued:
    return issue(
        None,
        dns=("mail.example.com",),
        not_before=NOW - 30 * DAY,
        not_after=NOW + 200 * DAY,
        kind="rsa2048",
    )
