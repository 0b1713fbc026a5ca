"""The lab PKI of the responders: a CA of their own and a "computer certificate" for the host.

Exchange 2000/2003 needs a computer certificate for every TLS port; the responders need one
too. The files live in one directory and are reused while they still fit (same host name,
still valid, signed by the CA beside them), so a client told to trust the CA once keeps
trusting it across runs. An expired sibling signed by the same CA lets the demo show what an
expired certificate looks like to a client.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY: Final = timedelta(days=1)
CA_LIFETIME: Final = 3650 * DAY
HOST_LIFETIME: Final = 397 * DAY
#: A host certificate closer to its end than this is replaced, so that `portcall check`
#: (which warns 30 days ahead by default) never sees the lab certificate as expiring.
RENEW_BEFORE: Final = 60 * DAY
#: The names every lab certificate carries besides the host name: clients on the same machine
#: reach the responders by these.
LOCAL_NAMES: Final = ("localhost",)
LOCAL_ADDRESSES: Final = ("127.0.0.1", "::1")
_ORGANISATION: Final = "portcall lab"

SanName = x509.DNSName | x509.IPAddress


class LabError(Exception):
    """The lab directory or a user-supplied certificate cannot be used; the message says why
    and `hint` what to do."""

    def __init__(
        self,
        message: str,
        hint: str = "--cert and --key take PEM files, --cert-dir a writable directory",
    ) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class LabCertificates:
    """Where the lab's files are."""

    directory: Path
    hostname: str

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def host_cert(self) -> Path:
        return self.directory / "host.crt"

    @property
    def host_key(self) -> Path:
        return self.directory / "host.key"

    @property
    def expired_cert(self) -> Path:
        return self.directory / "expired.crt"

    @property
    def expired_key(self) -> Path:
        return self.directory / "expired.key"


def default_lab_dir() -> Path:
    """$XDG_DATA_HOME/portcall/lab, or ~/.local/share/portcall/lab (XDG Base Directory spec)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "portcall" / "lab"


def ensure_lab(directory: Path, hostname: str, *, now: datetime | None = None) -> LabCertificates:
    """The lab CA and certificates for `hostname` in `directory`, made or renewed as needed."""
    now = now or datetime.now(UTC)
    lab = LabCertificates(directory, hostname)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(directory):
            ca_cert, ca_key, fresh_ca = _ensure_ca(lab, now)
            if fresh_ca or not _host_fits(lab.host_cert, ca_cert, hostname, now, expired=False):
                _issue(lab.host_cert, lab.host_key, ca_cert, ca_key, hostname, now, expired=False)
            if fresh_ca or not _host_fits(lab.expired_cert, ca_cert, hostname, now, expired=True):
                _issue(
                    lab.expired_cert, lab.expired_key, ca_cert, ca_key, hostname, now, expired=True
                )
    except OSError as exc:
        raise LabError(f"cannot use the lab directory {directory}: {exc.strerror or exc}") from exc
    return lab


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the lab directory's lock: responders started together (one per host of a lab)
    must not each write a key and a certificate, and end with one's key beside the other's
    certificate."""
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def server_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A TLS server context that presents `cert` (PEM, chain allowed) with `key`."""
    for path in (cert, key):
        if not Path(path).is_file():
            raise LabError(f"cannot read {path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise LabError(
            f"cannot use certificate {cert} with key {key}: {_why(exc)} "
            "(both must be PEM, the key unencrypted and matching the certificate)"
        ) from exc
    return context


def _why(exc: OSError | ssl.SSLError) -> str:
    reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
    return str(reason).replace("_", " ").lower()


# -- the CA --------------------------------------------------------------------------------


def _ensure_ca(
    lab: LabCertificates, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, bool]:
    loaded = _load_pair(lab.ca_cert, lab.ca_key)
    # The CA must outlive any host certificate it signs from now on.
    if loaded is not None and loaded[0].not_valid_after_utc > now + HOST_LIFETIME:
        return loaded[0], loaded[1], False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, "portcall lab CA"),
        ]
    )
    builder = (
        _base(name, name, key.public_key(), now - DAY, now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing_certificates=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    cert = builder.sign(key, hashes.SHA256())
    _write_pair(lab.ca_cert, lab.ca_key, cert, key)
    return cert, key, True


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, signing_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing_certificates,
        crl_sign=signing_certificates,
        encipher_only=False,
        decipher_only=False,
    )


# -- host certificates -----------------------------------------------------------------------


def subject_names(hostname: str) -> list[SanName]:
    """The SANs of a lab certificate: the host name, then the loopback names and addresses."""
    names: list[SanName] = [_san(hostname)]
    for extra in (*LOCAL_NAMES, *LOCAL_ADDRESSES):
        san = _san(extra)
        if san not in names:
            names.append(san)
    return names


def _san(name: str) -> SanName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name.lower())


def _issue(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostname: str,
    now: datetime,
    *,
    expired: bool,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    # The expired one ended a month ago, well past any clock skew a client allows.
    start, end = (now - 400 * DAY, now - 30 * DAY) if expired else (now - DAY, now + HOST_LIFETIME)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
        ]
    )
    builder = (
        _base(subject, ca_cert.subject, key.public_key(), start, end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(subject_names(hostname)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    _write_pair(cert_path, key_path, builder.sign(ca_key, hashes.SHA256()), key)


def _host_fits(
    path: Path, ca_cert: x509.Certificate, hostname: str, now: datetime, *, expired: bool
) -> bool:
    """Whether the certificate at `path` can be reused for `hostname` as it is."""
    cert = _load_cert(path)
    if cert is None or not _signed_by(cert, ca_cert):
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if list(names) != subject_names(hostname):
        return False
    if expired:
        return cert.not_valid_after_utc < now - DAY
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc > now + RENEW_BEFORE


def _signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# -- files -----------------------------------------------------------------------------------


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert = _load_cert(cert_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(key_path, key_pem, mode=0o600)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write beside `path` and rename into place: a second responder starting at the same time
    reads either the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
