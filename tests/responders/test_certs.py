"""The lab PKI: made once, reused while it fits, renewed when it does not, trusted by clients."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from portcall.responders.certs import (
    LabCertificates,
    LabError,
    default_lab_dir,
    ensure_lab,
    server_context,
)

HOST = "exchange01.corp.example"
DAY = timedelta(days=1)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def san_values(cert: x509.Certificate) -> list[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in names]


def test_lab_holds_a_ca_a_host_certificate_and_an_expired_sibling(tmp_path: Path) -> None:
    lab = ensure_lab(tmp_path / "lab", HOST)
    ca, host, expired = load(lab.ca_cert), load(lab.host_cert), load(lab.expired_cert)
    now = datetime.now(UTC)

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    for leaf in (host, expired):
        leaf.verify_directly_issued_by(ca)
        assert san_values(leaf) == [HOST, "localhost", "127.0.0.1", "::1"]
    assert host.not_valid_before_utc < now < host.not_valid_after_utc - 60 * DAY
    assert expired.not_valid_after_utc < now - 7 * DAY
    for key in (lab.ca_key, lab.host_key, lab.expired_key):
        assert key.stat().st_mode & 0o077 == 0, f"{key.name} is readable by others"


def test_lab_is_reused_while_it_fits(tmp_path: Path) -> None:
    first = ensure_lab(tmp_path, HOST)
    before = {p: p.read_bytes() for p in (first.ca_cert, first.host_cert, first.expired_cert)}
    ensure_lab(tmp_path, HOST)
    assert {p: p.read_bytes() for p in before} == before


def test_another_host_name_gets_new_certificates_from_the_same_ca(tmp_path: Path) -> None:
    first = ensure_lab(tmp_path, HOST)
    ca_before, host_before = first.ca_cert.read_bytes(), first.host_cert.read_bytes()
    second = ensure_lab(tmp_path, "mail.other.example")
    assert second.ca_cert.read_bytes() == ca_before
    assert second.host_cert.read_bytes() != host_before
    assert san_values(load(second.host_cert))[0] == "mail.other.example"
    assert san_values(load(second.expired_cert))[0] == "mail.other.example"


def test_a_host_certificate_near_its_end_is_renewed(tmp_path: Path) -> None:
    first = ensure_lab(tmp_path, HOST)
    old = load(first.host_cert)
    later = old.not_valid_after_utc - 30 * DAY
    ensure_lab(tmp_path, HOST, now=later)
    renewed = load(first.host_cert)
    assert renewed.serial_number != old.serial_number
    assert renewed.not_valid_after_utc > later + 300 * DAY


def test_a_damaged_ca_is_replaced_and_everything_reissued(tmp_path: Path) -> None:
    lab = ensure_lab(tmp_path, HOST)
    lab.ca_key.write_text("not a key")
    ensure_lab(tmp_path, HOST)
    ca = load(lab.ca_cert)
    load(lab.host_cert).verify_directly_issued_by(ca)
    load(lab.expired_cert).verify_directly_issued_by(ca)


def test_an_ip_address_as_host_name_becomes_an_ip_san(tmp_path: Path) -> None:
    lab = ensure_lab(tmp_path, "192.0.2.25")
    names = load(lab.host_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ipaddress.ip_address("192.0.2.25") in names.value.get_values_for_type(x509.IPAddress)


async def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> str:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=name
        )
        version = str(writer.get_extra_info("ssl_object").version())
        writer.close()
        return version
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.mark.parametrize("name", [HOST, "localhost", "127.0.0.1", "::1"])
def test_a_verifying_client_accepts_the_host_certificate_by_every_name(
    tmp_path: Path, name: str
) -> None:
    lab = ensure_lab(tmp_path, HOST)
    client = ssl.create_default_context(cafile=str(lab.ca_cert))
    server = server_context(lab.host_cert, lab.host_key)
    assert asyncio.run(_handshake(server, client, name)).startswith("TLSv1.")


def test_a_verifying_client_refuses_the_expired_sibling(tmp_path: Path) -> None:
    lab = ensure_lab(tmp_path, HOST)
    client = ssl.create_default_context(cafile=str(lab.ca_cert))
    server = server_context(lab.expired_cert, lab.expired_key)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        asyncio.run(_handshake(server, client, HOST))


def test_unusable_user_files_give_a_clear_error(lab: LabCertificates, tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"cannot read .*missing\.crt: no such file"):
        server_context(tmp_path / "missing.crt", tmp_path / "missing.key")
    with pytest.raises(LabError, match="matching the certificate"):
        server_context(lab.host_cert, lab.expired_key)


def test_an_unwritable_lab_directory_is_a_lab_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LabError, match="cannot use the lab directory"):
        ensure_lab(blocker / "lab", HOST)


def test_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_lab_dir() == tmp_path / "portcall" / "lab"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_lab_dir() == tmp_path / "home" / ".local" / "share" / "portcall" / "lab"


def test_responders_started_together_share_one_lab_without_mismatched_pairs(
    tmp_path: Path,
) -> None:
    # Several `portcall listen` processes (one per host of a test lab) start at once on one
    # --cert-dir: each must end with a key that matches its certificate.
    lab = tmp_path / "lab"
    code = (
        "import sys; from pathlib import Path;"
        "from portcall.responders.certs import ensure_lab, server_context;"
        "l = ensure_lab(Path(sys.argv[1]), 'mail.example.test');"
        "server_context(l.host_cert, l.host_key); server_context(l.expired_cert, l.expired_key)"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(lab)], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    errors = [(run.wait(timeout=60), run.stderr.read() if run.stderr else b"") for run in runs]
    assert errors == [(0, b"")] * 6
