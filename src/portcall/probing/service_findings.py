"""Findings about a service itself rather than its TLS (those are `portcall.tls.assess`): what
a protocol's facts in `details` mean for the firewall or the administrator."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from portcall.verdicts import Finding, FindingCode

#: The endpoint mapper's interface that carries the directory's RPC traffic (DRSUAPI, NTDS).
DIRECTORY_INTERFACE = "drsuapi"


def _dcerpc(details: Mapping[str, object]) -> list[Finding]:
    """`dc-rpc-dynamic` when the directory's RPC port lies in a dynamic range: it may change
    at the next start, so a firewall would need the whole range open."""
    interfaces = details.get("interfaces")
    if not isinstance(interfaces, dict):
        return []
    directory = interfaces.get(DIRECTORY_INTERFACE)
    if not isinstance(directory, dict) or not directory.get("dynamic_range"):
        return []
    port, dynamic = directory.get("port"), directory["dynamic_range"]
    return [
        Finding(
            FindingCode.DC_RPC_DYNAMIC,
            f"the directory's RPC port (DRSUAPI) is {port}, in the dynamic range {dynamic}: "
            "it can change when the DC restarts, so a firewall would need the whole range open;"
            ' fix it on the DC (NTDS\\Parameters "TCP/IP Port", KB 224196) and allow that one '
            "port",
        )
    ]


_BY_PROTOCOL: dict[str, Callable[[Mapping[str, object]], list[Finding]]] = {
    "dcerpc": _dcerpc,
}


def service_findings(protocol: str, details: Mapping[str, object]) -> list[Finding]:
    """The findings `details` (a result's protocol facts) call for."""
    judge = _BY_PROTOCOL.get(protocol)
    return judge(details) if judge else []
