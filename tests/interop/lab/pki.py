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
import ipaddress
import os
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.interop.lab.base import Pki

CA_NAME = "portcall lab CA"
OTHER_NAME = "other.lab.test"
KEY_GROUP = "news"

#: Which of the lab certificates a daemon presents.
CertChoice = Literal["good", "expired", "wrong-name"]

_DAY = datetime.timedelta(days=1)


def make_pki(directory: Path, hostname: str) -> Pki:
    """Write the CA and the three server certificates (with their keys) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _new_key()
    ca_cert = _ca_certificate(ca_key, now)
    _write_cert(directory / "ca.pem", ca_cert)
    lab_names = [hostname, "localhost", "127.0.0.1"]
    # Clocks may differ a little; the good certificates start an hour in the past.
    valid = (now - datetime.timedelta(hours=1), now + 365 * _DAY)
    expired = (now - 400 * _DAY, now - 3 * _DAY)
    pairs = {
        "server": (hostname, lab_names, valid),
        "expired": (hostname, lab_names, expired),
        "wrong-name": (OTHER_NAME, [OTHER_NAME], valid),
    }
    for stem, (common_name, names, validity) in pairs.items():
        key = _new_key()
        cert = _server_certificate(key, common_name, names, validity, ca_key, ca_cert)
        _write_cert(directory / f"{stem}.pem", cert)
        _write_key(directory / f"{stem}.key", key)
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


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "portcall lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(key: rsa.RSAPrivateKey, now: datetime.datetime) -> x509.Certificate:
    # The CA outlives the expired leaf on both sides, so only the leaf's dates are at fault.
    public = key.public_key()
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 500 * _DAY)
        .not_valid_after(now + 2 * 365 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _server_certificate(
    key: rsa.RSAPrivateKey,
    common_name: str,
    names: list[str],
    validity: tuple[datetime.datetime, datetime.datetime],
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256())


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    try:
        os.chown(path, -1, grp.getgrnam(KEY_GROUP).gr_gid)
        path.chmod(0o640)
    except (KeyError, PermissionError):
        # Without the group (or the right to give it away) a lab key may as well be public.
        path.chmod(0o644)
