"""The responders as a domain controller: the windows-dc catalog over UDP and TCP, the RPC port
the endpoint mapper names, the DC roles built from the responder's options alone, and the UDP
path under abuse (garbage, oversized and empty datagrams, floods, reflection) as well as a TCP
client that never reads.

Clients here are portcall's own client roles, dnspython and raw sockets; the standard tools
(dig, kinit, ldapsearch, smbclient, Samba's bindings) are in tests/interop/test_listen_dc_clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any, Final

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcall.catalog import PortEntry, TlsMode, load_catalog
from portcall.cli import EXIT_USAGE, main
from portcall.protocols import client_for, server_for
from portcall.protocols.base import (
    NEED_DATA,
    Done,
    ProbeOptions,
    Send,
    ServerHandshake,
    ServerOptions,
    ServiceInfo,
)
from portcall.protocols.cldap import CldapServer
from portcall.protocols.cldap.messages import ping_request
from portcall.protocols.dcerpc import (
    ACCESS_DENIED,
    BIND_ACK,
    DEFAULT_RPC_PORT,
    DRSUAPI,
    EPM,
    FAULT,
    NDR,
    DirectoryRpcServer,
    EpmServer,
    request,
)
from portcall.protocols.dcerpc.messages import bind, fault_status, parse_bind_ack
from portcall.protocols.dns import MAX_QUERIES, DnsServer
from portcall.protocols.kerberos import KerberosServer
from portcall.protocols.smb import SmbServer
from portcall.responders.binding import BindError
from portcall.responders.datagrams import (
    AMPLIFICATION,
    MAX_EVENTS,
    SMALL_REPLY,
    DatagramBudget,
    exchange,
    reply_verdict,
    unanswerable_source,
)
from portcall.responders.listen import listening_lines, servable
from portcall.responders.log import ConnectionRecord, format_record
from portcall.responders.server import RPC_KEY, Responder, ResponderConfig
from tests.responders.running import OnItsOwnLoop

DOMAIN: Final = "portcall.test"
HOST: Final = "dc1.portcall.test"
CATALOG: Final = load_catalog("windows-dc")
ENTRIES, MISSING = servable(list(CATALOG.entries))
UDP_KEYS: Final = [entry.key for entry in ENTRIES if entry.transport == "udp"]
#: The rows that need no certificate: most tests serve these.
PLAIN: Final = [entry for entry in ENTRIES if entry.tls is not TlsMode.IMPLICIT]
#: Seconds a blocking client waits for a reply.
WAIT: Final = 3.0
#: Seconds after which no reply to a datagram counts as none (loopback answers in far less).
SILENCE: Final = 0.3


class Running(OnItsOwnLoop):
    """`entries` served on ephemeral loopback ports by a loop of its own."""

    def __init__(
        self,
        entries: list[PortEntry] | None = None,
        tls: dict[str, ssl.SSLContext] | None = None,
        **config: Any,
    ) -> None:
        settings_ = {"ephemeral": True, "hostname": HOST, "domain": DOMAIN, **config}
        self.records: list[ConnectionRecord] = []
        self.options: list[ServerOptions] = []
        super().__init__(
            Responder(
                PLAIN if entries is None else entries,
                ResponderConfig(**settings_),
                tls=tls,
                on_connection=self.records.append,
                handshake_factory=self._factory,
            )
        )

    def _factory(self, protocol: str, options: ServerOptions) -> ServerHandshake:
        self.options.append(options)
        return server_for(protocol, options)

    def logged(self, key: str, count: int = 1) -> list[ConnectionRecord]:
        """The first `count` records of row `key`, once they are there."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = [record for record in list(self.records) if record.key == key]
            if len(found) >= count:
                return found
            time.sleep(0.01)
        lines = "\n".join(format_record(record) for record in self.records)
        raise AssertionError(f"fewer than {count} records of {key}; the log:\n{lines}")


def ask(protocol: str, port: int, transport: str) -> ServiceInfo:
    """What portcall's client role for `protocol` learns from 127.0.0.1:`port`."""
    options = ProbeOptions(host=HOST, transport=transport, domain=DOMAIN, port=port)
    handshake = client_for(protocol, options)
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", port))
        while True:
            event = handshake.next_event()
            if isinstance(event, Send):
                sock.send(event.data)
            elif event is NEED_DATA:
                handshake.receive_data(sock.recv(65535))
            else:
                assert isinstance(event, Done), event
                return event.info


def datagram(port: int, data: bytes, source: str = "127.0.0.1") -> bytes | None:
    """Send one datagram; the reply, or None when none comes within `SILENCE` seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(SILENCE)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def soa_query() -> dns.message.Message:
    return dns.message.make_query(DOMAIN, dns.rdatatype.SOA)


# -- every row ---------------------------------------------------------------------------------


def test_every_row_of_the_catalog_is_served_and_the_rpc_port_beside_it(
    contexts: dict[str, ssl.SSLContext],
) -> None:
    # kpasswd and ntp are served as soon as their roles exist; nothing else may be missing.
    assert {entry.protocol for entry in MISSING} <= {"kpasswd", "ntp"}
    with Running(ENTRIES, tls=contexts) as running:
        ports = running.responder.ports
        assert set(ports) == {entry.key for entry in ENTRIES} | {RPC_KEY}
        for entry in ENTRIES:
            kind = socket.SOCK_DGRAM if entry.transport == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as sock, pytest.raises(OSError) as taken:
                # The responder holds each port on the row's own transport.
                sock.bind(("127.0.0.1", ports[entry.key]))
            assert taken.value.errno == errno.EADDRINUSE, entry.key
        lines = "\n".join(listening_lines(running.responder.entries, ports))
    assert f"53/udp  {ports['dns']:>5}/udp  dns " in lines.replace("   ", "  ")
    assert f"{ports['dns-tcp']:>9}  dns-tcp" in lines
    assert "as the endpoint mapper names it" in lines


@pytest.mark.parametrize("key", UDP_KEYS)
def test_each_udp_row_answers_portcalls_client_and_logs_one_line(key: str) -> None:
    entry = CATALOG.by_key(key)
    assert entry is not None
    with Running() as running:
        info = ask(entry.protocol, running.port(key), "udp")
        # One record per datagram: the DNS client asks twice (the SOA, then the locator SRV).
        asked = 2 if entry.protocol == "dns" else 1
        records = running.logged(key, asked)
    assert info.details["transport"] == "udp"
    assert len(records) == asked
    record = records[0]
    assert all(r.transport == "udp" and r.ended.startswith("answered (") for r in records)
    line = format_record(record)
    assert f" -> {key} {entry.port}/udp (on {running.port(key)}): {entry.protocol};" in line
    assert record.to_dict()["transport"] == "udp"


def test_dns_over_udp_and_tcp_answers_for_the_domain_with_the_address_reached() -> None:
    with Running() as running:
        udp = dns.query.udp(soa_query(), "127.0.0.1", port=running.port("dns"), timeout=WAIT)
        locator = dns.message.make_query(f"_ldap._tcp.dc._msdcs.{DOMAIN}", dns.rdatatype.SRV)
        tcp = dns.query.tcp(locator, "127.0.0.1", port=running.port("dns-tcp"), timeout=WAIT)
        (udp_record,) = running.logged("dns")
        (tcp_record,) = running.logged("dns-tcp")
    assert udp.rcode() == dns.rcode.NOERROR
    assert udp.answer[0][0].mname.to_text() == f"{HOST}."
    assert [rr.target.to_text() for rr in tcp.answer[0]] == [f"{HOST}."]
    # The A record gives the address the client reached, not a made-up one.
    assert [rr.address for rrset in tcp.additional for rr in rrset] == ["127.0.0.1"]
    assert udp_record.heard == [f"QUERY {DOMAIN} SOA"]
    assert tcp_record.transport == "tcp" and tcp_record.heard[0].endswith(" SRV")


def test_kerberos_over_both_transports_says_the_client_is_unknown() -> None:
    with Running() as running:
        for key, transport in (("kerberos", "udp"), ("kerberos-tcp", "tcp")):
            info = ask("kerberos", running.port(key), transport)
            assert info.details["error_name"] == "KDC_ERR_C_PRINCIPAL_UNKNOWN", info.details
            assert info.details["realm"] == DOMAIN.upper()


def test_cldap_ping_names_the_responders_dc() -> None:
    with Running() as running:
        info = ask("cldap", running.port("cldap"), "udp")
    netlogon = info.details["netlogon"]
    assert (netlogon["domain"], netlogon["dc_name"], netlogon["netbios_name"]) == (
        DOMAIN,
        HOST,
        "DC1",
    )


def test_handshakes_get_the_rows_transport_the_domain_and_the_rpc_port() -> None:
    with Running() as running:
        ask("dns", running.port("dns"), "udp")
        ask("dcerpc", running.port("epm"), "tcp")
        rpc = running.port(RPC_KEY)
        running.logged("epm")
    udp, tcp = running.options[0], running.options[-1]
    assert (udp.transport, udp.domain, udp.dc_address, udp.rpc_port) == (
        "udp",
        DOMAIN,
        "127.0.0.1",
        rpc,
    )
    assert (tcp.transport, tcp.rpc_port, tcp.dc_address) == ("tcp", rpc, "127.0.0.1")


# -- the RPC port ------------------------------------------------------------------------------


def test_the_endpoint_mapper_names_the_rpc_port_that_answers_as_rpc() -> None:
    with Running() as running:
        info = ask("dcerpc", running.port("epm"), "tcp")
        rpc = running.port(RPC_KEY)
        with socket.create_connection(("127.0.0.1", rpc), timeout=WAIT) as sock:
            sock.sendall(bind(1, DRSUAPI))
            ack = sock.recv(4096)
            sock.sendall(request(2, 0, b"\x00" * 16))
            refused = sock.recv(4096)
        (record,) = running.logged(RPC_KEY)
    assert {name: i["port"] for name, i in info.details["interfaces"].items()} == {
        "drsuapi": rpc,
        "netlogon": rpc,
    }
    assert ack[2] == BIND_ACK
    address, results = parse_bind_ack(ack[16:])
    assert (address, results) == (str(rpc), [(0, 0)])
    assert refused[2] == FAULT and fault_status(refused[16:]) == ACCESS_DENIED
    assert record.heard == ["BIND drsuapi", "opnum 0 (access denied)"]


def test_no_rpc_port_without_an_endpoint_mapper_row_or_when_turned_off() -> None:
    dns_only = [entry for entry in ENTRIES if entry.protocol == "dns"]
    with Running(dns_only) as running:
        assert RPC_KEY not in running.responder.ports
    with Running(rpc_port=None) as running:
        assert RPC_KEY not in running.responder.ports


def test_the_rpc_port_moves_with_the_offset() -> None:
    config = ResponderConfig(port_offset=1000, domain=DOMAIN, rpc_port=5000)
    epm = [entry for entry in PLAIN if entry.protocol == "dcerpc"]
    responder = Responder(epm, config)
    assert [entry.port for entry in responder.entries] == [135, 5000]
    assert responder._wanted_port(responder.entries[1]) == 6000


# -- the DC roles from options alone -------------------------------------------------------------


OPTIONS: Final = ServerOptions(
    hostname="dc1", domain=DOMAIN, transport="udp", rpc_port=50123, dc_address="192.0.2.7"
)


def test_the_dc_roles_take_what_they_need_from_the_options() -> None:
    dns_role = server_for("dns", OPTIONS)
    assert isinstance(dns_role, DnsServer)
    assert (dns_role.domain.to_text(), dns_role.dc_name.to_text()) == (f"{DOMAIN}.", f"{HOST}.")
    assert (dns_role.dc_address, dns_role.transport) == ("192.0.2.7", "udp")
    kdc = server_for("kerberos", OPTIONS)
    assert isinstance(kdc, KerberosServer) and (kdc.realm, kdc.transport) == (
        "PORTCALL.TEST",
        "udp",
    )
    ping = server_for("cldap", OPTIONS)
    assert isinstance(ping, CldapServer) and (ping.domain, ping.dc_name) == (DOMAIN, HOST)
    epm = server_for("dcerpc", OPTIONS)
    assert isinstance(epm, EpmServer) and (epm.rpc_port, epm.address) == (50123, "192.0.2.7")
    smb = server_for("smb", OPTIONS)
    assert isinstance(smb, SmbServer)
    identity = smb.identity
    assert (identity.netbios_computer, identity.netbios_domain) == ("DC1", "PORTCALL")
    assert (identity.dns_computer, identity.dns_domain, identity.dns_forest) == (
        HOST,
        DOMAIN,
        DOMAIN,
    )


def test_the_domain_defaults_to_the_hostnames_and_keywords_still_win() -> None:
    options = ServerOptions(hostname="dc7.branch.example.test", transport="tcp")
    kdc = server_for("kerberos", options)
    assert isinstance(kdc, KerberosServer) and kdc.realm == "BRANCH.EXAMPLE.TEST"
    assert KerberosServer(options, realm="OTHER.TEST", transport="udp").realm == "OTHER.TEST"
    assert DnsServer(domain=DOMAIN).transport == "udp"  # no options: DNS's usual transport
    assert EpmServer().rpc_port == DEFAULT_RPC_PORT
    assert EpmServer(options, rpc_port=6004, address="192.0.2.9").address == "192.0.2.9"
    assert CldapServer(options, domain="other.test").dc_name == "dc7.branch.example.test"


def test_the_rpc_port_role_accepts_only_the_directory_interfaces() -> None:
    role = DirectoryRpcServer(OPTIONS)
    assert role.next_event() is NEED_DATA
    role.receive_data(bind(1, EPM))
    event = role.next_event()
    assert isinstance(event, Send)
    assert parse_bind_ack(event.data[16:]) == ("50123", [(2, 1)])
    assert NDR.name == "ndr"


# -- the UDP path under abuse --------------------------------------------------------------------


def test_garbage_empty_and_oversized_datagrams_leave_every_udp_row_answering() -> None:
    oddities = [b"", b"\x00", b"\xff" * 3, b"GET / HTTP/1.0\r\n\r\n", bytes(range(256)) * 4]
    oddities.append(b"\x30\x84\xff\xff\xff\xff" + b"A" * 60000)  # a BER length far past the end
    with Running() as running:
        for key in UDP_KEYS:
            for data in oddities:
                reply = datagram(running.port(key), data)
                limit = max(SMALL_REPLY, AMPLIFICATION * len(data))
                assert reply is None or len(reply) <= limit, (key, data[:20], len(reply))
            entry = CATALOG.by_key(key)
            assert entry is not None
            # Still answering the real thing afterwards.
            assert ask(entry.protocol, running.port(key), "udp").details["transport"] == "udp"
        records = list(running.records)
    assert len(records) >= len(UDP_KEYS) * (len(oddities) + 1)
    assert not [format_record(r) for r in records if r.ended.startswith("internal error")]


def test_a_flood_of_datagrams_is_cut_to_the_rate_with_one_line_per_second() -> None:
    limit = 20
    with Running(max_connections=limit) as running:
        port = running.port("dns")
        query = soa_query().to_wire()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            began = time.monotonic()
            for _ in range(400):
                sock.sendto(query, ("127.0.0.1", port))
            replies = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    sock.recv(65535)
                    replies += 1
            seconds = int(time.monotonic() - began) + 2
        dropped, served = running.responder.turned_away, running.responder.served
        lines = [r for r in running.records if r.ended.startswith("dropped: over")]
        time.sleep(1.05)  # a new second: the responder answers again
        assert datagram(port, query) is not None
    assert 0 < replies <= served <= limit * seconds
    # The kernel may drop some of the flood before the responder sees it; the rest is counted.
    assert dropped > 0
    assert 1 <= len(lines) <= seconds
    assert "more are dropped without a line" in lines[0].ended


def test_one_flooding_address_does_not_silence_the_others() -> None:
    with Running(max_connections=1000, max_per_client=5) as running:
        port = running.port("kerberos")
        junk = b"\x6a\x03\x02\x01\x05"
        answered = [datagram(port, junk) for _ in range(12)]
        # 127.0.0.2 is another loopback address: another client, with a quota of its own.
        other = datagram(port, junk, source="127.0.0.2")
    assert 1 <= sum(reply is not None for reply in answered) <= 10
    assert other is not None


def test_reflection_rules() -> None:
    assert unanswerable_source("dns", 0) is not None
    assert "loop" in (unanswerable_source("kerberos", 88) or "")
    assert unanswerable_source("cldap", 389) is not None
    assert unanswerable_source("ntp", 123) is None  # NTP servers poll each other from 123
    assert unanswerable_source("dns", 40000) is None


def test_a_reply_much_larger_than_its_request_is_withheld() -> None:
    assert reply_verdict([], b"x") == (None, "no reply (the request deserves none)")
    assert reply_verdict([b"r" * SMALL_REPLY], b"x")[0] is not None
    reply, ended = reply_verdict([b"r" * (SMALL_REPLY + 1)], b"x" * 10)
    assert reply is None and ended.startswith("reply withheld: 513 bytes for a 10-byte")
    assert reply_verdict([b"r" * 800], b"x" * 200)[0] is not None
    reply, ended = reply_verdict([b"one", b"two"], b"x")
    assert reply == b"one" and "1 further replies withheld" in ended


def test_the_rate_gate_counts_per_second_in_all_and_per_address() -> None:
    gate = DatagramBudget(per_second=3, per_client=2)
    assert [gate.refusal("a", 10.0), gate.refusal("a", 10.1)] == [None, None]
    assert gate.refusal("a", 10.2) == "over 2 datagrams a second from a"
    assert gate.refusal("b", 10.3) is None
    assert gate.refusal("c", 10.4) == "over 3 datagrams a second"
    assert gate.log_refusal() and not gate.log_refusal()
    assert gate.refusal("a", 11.0) is None and gate.log_refusal()


def test_a_udp_port_taken_is_named_with_its_transport() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        pair = [entry for entry in ENTRIES if entry.port == 53]
        config = ResponderConfig(port_offset=port - 53, domain=DOMAIN)

        async def scenario() -> None:
            await Responder(pair, config).start()

        with pytest.raises(BindError) as failed:
            asyncio.run(scenario())
    assert str(failed.value) == (f"port {port}/udp (DNS (53/udp)) is already taken on 127.0.0.1")
    assert f"ss -lunp 'sport = :{port}'" in failed.value.hint


def test_tcp_and_udp_rows_on_one_port_number_are_two_sockets() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pair = [entry for entry in ENTRIES if entry.port == 53]
    with Running(pair, ephemeral=False, port_offset=port - 53) as running:
        assert running.port("dns") == running.port("dns-tcp") == port
        assert ask("dns", port, "udp").details["transport"] == "udp"
        assert ask("dns", port, "tcp").details["transport"] == "tcp"


def test_udp_rows_listen_on_every_bind_address_and_name_the_one_reached() -> None:
    port = _free_on_both_families()
    pair = [entry for entry in ENTRIES if entry.port == 53]
    binds = ("127.0.0.1", "::1")
    with Running(pair, ephemeral=False, port_offset=port - 53, binds=binds) as running:
        locator = dns.message.make_query(f"_ldap._tcp.dc._msdcs.{DOMAIN}", dns.rdatatype.SRV)
        over_v4 = dns.query.udp(locator, "127.0.0.1", port=port, timeout=WAIT)
        over_v6 = dns.query.udp(locator, "::1", port=port, timeout=WAIT)
        records = running.logged("dns", 2)
    assert [rr.to_text() for rrset in over_v4.additional for rr in rrset] == ["127.0.0.1"]
    assert [rr.to_text() for rrset in over_v6.additional for rr in rrset] == ["::1"]
    assert sorted(record.peer.rsplit(":", 1)[0] for record in records) == ["127.0.0.1", "[::1]"]


def _free_on_both_families() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4:
            v4.bind(("127.0.0.1", 0))
            port = int(v4.getsockname()[1])
            with contextlib.ExitStack() as held:
                try:
                    for family, kind, host in (
                        (socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
                        (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
                        (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
                    ):
                        sock = held.enter_context(socket.socket(family, kind))
                        sock.bind((host, port))
                except OSError:
                    continue
        return port
    raise AssertionError("no port free on both families")


def test_a_tcp_client_that_never_reads_is_let_go() -> None:
    with Running(idle_timeout=1.0) as running:
        query = soa_query().to_wire()
        framed = struct.pack("!H", len(query)) + query
        with socket.create_connection(("127.0.0.1", running.port("dns-tcp"))) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with contextlib.suppress(OSError):
                for _ in range(5000):
                    sock.sendall(framed)
            (record,) = running.logged("dns-tcp")
    # DNS over TCP answers at most MAX_QUERIES on one connection, so a client that pipelines
    # without reading gets the connection closed rather than a growing queue of replies.
    assert record.ended in ("the responder closed", "our reply unread for 1s"), record.ended
    assert len(record.heard) + record.heard_more <= MAX_QUERIES
    assert record.duration < 10


def test_udp_rows_cannot_be_held_closed() -> None:
    from portcall.responders.server import Fault

    with pytest.raises(ValueError, match="UDP row"):
        Responder(PLAIN, ResponderConfig(domain=DOMAIN), faults={"dns": Fault(closed=True)})


# -- one datagram through each role: transcripts and fuzzing -----------------------------------


UDP_PROTOCOLS: Final = sorted({CATALOG.by_key(key).protocol for key in UDP_KEYS})  # type: ignore[union-attr]
UDP_OPTIONS: Final = ServerOptions(hostname=HOST, domain=DOMAIN, transport="udp")


def test_one_datagram_one_reply_for_each_udp_role() -> None:
    ping = ping_request(7, DOMAIN)
    (reply,) = exchange(server_for("cldap", UDP_OPTIONS), ping)
    assert reply[:1] == b"\x30"
    (answer,) = exchange(server_for("dns", UDP_OPTIONS), soa_query().to_wire())
    assert dns.message.from_wire(answer).rcode() == dns.rcode.NOERROR
    # A DNS response is not answered: two servers could otherwise bounce it for ever.
    assert exchange(server_for("dns", UDP_OPTIONS), answer) == []
    assert exchange(server_for("dns", UDP_OPTIONS), b"") == []


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.sampled_from(UDP_PROTOCOLS), st.binary(max_size=2048))
def test_fuzz_any_datagram_gives_a_bounded_answer(protocol: str, data: bytes) -> None:
    role = server_for(protocol, UDP_OPTIONS)
    replies = exchange(role, data)
    assert len(replies) <= MAX_EVENTS
    assert all(isinstance(reply, bytes) for reply in replies)
    reply, ended = reply_verdict(replies, data)
    assert reply is None or len(reply) <= max(SMALL_REPLY, AMPLIFICATION * len(data))
    assert ended


# -- the command line ----------------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    code = stopped.value.code
    return int(code) if isinstance(code, int) else 1, capsys.readouterr().err


def test_listen_needs_a_domain_for_the_dc_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["listen", "--catalog", "windows-dc", "--hostname", "dc1", "--cert-dir", str(tmp_path)]
    code, err = run_cli(args, capsys)
    assert code == EXIT_USAGE, err
    assert "need an Active Directory domain" in err
    assert "Hint: give --domain" in err


@pytest.mark.parametrize("bad", ["EXAMPLE", "exa mple.test", "-x.test", "a..b"])
def test_listen_refuses_a_domain_that_is_not_a_dns_name(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["listen", "--catalog", "windows-dc", "--domain", bad, "--cert-dir", str(tmp_path)]
    code, err = run_cli(args, capsys)
    assert code == EXIT_USAGE, err
    assert "is not an Active Directory domain name" in err
