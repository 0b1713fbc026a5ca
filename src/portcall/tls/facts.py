"""What a TLS handshake revealed: the negotiated parameters and the leaf certificate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime


@dataclass
class CertificateFacts:
    subject: str
    issuer: str
    common_name: str | None
    dns_names: list[str]
    ip_addresses: list[str]
    not_before: datetime
    not_after: datetime
    serial: str
    sha256: str
    key: str
    signature_algorithm: str | None
    self_signed: bool

    def days_left(self, now: datetime) -> int:
        return (self.not_after - now).days


@dataclass
class TlsFacts:
    version: str
    cipher: str
    #: True when only the legacy context (TLS 1.0/1.1, old ciphers) could connect.
    legacy: bool = False
    certificate: CertificateFacts | None = None
    #: None when not checked; False with `trust_error` saying why the chain failed.
    trusted: bool | None = None
    trust_error: str | None = None
    #: The name the certificate was matched against, and how it matched (or why not).
    checked_name: str | None = None
    name_matches: bool | None = None
    name_match_detail: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self, now: datetime | None = None) -> dict[str, object]:
        data = asdict(self)
        cert = data.get("certificate")
        if cert and self.certificate is not None:
            for stamp in ("not_before", "not_after"):
                cert[stamp] = cert[stamp].isoformat()
            cert["days_left"] = self.certificate.days_left(now or datetime.now(UTC))
        return data
