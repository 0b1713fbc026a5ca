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


def mail_server_farm(*, process_per_connection: bool = False) -> tuple[Daemon, ...]:
    """Every one of the 17 catalog ports, served by the daemon that would serve it.

    By default each daemon runs in its mode for many clients: Dovecot's login processes
    serve many connections each, and nnrpd runs as its own daemon (it forks per connection
    but does not start a new program). A lab standing in for hundreds of servers on this
    machine's two cores otherwise spends them on starting processes, which hundreds of
    real servers would do on cores of their own. `process_per_connection=True` starts a
    process for each connection instead, as Dovecot does by default and inetd does: a new
    login process, and nnrpd run by a super-server whose backlog takes the burst of
    hundreds of hosts."""
    return (
        Slapd(plain_ports=(389, 379, 390, 3268)),
        Nginx(),
        Postfix(),
        Dovecot(shared_login=not process_per_connection),
        Inn(deep_backlog=process_per_connection),
        Responder(ports=(691,)),
    )
