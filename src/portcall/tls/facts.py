"""What a TLS handshake revealed: the negotiated parameters and the leaf certificate."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum


class LegacyCause(StrEnum):
    """Why the probe had to step down from a current TLS client to reach the server."""

    #: The current hello was refused: TLS 1.0/1.1 only, old ciphers, no secure renegotiation.
    PROTOCOL = "protocol"
    #: The connection was dropped (reset or closed, no alert) on a current hello; a TLS 1.0
    #: hello was answered: a version-intolerant stack, or a middlebox in front of the server.
    VERSION_INTOLERANT = "version-intolerant"
    #: The chain verifies only below today's security level (OpenSSL verify codes 66, 67, 68).
    WEAK_KEY = "weak-key"
    WEAK_CA_KEY = "weak-ca-key"
    WEAK_SIGNATURE = "weak-signature"
    #: Only suites no TLS library here has (RC4, 3DES): certificate read from the server's
    #: answer to portcall's own hello, the handshake never finished.
    OLD_CIPHERS = "old-ciphers"


@dataclass(frozen=True)
class CertificateFacts:
    """Read once per certificate and shared by every result that met it: never changed."""

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

    def to_dict(self, now: datetime) -> dict[str, object]:
        """The fields, the dates as text, then the days left at `now`. The text of the
        fields is made once per certificate (which every probe meeting it shares) and
        copied for each result, lists included."""
        text: dict[str, object] | None = self.__dict__.get("_text")
        if text is None:
            text = {item.name: getattr(self, item.name) for item in fields(self)}
            text["not_before"] = self.not_before.isoformat()
            text["not_after"] = self.not_after.isoformat()
            object.__setattr__(self, "_text", text)  # not a field: no part of its value
        data = dict(text)
        data["dns_names"] = list(self.dns_names)
        data["ip_addresses"] = list(self.ip_addresses)
        data["days_left"] = self.days_left(now)
        return data


@dataclass
class TlsFacts:
    version: str
    cipher: str
    #: True when only the legacy context (TLS 1.0/1.1, old ciphers) could connect.
    legacy: bool = False
    #: Why the probe stepped down, in the order it did; empty when it did not.
    legacy_causes: list[LegacyCause] = field(default_factory=list)
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
        """The fields as a dict, lists copied and the certificate's facts as its `to_dict`:
        what `dataclasses.asdict` gives, but for the dates, without deep-copying every string
        (a tenth of a millisecond per result). An instance's `__dict__` holds its fields, in
        their order."""
        data: dict[str, object] = dict(vars(self))
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = list(value)
        if self.certificate is not None:
            data["certificate"] = self.certificate.to_dict(now or datetime.now(UTC))
        return data
