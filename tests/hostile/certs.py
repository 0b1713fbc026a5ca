"""Certificates no honest CA would sign: 5,000 subject alternative names, and names whose
bytes are not what their ASN.1 string type promises (invalid UTF-8 in the UTF8String of a
user principal name, bytes above 0x7f in a PrintableString and in a DNS name, which must be
IA5/ASCII), plus a terminal escape sequence in the common name.

`cryptography` writes only well-formed strings, so the certificate is built with ASCII
placeholders of the right length, the placeholders are overwritten in the to-be-signed
bytes, and those bytes are signed again. The lengths do not change, so the DER stays valid.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

SAN_COUNT: Final = 5_000
#: Microsoft's user principal name, an otherName holding a UTF8String (as Exchange
#: certificates issued by a Windows CA often carry).
UPN_OID: Final = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

#: Placeholder -> the bytes that replace it (same length each). These two still parse with
#: `cryptography`: the CN is valid UTF-8 (OpenSSL refuses to load a certificate whose subject
#: holds invalid UTF-8 in a UTF8String, so no server could present one), an otherName's value
#: is opaque to it.
READABLE: Final = {
    b"CNPLACEHOLDER": b"mail\x1b[2J\xe2\x80\xae.e",  # a terminal escape and an RTL override
    b"UPNPLACEHOLDER": b"\xc0\xafuser@\xed\xa0\x80xyzw",  # overlong / surrogate UTF-8 in a UPN
}
#: These break the string types' alphabets, and `cryptography` refuses the certificate.
UNREADABLE: Final = {
    b"ORGPLACEHOLDER": b"Org\xe9\xff\x00\x1b[2J!!!!",  # non-printable bytes, PrintableString
    b"dnsplaceholder.example": b"d\xe9\xff\xfe.\x00\x1b[31mxxx.example",  # non-ASCII DNS name
}


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _template(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "CNPLACEHOLDER"),
            # `_type` is cryptography's escape hatch for the string type it writes.
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "ORGPLACEHOLDER", _type=_ASN1Type.PrintableString
            ),
        ]
    )
    names: list[x509.GeneralName] = [
        x509.DNSName(f"h{number}.x.test") for number in range(SAN_COUNT)
    ]
    names.append(x509.DNSName("dnsplaceholder.example"))
    # An otherName's value is given as DER: here a UTF8String.
    names.append(x509.OtherName(UPN_OID, _tlv(0x0C, b"UPNPLACEHOLDER")))
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )


def hostile_certificate(*, readable: bool) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """The certificate (DER) and its key; `readable` leaves out the patches that make
    `cryptography` refuse it."""
    key = ec.generate_private_key(ec.SECP256R1())
    template = _template(key)
    whole = template.public_bytes(serialization.Encoding.DER)
    tbs = template.tbs_certificate_bytes
    rest = whole[whole.index(tbs) + len(tbs) :]
    algorithm = rest[: 2 + rest[1]]  # AlgorithmIdentifier: short, so one length octet
    patches = READABLE if readable else {**READABLE, **UNREADABLE}
    for placeholder, replacement in patches.items():
        assert len(placeholder) == len(replacement), placeholder
        assert placeholder in tbs, placeholder  # twice for names in subject and issuer
        tbs = tbs.replace(placeholder, replacement)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))
    return der, key


def write_hostile_certificate(directory: Path, *, readable: bool) -> tuple[Path, Path]:
    """Write the certificate and key as PEM into `directory`; returns their paths."""
    der, key = hostile_certificate(readable=readable)
    stem = "readable" if readable else "unreadable"
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_text(ssl.DER_cert_to_PEM_cert(der))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
