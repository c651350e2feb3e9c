"""Framing between the runtime (parent) and the scheduler (child): length-prefixed pickles.

Messages are tuples whose first item names them.

Parent -> scheduler:
    ("config", {"lookahead": s, "telemetry_hz": n, "budget": s, "midi_spin": s})   any subset
    ("types", [class_payload, ...])        register or hot-swap module classes
    ("reset", version, document_json, {"resume": transport | None, "muted": {module: why}})
                                            the whole patch (start, resync, restart); `resume`
                                            continues a previous process's transport
    ("patch", version, [(op, quantize), ...])  JSON Patch ops since the last version sent
    ("quit",)

Scheduler -> parent:
    ("ready", pid, wall_offset)             wall_offset: its monotonic-to-wall-clock offset
    ("recorded", {recorder: [(wall, beat, value), ...]})
                                            sent just before a "synced" when events are waiting,
                                            so a synced version has all recorded before it
    ("synced", version)                     the patch of `version` is in the scheduler
    ("telemetry", dict, {recorder: [(wall, beat, value), ...]})
    ("report", message)                     a problem, once, in one line
    ("bye", transport | None)               answering "quit": where its transport got to

Both ends trust each other (the parent started the child), so pickle is fine.
`FrameReader` is for a non-blocking socket (the scheduler never blocks on
the parent); `recv_frame` / `send_frame` are for the parent's blocking threads.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20


def encode(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def send_frame(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode(message))


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def recv_frame(sock: socket.socket) -> Any:
    """The next message, or None at end of stream (blocking)."""
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is too large")
    body = _recv_exact(sock, size)
    return None if body is None else pickle.loads(body)


class FrameReader:
    """Collects bytes from a non-blocking socket and yields whole messages."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.closed = False

    def read(self, sock: socket.socket) -> list[Any]:
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._buf += chunk
            if len(chunk) < (1 << 16):
                break
        out = []
        buf = self._buf
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            out.append(pickle.loads(bytes(buf[_HEADER.size : _HEADER.size + size])))
            del buf[: _HEADER.size + size]
        return out
