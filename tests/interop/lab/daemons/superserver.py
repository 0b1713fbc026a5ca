"""A forking super-server, as inetd is: it listens with a deep backlog and runs one program
per connection with the connection as its standard input and output.

The lab uses it for INN's nnrpd when one nnrpd stands in for hundreds of servers: nnrpd's own
daemon mode listens with a backlog of 128, and a burst of connections beyond it waits in the
kernel for seconds, which a real server farm of that size would never do. Run as
`python superserver.py ADDRESS PORT PROGRAM [ARG...]`.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

BACKLOG = 4096


def serve(address: str, port: int, argv: list[str]) -> None:
    # Children are reaped by the kernel: the super-server never waits for them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(BACKLOG)
    while True:
        connection, _peer = listener.accept()
        if os.fork() == 0:
            listener.close()
            os.dup2(connection.fileno(), 0)
            os.dup2(connection.fileno(), 1)
            connection.close()
            os.execv(argv[0], argv)
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
