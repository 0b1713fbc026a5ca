"""Sans-IO protocol handshakes, one module per protocol, registered in one table."""

from __future__ import annotations

from importlib import import_module

from portcall.protocols.base import Handshake, ProbeOptions

#: protocol name (as the catalog spells it) -> "module:ClassName" of its client handshake.
CLIENTS: dict[str, str] = {
    "smtp": "portcall.protocols.smtp:SmtpClient",
    "pop3": "portcall.protocols.pop3:Pop3Client",
    "imap": "portcall.protocols.imap:ImapClient",
    "nntp": "portcall.protocols.nntp:NntpClient",
    "ldap": "portcall.protocols.ldap:LdapClient",
    "http": "portcall.protocols.http:HttpClient",
    "routing": "portcall.protocols.routing:RoutingClient",
}


def client_for(protocol: str, options: ProbeOptions) -> Handshake:
    """A fresh client handshake for `protocol`."""
    module_name, class_name = CLIENTS[protocol].split(":")
    cls: type[Handshake] = getattr(import_module(module_name), class_name)
    return cls(options)
