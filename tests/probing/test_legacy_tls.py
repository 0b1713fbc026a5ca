"""Old TLS stacks on loopback: version-intolerant servers get the TLS 1.0 fallback, servers
with only RC4/3DES get their certificate read from portcall's own hello, and a weak key or
signature is named as the cause of the step down. Every server here is made by the test."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from portcall.catalog import PortEntry, load_catalog
from portcall.probing.errors import Phase, ProbeFailure, Sighting, classify, sighted
from portcall.probing.loop import run as on_loop
from portcall.probing.probe import PROBE_BUDGET, UNVERIFIED_CHAIN, Endpoint, Settings, probe
from portcall.report.json_report import result_to_dict
from portcall.tls.facts import LegacyCause
from portcall.tls.rawhello import AlertReceived, NotTls
from portcall.verdicts import FindingCode, Result, Verdict
from tests.probing.servers import pop3, serve
from tests.tls.conftest import Issued, issue, make_ca
from tests.tls.fakes import (
    DES3_SHA,
    TLS10,
    IntolerantFront,
    Rc4OnlyServer,
    blocking_pop3s,
    listening,
    parse_client_hello,
    read_record,
    tls10_server_context,
)

#: Every test here runs on asyncio's event loop and on uvloop's.
pytestmark = pytest.mark.usefixtures("each_loop")

CATALOG = load_catalog()
LOCAL = Endpoint("127.0.0.1", "127.0.0.1", is_address=True)
HOST = "mail.example.com"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def row(name: str, port: int) -> PortEntry:
    entry = CATALOG.by_key(name)
    assert entry is not None, name
    return dataclasses.replace(entry, port=port)


@dataclasses.dataclass
class Lab:
    ca: Issued
    ca_file: Path
    directory: Path

    def files(self, leaf: Issued, stem: str) -> tuple[str, str]:
        cert, key = leaf.write(self.directory, stem)
        return str(cert), str(key)

    def settings(self, **changes: Any) -> Settings:
        return Settings(
            **{"timeout": 2.0, "cafile": str(self.ca_file), "servername": HOST, **changes}
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    directory = tmp_path_factory.mktemp("legacy-pki")
    ca = make_ca(kind="rsa2048")
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.pem)
    return Lab(ca, ca_file, directory)


@pytest.fixture(scope="module")
def leaf(lab: Lab) -> Issued:
    return issue(lab.ca, cn=HOST, dns=(HOST, "owa.example.com"), kind="rsa2048")


def smtp(tls_part: Handler) -> Handler:
    """An ESMTP server (RFC 5321) offering STARTTLS (RFC 3207); after `220 Ready` the
    connection belongs to `tls_part`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.example.com ESMTP Test ready\r\n")
        while line := await reader.readline():
            verb = line.strip().upper()
            if verb.startswith(b"EHLO"):
                writer.write(b"250-mail.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            elif verb == b"STARTTLS":
                writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                await writer.drain()
                await tls_part(reader, writer)
                return
            else:
                writer.write(b"221 bye\r\n")
            await writer.drain()

    return handler


def tls_then_smtp(context: ssl.SSLContext) -> Handler:
    """Upgrade with `context`, then answer EHLO and QUIT as any SMTP server does."""

    async def after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(context)
        while line := await reader.readline():
            if line.upper().startswith(b"EHLO"):
                writer.write(b"250-mail.example.com\r\n250 PIPELINING\r\n")
            else:
                writer.write(b"221 bye\r\n")
            await writer.drain()

    return after


def run(coroutine: Awaitable[Result]) -> Result:
    async def go() -> Result:
        return await coroutine

    return on_loop(go())


def legacy_message(result: Result) -> str:
    found = [f.message for f in result.findings if f.code is FindingCode.TLS_LEGACY]
    assert len(found) == 1, result.findings
    return found[0]


# -- version-intolerant servers: the TLS 1.0 fallback ----------------------------------------


@pytest.mark.parametrize("close", [False, True], ids=["reset", "close"])
def test_version_intolerant_implicit_tls_gets_the_tls1_fallback(
    lab: Lab, leaf: Issued, close: bool
) -> None:
    backend = tls10_server_context(*lab.files(leaf, "tls10"))
    front: IntolerantFront | None = None

    async def go() -> Result:
        nonlocal front
        async with serve(pop3(), backend) as backend_port:
            front = IntolerantFront(backend_port, close=close)
            async with listening(front) as port:
                return await probe(LOCAL, row("pop3s", port), lab.settings())

    result = on_loop(go())
    assert front is not None and front.dropped == 1 and front.passed == 1
    assert result.verdict is Verdict.OK, result.reason
    assert result.tls is not None and result.tls.version == "TLSv1"
    assert result.tls.legacy_causes == [LegacyCause.VERSION_INTOLERANT]
    assert result.tls.trusted is True
    assert result.tls.certificate is not None and result.tls.certificate.dns_names[0] == HOST
    assert [f.code for f in result.findings] == [FindingCode.TLS_LEGACY]
    message = legacy_message(result)
    assert "drops the connection on a current TLS hello" in message and "TLSv1" in message


def test_a_drop_the_fallback_disproves_is_reported_as_the_drop(lab: Lab, leaf: Issued) -> None:
    """A server that resets a modern hello (overloaded, restarting, or a middlebox) and then
    refuses the TLS 1.0 fallback with a protocol_version alert is no version-intolerant stack:
    the verdict names the reset, not the alert to a hello portcall sent only to find out."""
    modern = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    modern.minimum_version = ssl.TLSVersion.TLSv1_2
    modern.load_cert_chain(*lab.files(leaf, "modern"))
    hellos: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await read_record(reader)
        hellos.append(parse_client_hello(hello).highest)
        if len(hellos) == 1:
            IntolerantFront(0)._drop(writer)  # the reset, without an alert
            return
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        session = modern.wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(hello)
        with pytest.raises(ssl.SSLError, match="UNSUPPORTED_PROTOCOL"):
            session.do_handshake()
        writer.write(outgoing.read())  # OpenSSL's protocol_version alert
        await writer.drain()
        await reader.read()  # the client closes first: no reset can overtake the alert

    async def go() -> Result:
        async with listening(handler) as port:
            return await probe(LOCAL, row("pop3s", port), lab.settings())

    result = on_loop(go())
    assert hellos[0] > TLS10 and hellos[1:] == [TLS10]
    assert result.verdict is Verdict.TLS_FAILED, result.reason
    assert "reset" in result.reason and "protocol_version" not in result.reason, result.reason


def test_version_intolerant_starttls_gets_the_tls1_fallback(lab: Lab, leaf: Issued) -> None:
    backend = smtp(tls_then_smtp(tls10_server_context(*lab.files(leaf, "tls10s"))))
    front: IntolerantFront | None = None

    async def go() -> Result:
        nonlocal front
        async with listening(backend) as backend_port:
            front = IntolerantFront(backend_port)
            async with listening(front) as port:
                return await probe(LOCAL, row("smtp", port), lab.settings())

    result = on_loop(go())
    assert front is not None and (front.dropped, front.passed) == (1, 1)
    assert result.verdict is Verdict.OK, result.reason
    assert result.protocol == "smtp" and result.details.get("starttls_offered") is True
    assert result.tls is not None and result.tls.version == "TLSv1"
    assert result.tls.legacy_causes == [LegacyCause.VERSION_INTOLERANT]
    assert "STARTTLS works" in result.reason


def test_the_fallback_hello_offers_nothing_newer_than_tls1(lab: Lab, leaf: Issued) -> None:
    # A server that resets every hello: the second one seen is the fallback hello.
    seen: list[bytes] = []

    async def reset_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_record(reader))
        writer.transport.abort()

    async def go() -> Result:
        async with listening(reset_all) as port:
            return await probe(LOCAL, row("pop3s", port), lab.settings(timeout=1.0))

    result = on_loop(go())
    assert result.verdict is Verdict.TLS_FAILED
    assert "reset during the TLS handshake" in result.reason
    from tests.tls.fakes import parse_client_hello

    first, fallback = (parse_client_hello(record) for record in seen)
    assert first.highest > TLS10
    assert fallback.highest == TLS10 and fallback.version == TLS10
    # No session ticket, encrypt-then-MAC or extended master secret (RFC 5077, 7366, 7627).
    assert not {35, 22, 23} & set(fallback.extensions)


# -- RC4/3DES-only servers: the certificate from portcall's own hello ------------------------


def test_rc4_only_implicit_tls_reports_the_certificate_and_tls_failed(
    lab: Lab, leaf: Issued
) -> None:
    fake = Rc4OnlyServer([leaf.der, lab.ca.der])

    async def go() -> Result:
        async with listening(fake) as port:
            return await probe(LOCAL, row("imaps", port), lab.settings())

    result = on_loop(go())
    # OpenSSL's two hellos got the alert; portcall's own got the certificate.
    assert fake.answered == 1 and len(fake.hellos) == 3
    assert result.verdict is Verdict.TLS_FAILED
    assert "no TLS library here can finish a handshake with TLS_RSA_WITH_RC4_128_SHA" in (
        result.reason
    )
    tls = result.tls
    assert tls is not None and tls.version == "TLSv1" and tls.cipher == "TLS_RSA_WITH_RC4_128_SHA"
    assert tls.legacy and tls.legacy_causes[-1] is LegacyCause.OLD_CIPHERS
    assert tls.trusted is None and UNVERIFIED_CHAIN in tls.notes
    assert tls.certificate is not None
    assert tls.certificate.subject == leaf.cert.subject.rfc4514_string()
    assert tls.certificate.dns_names == [HOST, "owa.example.com"]
    assert tls.certificate.not_after == leaf.cert.not_valid_after_utc
    assert tls.name_matches is True
    assert "TLS_RSA_WITH_RC4_128_SHA" in legacy_message(result)
    document = json.loads(json.dumps(result_to_dict(result)))
    assert document["verdict"] == "tls-failed"
    assert document["tls"]["certificate"]["dns_names"] == [HOST, "owa.example.com"]
    assert document["tls"]["certificate"]["not_after"] == leaf.cert.not_valid_after_utc.isoformat()
    assert document["tls"]["cipher"] == "TLS_RSA_WITH_RC4_128_SHA"
    assert "old-ciphers" in document["tls"]["legacy_causes"]
    assert any("TLS_RSA_WITH_RC4_128_SHA" in f["message"] for f in document["findings"])


def test_3des_only_starttls_is_ok_with_the_certificate(lab: Lab, leaf: Issued) -> None:
    fake = Rc4OnlyServer([leaf.der], suites=(DES3_SHA,))

    async def go() -> Result:
        async with listening(smtp(fake)) as port:
            return await probe(LOCAL, row("smtp", port), lab.settings())

    result = on_loop(go())
    assert fake.answered == 1
    assert result.verdict is Verdict.OK, result.reason
    assert result.banner == "220 mail.example.com ESMTP Test ready"
    assert result.tls is not None and result.tls.cipher == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert result.tls.certificate is not None and result.tls.certificate.dns_names[0] == HOST
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in legacy_message(result)
    notes = result.details.get("notes")
    assert isinstance(notes, list) and any("not checked" in note for note in notes)


def test_rc4_only_tls_on_a_plaintext_port_is_named_tls(lab: Lab, leaf: Issued) -> None:
    # SMTP waits for a greeting; the second look's own hello finds TLS where OpenSSL cannot.
    fake = Rc4OnlyServer([leaf.der])

    async def go() -> Result:
        async with listening(fake) as port:
            return await probe(LOCAL, row("smtp", port), lab.settings(timeout=0.5))

    result = on_loop(go())
    assert fake.answered == 1
    assert result.verdict is Verdict.WRONG_PROTOCOL
    assert "TLS (TLSv1) answered from the first byte" in result.reason
    assert result.protocol == "TLS"


def test_a_server_refusing_every_suite_is_tls_failed_with_the_alert(lab: Lab) -> None:
    fake = Rc4OnlyServer([], suites=(0x0099,))

    async def go() -> Result:
        async with listening(fake) as port:
            return await probe(LOCAL, row("pop3s", port), lab.settings(timeout=1.0))

    result = on_loop(go())
    assert len(fake.hellos) == 3 and fake.answered == 0
    assert result.verdict is Verdict.TLS_FAILED
    assert "handshake_failure alert" in result.reason
    assert result.tls is None


def test_the_raw_hello_shares_the_probe_budget(lab: Lab) -> None:
    """Alerts to OpenSSL's hellos, then silence to portcall's own: the whole probe stays
    within PROBE_BUDGET timeouts."""

    async def silent_to_old_suites(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        from tests.tls.fakes import alert, parse_client_hello

        hello = parse_client_hello(await read_record(reader))
        if 0x0005 not in hello.suites:
            writer.write(alert(40))
            await writer.drain()
        await reader.read()  # silence until portcall gives up

    timeout = 0.4

    async def go() -> Result:
        async with listening(silent_to_old_suites) as port:
            return await probe(LOCAL, row("pop3s", port), lab.settings(timeout=timeout))

    started = time.perf_counter()
    result = on_loop(go())
    elapsed = time.perf_counter() - started
    assert result.verdict is Verdict.SILENT
    assert elapsed < timeout * PROBE_BUDGET + 0.5


# -- weak keys and signatures: the real cause ------------------------------------------------


def sha1_leaf(ca: Issued) -> Issued:
    """A leaf signed by `ca` with SHA-1, which cryptography no longer signs: openssl re-signs it."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command is needed to sign with SHA-1"
    template = issue(None, cn=HOST, dns=(HOST,), kind="rsa2048")  # openssl re-signs only these
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        ca_cert, ca_key = ca.write(folder, "ca")
        leaf_cert, _ = template.write(folder, "leaf")
        signed = subprocess.run(
            [
                openssl,
                "x509",
                "-in",
                str(leaf_cert),
                "-CA",
                str(ca_cert),
                "-CAkey",
                str(ca_key),
                "-set_serial",
                "7",
                "-sha1",
                "-outform",
                "DER",
            ],
            capture_output=True,
            check=True,
        ).stdout
    cert = x509.load_der_x509_certificate(signed)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha1"
    return Issued(cert, template.key)


def tls12_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize(
    ("make", "cause", "words"),
    [
        (
            lambda ca: issue(ca, cn=HOST, dns=(HOST,), kind="rsa1024"),
            LegacyCause.WEAK_KEY,
            "the server's key is too weak",
        ),
        (sha1_leaf, LegacyCause.WEAK_SIGNATURE, "signed with MD5 or SHA-1"),
    ],
    ids=["rsa1024", "sha1"],
)
def test_a_weak_chain_on_tls12_names_the_weakness_not_the_protocol(
    lab: Lab, make: Callable[[Issued], Issued], cause: LegacyCause, words: str
) -> None:
    weak = make(lab.ca)
    context = tls12_context(*lab.files(weak, f"weak-{cause}"))

    async def go() -> Result:
        async with serve(pop3(), context) as port:
            return await probe(LOCAL, row("pop3s", port), lab.settings())

    result = on_loop(go())
    assert result.verdict is Verdict.OK, result.reason
    assert result.tls is not None and result.tls.version == "TLSv1.2"
    assert result.tls.legacy_causes == [cause]
    assert result.tls.trusted is True
    message = legacy_message(result)
    assert words in message and "TLSv1.2" in message
    assert "enable TLS 1.2" not in message


def test_a_tls1_only_server_keeps_the_enable_tls12_advice(lab: Lab, leaf: Issued) -> None:
    # A blocking server: it sends its protocol_version alert, as Schannel and OpenSSL do.
    context = tls10_server_context(*lab.files(leaf, "plain10"))
    with blocking_pop3s(context) as port:
        result = on_loop(probe(LOCAL, row("pop3s", port), lab.settings()))
    assert result.verdict is Verdict.OK, result.reason
    assert result.tls is not None and result.tls.legacy_causes == [LegacyCause.PROTOCOL]
    assert legacy_message(result).startswith("only legacy TLS works (TLSv1, ")
    assert "enable TLS 1.2 on the server" in legacy_message(result)


# -- the one table: TLS outcomes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (AlertReceived(2, 40), "fatal handshake_failure alert"),
        (NotTls("the answer is not a TLS record"), "not a TLS record"),
    ],
)
def test_a_failed_raw_hello_is_tls_failed(exc: Exception, words: str) -> None:
    failure = classify(exc, Phase.TLS, b"", 1.0)
    assert failure.verdict is Verdict.TLS_FAILED and words in failure.detail


def test_a_final_verification_error_names_openssls_message() -> None:
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "unable to get local issuer certificate"
    err.verify_code = 20
    failure = classify(err, Phase.TLS, b"", 1.0)
    assert failure.verdict is Verdict.TLS_FAILED
    assert "unable to get local issuer certificate" in failure.detail


@pytest.mark.parametrize(
    ("sighting", "verdict", "detected", "words"),
    [
        (Sighting.PLAINTEXT_FOR_TLS, Verdict.WRONG_PROTOCOL, "SMTP", "plaintext SMTP answered"),
        (Sighting.TLS_FOR_PLAINTEXT, Verdict.WRONG_PROTOCOL, "TLS", "TLS (SMTP) answered"),
        (Sighting.SPEAKS_SECOND, Verdict.WRONG_PROTOCOL, "SMTP", "said nothing first as POP3"),
        (Sighting.TLS_UNFINISHED, Verdict.TLS_FAILED, None, "POP3 service behind TLS"),
    ],
)
def test_sightings_map_to_one_verdict_each(
    sighting: Sighting, verdict: Verdict, detected: str | None, words: str
) -> None:
    failure = sighted(sighting, "SMTP", "POP3")
    assert isinstance(failure, ProbeFailure)
    assert (failure.verdict, failure.detected) == (verdict, detected)
    assert words in failure.detail
