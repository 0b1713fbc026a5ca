"""Sans-IO protocol handshakes, one module per protocol, registered in one table."""

from __future__ import annotations

from importlib import import_module

from portcall.protocols.base import Handshake, ProbeOptions, ServerHandshake, ServerOptions

#: protocol name (as the catalog spells it) -> "module:ClassName" of its client handshake.
CLIENTS: dict[str, str] = {
    "smtp": "portcall.protocols.smtp:SmtpClient",
    "pop3": "portcall.protocols.pop3:Pop3Client",
    "imap": "portcall.protocols.imap:ImapClient",
    "nntp": "portcall.protocols.nntp:NntpClient",
    "ldap": "portcall.protocols.ldap:LdapClient",
    "http": "portcall.protocols.http:HttpClient",
    "routing": "portcall.protocols.routing:RoutingClient",
    "dns": "portcall.protocols.dns:DnsClient",
    "kerberos": "portcall.protocols.kerberos:KerberosClient",
    "kpasswd": "portcall.protocols.kpasswd:KpasswdClient",
    "cldap": "portcall.protocols.cldap:CldapClient",
    "dcerpc": "portcall.protocols.dcerpc:EpmClient",
    "smb": "portcall.protocols.smb:SmbClient",
    "ntp": "portcall.protocols.ntp:NtpClient",
}


def client_for(protocol: str, options: ProbeOptions) -> Handshake:
    """A fresh client handshake for `protocol`."""
    module_name, class_name = CLIENTS[protocol].split(":")
    cls: type[Handshake] = getattr(import_module(module_name), class_name)
    return cls(options)


#: protocol name -> "module:ClassName" of its server-role handshake (the responders' side).
SERVERS: dict[str, str] = {
    "smtp": "portcall.protocols.smtp:SmtpServer",
    "pop3": "portcall.protocols.pop3:Pop3Server",
    "imap": "portcall.protocols.imap:ImapServer",
    "nntp": "portcall.protocols.nntp:NntpServer",
    "ldap": "portcall.protocols.ldap:LdapServer",
    "http": "portcall.protocols.http:HttpServer",
    "routing": "portcall.protocols.routing:RoutingServer",
    "dns": "portcall.protocols.dns:DnsServer",
    "kerberos": "portcall.protocols.kerberos:KerberosServer",
    "kpasswd": "portcall.protocols.kpasswd:KpasswdServer",
    "cldap": "portcall.protocols.cldap:CldapServer",
    "dcerpc": "portcall.protocols.dcerpc:EpmServer",
    "smb": "portcall.protocols.smb:SmbServer",
    "ntp": "portcall.protocols.ntp:NtpServer",
}


def server_for(protocol: str, options: ServerOptions) -> ServerHandshake:
    """A fresh server-role handshake for one connection speaking `protocol`."""
    module_name, class_name = SERVERS[protocol].split(":")
    cls: type[ServerHandshake] = getattr(import_module(module_name), class_name)
    return cls(options)
