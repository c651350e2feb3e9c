"""A small OSC receiver that records when each packet arrived: for tests, benchmarks and notebooks.

It asks the kernel for each datagram's arrival time (`SO_TIMESTAMPNS`), so
the arrival times are right even if this process is stalled (for example
while a C call holds the GIL): the packets wait in the socket buffer, but
their timestamps were taken on arrival. Timetags are kept as the raw 64-bit
integers, so their grid can be checked exactly.

    rx = OscReceiver().start()        # rx.port is the UDP port
    ...
    rx.wait_for(4)                    # returns once 4 messages have arrived
    rx.received                       # [Received(arrival, timetag, address, args), ...]
    rx.stop()

Owner: the receiver's thread `vt-osc-receiver` appends to `received` (a list
that only grows until `clear`) and notifies `changed`; any thread may read
it, call `clear`, or wait on it with `wait_for` / `wait_until`, which sleep on
that condition and never poll.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from vtkernel.engine.timing.clock import timetag_to_wall

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


@dataclass(frozen=True, slots=True)
class Received:
    arrival: float  # wall-clock seconds (kernel receive time)
    timetag: int | None  # raw 64-bit OSC timetag; None for a bare message
    address: str
    args: tuple[Any, ...]

    @property
    def wall(self) -> float | None:
        """The timetag as wall-clock seconds."""
        return None if self.timetag is None else timetag_to_wall(self.timetag)

    @property
    def ahead(self) -> float | None:
        """How long before its timetag the packet arrived (negative: late)."""
        wall = self.wall
        return None if wall is None else wall - self.arrival


class OscReceiver:
    """Listens on a UDP port (0: any free one) and records every OSC message."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.changed = threading.Condition()
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread: threading.Thread | None = None

    def start(self) -> OscReceiver:
        self._thread = threading.Thread(target=self._run, name="vt-osc-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5)
        for s in (self.sock, self._stop_r, self._stop_w):
            s.close()

    def __enter__(self) -> OscReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self.changed:
            self.received = []

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `count` messages arrived, or `timeout` passed; returns what arrived."""
        return self.wait_until(lambda got: len(got) >= count, timeout)

    def wait_until(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> list[Received]:
        """Wait until `predicate(received)` holds, or `timeout` passed; returns what arrived.

        The receiver's thread notifies `changed` after each datagram, so this
        wakes once per datagram, not on a timer.
        """
        with self.changed:
            self.changed.wait_for(lambda: predicate(self.received), timeout)
            return list(self.received)

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data, ancdata, _, _ = self.sock.recvmsg(65536, 1024)
            except OSError:
                return
            arrival = time.time()
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    arrival = sec + nsec * 1e-9
            try:
                got = self._parse(data, arrival)
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with self.changed:
                self.received.extend(got)
                self.changed.notify_all()

    @staticmethod
    def _parse(data: bytes, arrival: float) -> list[Received]:
        if OscBundle.dgram_is_bundle(data):
            (timetag,) = struct.unpack(">Q", data[8:16])
            return [
                Received(arrival, timetag, content.address, tuple(content.params))
                for content in OscBundle(data)
                if isinstance(content, OscMessage)
            ]
        msg = OscMessage(data)
        return [Received(arrival, None, msg.address, tuple(msg.params))]
