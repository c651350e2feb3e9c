"""Handing the scheduler child its socket where file descriptors cannot be inherited (Windows; VTKERNEL_PORTABLE=1).

The parent listens on loopback and starts the child with the port on its
command line and a one-time token in its environment (never on the command
line, which other users can read). The child connects and sends the token
first; anything else that connects is dropped. Used by the runtime
(`vtkernel.engine.runtime`), the early spawn (`vtkernel.kernel.prespawn`, which
must not import the engine) and the child (`vtkernel.engine.timing.scheduler`);
stdlib only, so importing it costs nothing.

Owner: `accept_child` runs on the thread that waits for the child's hello (the
runtime's feeder); the rest on the thread that spawns.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import time

TOKEN_ENV = "VTKERNEL_SCHEDULER_TOKEN"


def listen() -> tuple[socket.socket, str]:
    """A loopback listener and the token its child must send."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    return listener, secrets.token_hex(16)


def address(listener: socket.socket) -> str:
    """The child's first argument: `tcp:HOST:PORT`."""
    host, port = listener.getsockname()[:2]
    return f"tcp:{host}:{port}"


def accept_child(listener: socket.socket, token: str, timeout: float) -> socket.socket:
    """The connection of the child that sends `token` first (anything else that connects is dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        listener.settimeout(max(0.01, deadline - time.monotonic()))
        conn, _ = listener.accept()
        conn.settimeout(2.0)
        try:
            got = conn.recv(len(token), socket.MSG_WAITALL)
        except OSError:
            got = b""
        if hmac.compare_digest(got, token.encode()):
            conn.settimeout(None)
            return conn
        conn.close()


def connect_parent(where: str) -> socket.socket:
    """Child side: connect to `tcp:HOST:PORT` and prove who we are with the token from the environment."""
    host, _, port = where.removeprefix("tcp:").rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(os.environ.pop(TOKEN_ENV, "").encode())
    sock.settimeout(None)
    return sock


__all__ = ["TOKEN_ENV", "accept_child", "address", "connect_parent", "listen"]
