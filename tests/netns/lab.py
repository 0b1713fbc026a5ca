"""A topology made real in network namespaces: one per host, one router per firewall.

Every zone is a bridge inside one switch namespace; each host and each router leg is a veth
from its own namespace into its zone's bridge. Nothing is created outside namespaces whose
names start with the lab's unique prefix, so the lab never touches this machine's own
interfaces, and `close` removes all of it.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from portcall.catalog import load_catalog
from portcall.topology import Plan
from portcall.topology.flows import EndKind
from portcall.topology.zones import firewall_path

Interface = ipaddress.IPv4Interface
LISTENER = Path(__file__).with_name("plain_listener.py")
#: The AD domain the lab's domain controllers answer for.
DOMAIN = "portcall.test"
#: What portcall's responders serve on a domain controller: the windows-dc catalog's rows.
DC_ROWS = frozenset((e.port, e.transport) for e in load_catalog("windows-dc").entries)
DC_PORTS = frozenset(port for port, _ in DC_ROWS)


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Node:
    """A namespace with one leg per zone it stands in."""

    namespace: str
    legs: dict[str, Interface] = field(default_factory=dict)


@dataclass
class Lab:
    plan: Plan
    #: Extra hosts of catch-all zones to probe from and to, e.g. {"client1": ("internet",
    #: "198.51.100.10/24")}: the topology names no host there.
    clients: dict[str, tuple[str, str]]
    logs: Path
    prefix: str = field(default_factory=lambda: f"pclab{secrets.token_hex(3)}-")
    hosts: dict[str, Node] = field(default_factory=dict)
    routers: dict[str, Node] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _created: list[str] = field(default_factory=list)
    _bridges: dict[str, str] = field(default_factory=dict)
    _ports: int = 0

    @property
    def switch(self) -> str:
        return self.prefix + "switch"

    def namespaces(self) -> list[str]:
        return list(self._created)

    # -- building ---------------------------------------------------------------------------

    def build(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        self._namespace(self.switch)
        for name, host in self.plan.topology.hosts.items():
            if host.address.version == 4:
                length = self._subnet(host.zone).prefixlen
                self._host(name, host.zone, Interface(f"{host.address}/{length}"))
        for name, (zone, address) in self.clients.items():
            self._host(name, zone, Interface(address))
        for name, firewall in self.plan.topology.firewalls.items():
            self._router(name, firewall.zones)
        for name, node in self.hosts.items():
            self._host_routes(node, self._zone_of(name))
        for name, node in self.routers.items():
            self._router_routes(name, node)

    def _namespace(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self._created.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")

    def _leg(self, node: Node, zone: str, address: Interface) -> None:
        """A veth from `node` into the bridge of `zone`."""
        bridge = self._bridge(zone)
        self._ports += 1
        port, inside = f"p{self._ports}", f"eth{len(node.legs)}"
        pair = f"{port} type veth peer name {inside} netns {node.namespace}"
        run("ip", "-n", self.switch, "link", "add", *pair.split())
        run("ip", "-n", self.switch, "link", "set", port, "master", bridge, "up")
        run("ip", "-n", node.namespace, "addr", "add", str(address), "dev", inside)
        run("ip", "-n", node.namespace, "link", "set", inside, "up")
        node.legs[zone] = address

    def _bridge(self, zone: str) -> str:
        if zone not in self._bridges:
            bridge = f"br{len(self._bridges)}"
            run("ip", "-n", self.switch, "link", "add", bridge, "type", "bridge")
            run("ip", "-n", self.switch, "link", "set", bridge, "up")
            self._bridges[zone] = bridge
        return self._bridges[zone]

    def _host(self, name: str, zone: str, address: Interface) -> None:
        node = Node(self.prefix + name)
        self._namespace(node.namespace)
        self._leg(node, zone, address)
        self.hosts[name] = node

    def _router(self, name: str, zones: tuple[str, str]) -> None:
        node = Node(self.prefix + "fw-" + name)
        self._namespace(node.namespace)
        for zone in zones:
            self._leg(node, zone, self._free_address(zone))
        run("ip", "netns", "exec", node.namespace, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.routers[name] = node

    # -- addresses and routes ---------------------------------------------------------------

    def _subnet(self, zone: str) -> ipaddress.IPv4Network:
        """The zone's IPv4 network in the lab; a catch-all zone uses its clients' subnet."""
        for where, address in self.clients.values():
            if where == zone:
                return Interface(address).network
        networks = [n for n in self.plan.topology.zones[zone].networks if n.version == 4]
        return networks[0]  # type: ignore[return-value]

    def _free_address(self, zone: str) -> Interface:
        taken = {
            leg.ip
            for node in [*self.hosts.values(), *self.routers.values()]
            for z, leg in node.legs.items()
            if z == zone
        }
        subnet = self._subnet(zone)
        address = next(a for a in subnet.hosts() if a not in taken)
        return Interface(f"{address}/{subnet.prefixlen}")

    def _zone_of(self, name: str) -> str:
        host = self.plan.topology.hosts.get(name)
        return host.zone if host is not None else self.clients[name][0]

    def _next_hop(self, zone: str, goal: str) -> ipaddress.IPv4Address | None:
        """The leg, in `zone`, of the first firewall on the way to `goal`."""
        found = firewall_path(self.plan.topology.firewalls, zone, goal)
        if not found or not found[0]:
            return None
        return self.routers[found[0][0]].legs[zone].ip

    def _routes(self, node: Node, zone: str, goals: list[str]) -> None:
        for goal in goals:
            hop = self._next_hop(zone, goal)
            if hop is None:
                continue
            for network in self._networks(goal):
                run("ip", "-n", node.namespace, "route", "replace", network, "via", str(hop))

    def _networks(self, zone: str) -> list[str]:
        networks = [n for n in self.plan.topology.zones[zone].networks if n.version == 4]
        return ["default" if n.prefixlen == 0 else str(n) for n in networks]

    def _host_routes(self, node: Node, zone: str) -> None:
        self._routes(node, zone, [z for z in self.plan.topology.zones if z != zone])

    def _router_routes(self, name: str, node: Node) -> None:
        """Zones not on one of its legs: through the leg whose path there is shortest."""
        for goal in self.plan.topology.zones:
            if goal in node.legs:
                continue
            paths = {z: firewall_path(self.plan.topology.firewalls, z, goal) for z in node.legs}
            usable = {z: p[0] for z, p in paths.items() if p is not None and name not in p[0]}
            if usable:
                leg = min(usable, key=lambda z: len(usable[z]))
                self._routes(node, leg, [goal])

    # -- services ---------------------------------------------------------------------------

    def serve(self) -> None:
        """Listeners on every planned port: on a domain controller, portcall's responders for
        the windows-dc catalog (DNS, Kerberos and the LDAP ping over UDP too) and the RPC
        port; elsewhere its responders on catalog ports; a plain listener on the others.
        Waits until every port listens."""
        wanted: dict[str, set[tuple[int, str]]] = {}
        for flow in self.plan.flows:
            for name in self._serving(flow.destination.name, flow.destination.kind):
                wanted.setdefault(name, set()).add((flow.port, flow.transport))
        served = {name: self._listen(name, ports) for name, ports in wanted.items()}
        for name, ports in served.items():
            self._await_listening(name, ports)

    def _listen(self, name: str, ports: set[tuple[int, str]]) -> set[tuple[int, str]]:
        """Start the listeners of host `name`; the ports and transports they serve."""
        address = self.address(name)
        served_all = {(port, transport) for port, transport in ports if transport == "tcp"}
        host = self.plan.topology.hosts.get(name)
        tcp = {port for port, transport in ports if transport == "tcp"}
        if host is not None and "domain-controller" in host.roles:
            served = {port for port, _ in ports if port in DC_PORTS}
            rpc = self.plan.topology.rpc_port
            extra = ["--rpc-port", str(rpc)] if rpc else []
            self._responders(name, "dc", address, served, "windows-dc", *extra)
            tcp -= served | ({rpc} if rpc else set())
            served_all |= {(p, t) for p, t in ports if t == "udp" and (p, t) in DC_ROWS}
        catalog = {e.port for e in self.plan.topology.catalog.entries}
        self._responders(name, "listen", address, tcp & catalog)
        if tcp - catalog:
            argv = (str(LISTENER), address, *map(str, sorted(tcp - catalog)))
            self.start(name, "plain", sys.executable, *argv)
        return served_all

    def _responders(
        self, name: str, what: str, address: str, ports: set[int], catalog: str = "", *extra: str
    ) -> None:
        if not ports:
            return
        # One certificate directory per listener: listeners starting together would race.
        argv = f"-m portcall listen --bind {address} --hostname {name}".split()
        argv += ["--ports", ",".join(map(str, sorted(ports))), *extra]
        argv += ["--catalog", catalog, "--domain", DOMAIN] if catalog else []
        certs = self.logs / f"certs-{name}-{what}"
        self.start(name, what, sys.executable, *argv, "--cert-dir", str(certs))

    def _serving(self, name: str, kind: EndKind) -> list[str]:
        if kind is EndKind.HOST:
            return [name] if name in self.hosts else []
        return [client for client, (zone, _) in self.clients.items() if zone == name]

    def address(self, name: str) -> str:
        node = self.hosts[name]
        return str(next(iter(node.legs.values())).ip)

    def start(self, name: str, what: str, *argv: str) -> subprocess.Popen[bytes]:
        """Run `argv` in host `name`'s namespace, its output to a log file."""
        log = (self.logs / f"{name}-{what}.log").open("wb")
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.hosts[name].namespace, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def _await_listening(
        self, name: str, ports: set[tuple[int, str]], budget: float = 20.0
    ) -> None:
        deadline = time.monotonic() + budget
        while True:
            listening = set()
            for transport, flag in (("tcp", "-Hltn"), ("udp", "-Hlun")):
                out = run("ip", "netns", "exec", self.hosts[name].namespace, "ss", flag)
                listening |= {
                    (int(line.split()[3].rsplit(":", 1)[1]), transport) for line in out.splitlines()
                }
            if ports <= listening:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name}: ports {sorted(ports - listening)} never listened; "
                    f"see the logs in {self.logs}"
                )
            time.sleep(0.1)

    # -- running and firewalls --------------------------------------------------------------

    def exec(self, node: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `argv` in a host's or a router's namespace and wait for it."""
        namespace = (self.hosts.get(node) or self.routers[node]).namespace
        return subprocess.run(
            ["ip", "netns", "exec", namespace, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def clear_firewalls(self) -> None:
        """Every router forwards everything again (iptables-nft rules live in nft too)."""
        for name in self.routers:
            done = self.exec(name, "nft", "flush", "ruleset")
            assert done.returncode == 0, done.stderr

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self.processes.clear()
        for namespace in reversed(self._created):
            subprocess.run(["ip", "netns", "delete", namespace], check=False, capture_output=True)
        self._created.clear()


def leftovers(prefix: str) -> list[str]:
    """Namespaces still carrying `prefix`: none once a lab is closed."""
    return [
        line.split()[0]
        for line in run("ip", "netns", "list").splitlines()
        if line.startswith(prefix)
    ]
