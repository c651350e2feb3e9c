"""Handing a started scheduler child to the runtime that will feed it; stdlib only, so importing it costs nothing.

- `Started`: a scheduler process that was started but not yet taken, with its
  socket, status page and stderr. The runtime (`vtkernel.runtime`) makes one
  for each child and for its warm spare; the early spawn
  (`vtkernel.kernel.prespawn`, which must not import the engine) makes one
  before the engine exists, and the runtime adopts it.
- `child_env`: the environment a child starts with (it must find this package).
- Where file descriptors cannot be inherited (Windows; VTKERNEL_PORTABLE=1)
  the parent listens on loopback and starts the child with the port on its
  command line and a one-time token in its environment (never on the command
  line, which other users can read). The child (`vtkernel.engine.timing.scheduler`)
  connects and sends the token first; anything else that connects is dropped.
  A scheduler started before ipykernel binds its ZMQ ports (the early spawn)
  must not take one of them: jupyter_client picked them free and released
  them, so a loopback socket bound to port 0 may get one, and the kernel then
  dies with "Address already in use". Both ends therefore bind around the
  ports of the kernel's connection file (`kernel_ports`, `AVOID_ENV`).

Owner: a `Started` is made on the thread that spawns and then belongs to the
runtime's feeder, which alone reads its `sock` (so `accept_child` runs there,
waiting for the child's hello) and calls `discard`.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import subprocess
import sys
import time
from typing import IO

TOKEN_ENV = "VTKERNEL_SCHEDULER_TOKEN"
AVOID_ENV = "VTKERNEL_AVOID_PORTS"  # comma-separated loopback ports the child must not bind
PAGE_SIZE = 4096  # the status page both processes map (its layout: vtkernel.engine.timing.guard)
ACCEPT_TIMEOUT = 30.0  # how long a child may take to connect back (an interpreter and the engine's imports)


class Started:
    """A scheduler process that was started but not yet taken: its process, socket, status page fd and stderr.

    With the portable hand-off, give `listener=(listener, token, page path)`
    instead of `sock`: the child connects back, and `sock` accepts it (and
    checks its token) the first time it is read, so the spawner need not wait.
    The page's name is removed once the child has it open (POSIX; Windows
    removes it when the last handle closes). See the module docstring for
    which thread may do what.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        sock: socket.socket | None,
        page_fd: int,
        stderr: IO[bytes],
        listener: tuple[socket.socket, str, str] | None = None,
    ) -> None:
        self.proc = proc
        self._sock = sock
        self.page_fd = page_fd
        self.stderr = stderr
        self._listener = listener

    @property
    def sock(self) -> socket.socket:
        """The socket to the child (with the portable hand-off: accepted now, raising if it does not connect)."""
        if self._sock is None:
            assert self._listener is not None, "a Started has a socket or a listener"
            listener, token, page_path = self._listener
            self._listener = None
            try:
                self._sock = accept_child(listener, token, ACCEPT_TIMEOUT)
            finally:
                listener.close()
                unlink(page_path)
        return self._sock

    def discard(self) -> None:
        """Kill the child and close what it was given (it was never taken, or it is no longer wanted)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        if self._sock is not None:
            self._sock.close()
        if self._listener is not None:
            self._listener[0].close()
            unlink(self._listener[2])
            self._listener = None
        os.close(self.page_fd)
        self.stderr.close()


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a scheduler child: ours, with our `sys.path` so it imports this very package."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def unlink(path: str) -> None:
    """Remove a file's name if we can (on Windows an open file's name stays until its last handle closes)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def kernel_ports(argv: list[str]) -> frozenset[int]:
    """The ports in the connection file of a kernel command line (`-f PATH`); empty if there is none or it cannot be read."""
    import json

    path = None
    for i, arg in enumerate(argv):
        if arg == "-f" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith(("-f=", "--f=", "--IPKernelApp.connection_file=")):
            path = arg.split("=", 1)[1]
    if path is None:
        return frozenset()
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        return frozenset(int(info[k]) for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port") if info.get(k))
    except (OSError, ValueError, TypeError, AttributeError):
        return frozenset()


def bind_loopback(sock: socket.socket, avoid: frozenset[int] = frozenset()) -> socket.socket:
    """Bind `sock` to a free loopback port that is not in `avoid` (the sockets holding refused ports are kept until then)."""
    refused: list[socket.socket] = []
    try:
        for _ in range(64):
            sock.bind(("127.0.0.1", 0))
            if sock.getsockname()[1] not in avoid:
                return sock
            refused.append(sock)  # held, so the next bind cannot be handed the same port
            sock = socket.socket(sock.family, sock.type)
        raise OSError(f"no free loopback port outside {sorted(avoid)}")
    finally:
        for s in refused:
            s.close()


def avoided_ports() -> frozenset[int]:
    """Child side: the ports the parent asked it not to bind (`AVOID_ENV`)."""
    raw = os.environ.pop(AVOID_ENV, "")
    return frozenset(int(p) for p in raw.split(",") if p.strip().isdigit())


def listen(avoid: frozenset[int] = frozenset()) -> tuple[socket.socket, str]:
    """A loopback listener (on no port in `avoid`) and the token its child must send."""
    listener = bind_loopback(socket.socket(socket.AF_INET, socket.SOCK_STREAM), avoid)
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
    sock = bind_loopback(socket.socket(socket.AF_INET, socket.SOCK_STREAM), avoided_ports())
    sock.settimeout(30)
    sock.connect((host, int(port)))
    sock.sendall(os.environ.pop(TOKEN_ENV, "").encode())
    sock.settimeout(None)
    return sock


__all__ = [
    "ACCEPT_TIMEOUT",
    "AVOID_ENV",
    "TOKEN_ENV",
    "Started",
    "accept_child",
    "address",
    "avoided_ports",
    "bind_loopback",
    "child_env",
    "connect_parent",
    "kernel_ports",
    "listen",
    "unlink",
]
