"""The daemons of a whole mail server (slapd, nginx, Postfix, Dovecot, INN, and portcall's
responder for the routing port 691), as the scale test and bench/real_daemons.py start them
in a lab that listens on every address."""

from __future__ import annotations

from tests.interop.lab.base import Daemon
from tests.interop.lab.daemons.dovecot import Dovecot
from tests.interop.lab.daemons.inn import Inn
from tests.interop.lab.daemons.nginx import Nginx
from tests.interop.lab.daemons.postfix import Postfix
from tests.interop.lab.daemons.responder import Responder
from tests.interop.lab.daemons.slapd import Slapd


def mail_server_farm() -> tuple[Daemon, ...]:
    """Every one of the 17 catalog ports, served by the daemon that would serve it; nnrpd
    behind a super-server, whose backlog takes the burst of hundreds of hosts."""
    return (
        Slapd(plain_ports=(389, 379, 390, 3268)),
        Nginx(),
        Postfix(),
        Dovecot(),
        Inn(deep_backlog=True),
        Responder(ports=(691,)),
    )
