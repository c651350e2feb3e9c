"""The scheduler's I/O: OSC bundles, MIDI notes, recorded events and one-time reports.

`SchedulerOutputs` implements `vtkernel.engine.schema.Outputs` for the
scheduler loop. Nothing here may block the clock:

- OSC bundles are encoded by `oscwire` (python-osc's bytes, without its
  per-argument cost) and go through one connected, non-blocking UDP socket
  per destination.
  A connected socket is what lets Linux report "nothing listens on that
  port" (ICMP port unreachable comes back as ECONNREFUSED on a later send).
  Host names are resolved on a helper thread, because `getaddrinfo` can
  block for seconds; events for a destination that is still resolving are
  dropped and counted.
- MIDI has no timetags, so messages wait in a heap and go out at their
  exact time (`flush_midi`, called by the loop, which also wakes for them).
  Without a MIDI backend, the module reports it once and drops its notes.
- Problems are reported once per `(module, key)` until the module is edited
  (`forget`, called by the renderer when its params, type or class change):
  the user sees one clear line per edit, and the clock never stops.

Owner: the scheduler thread; only the resolver thread writes `_resolved`
(a deque) and the wake fd.
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from vtkernel.engine.platform import SelfPipe
from vtkernel.engine.schema import Event
from vtkernel.engine.timing import oscwire
from vtkernel.engine.timing.clock import WallClock

Destination = tuple[str, int]
RESOLVE_RETRY_SECONDS = 10.0
AHEAD_SAMPLES = 2048


def osc_bundle(timetag: int, address: str, args: Sequence[Any]) -> bytes:
    """One OSC bundle holding one message, with an exact 64-bit timetag (python-osc's bytes, `oscwire`)."""
    return oscwire.bundle(timetag, address, args)


Recorded = tuple[float, float, Any]  # one recorded event: (wall-clock time, beat, value)


class SchedulerOutputs:
    """See the module docstring. Owner: the scheduler thread."""

    def __init__(self, wall: WallClock) -> None:
        self.wall = wall
        self.reports: list[str] = []  # not yet sent to the parent
        self.recorded: dict[str, list[Recorded]] = {}  # not yet sent to the parent
        self.osc_sent = 0
        self.osc_errors = 0
        self.osc_dropped = 0
        self.midi_sent = 0
        self.midi_errors = 0
        self.late = 0  # sent after their own time
        self.ahead_ms: deque[float] = deque(maxlen=AHEAD_SAMPLES)
        self._seen: dict[str, set[str]] = {}  # module -> keys already reported
        self._socks: dict[Destination, socket.socket] = {}
        self._resolving: dict[Destination, float] = {}  # destination -> when to try again
        self._resolved: deque[tuple[Destination, Any]] = deque()
        self._wake = SelfPipe()  # the resolver thread wakes the loop (eventfd, or a socket pair off Linux)
        self._midi: list[tuple[float, int, str, str, tuple[int, ...]]] = []
        self._midi_seq = 0
        self._midi_ports: dict[str, Any] = {}

    @property
    def wake_fd(self) -> int:
        """Readable when a host name has been resolved (the loop selects on it)."""
        return self._wake.fileno()

    # ----- Outputs protocol -----------------------------------------------

    def report(self, module: str, key: str, message: str) -> None:
        keys = self._seen.setdefault(module, set())
        if key not in keys:
            keys.add(key)
            self.reports.append(message)

    def forget(self, module: str) -> None:
        """The module was edited: report its problems again, once each."""
        self._seen.pop(module, None)

    def record(self, module: str, event: Event) -> None:
        self.recorded.setdefault(module, []).append((event.wall, event.beat, event.value))

    def send_osc(self, module: str, host: str, port: int, address: str, timetag: int, args: Sequence[Any]) -> None:
        dest = (host, port)
        sock = self._socks.get(dest)
        if sock is None:
            sock = self._open(module, dest)
            if sock is None:
                self.osc_dropped += 1
                return
        try:
            dgram = osc_bundle(timetag, address, args)
        except Exception as exc:  # a value OSC cannot carry
            self.osc_errors += 1
            self.report(module, f"build:{type(exc).__name__}", f"{module}: cannot send {args!r} as OSC: {exc}")
            return
        now = time.monotonic()
        try:
            sock.send(dgram)
        except ConnectionRefusedError:
            self.osc_errors += 1
            self.report(
                module,
                f"refused:{host}:{port}",
                f"{module}: nothing listens on {host}:{port} (connection refused); events are still sent, the clock keeps running",
            )
            return
        except BlockingIOError:
            self.osc_errors += 1
            self.report(
                module,
                f"full:{host}:{port}",
                f"{module}: the network buffer to {host}:{port} is full; events were dropped",
            )
            return
        except OSError as exc:
            self.osc_errors += 1
            self.report(
                module,
                f"oserror:{host}:{port}:{exc.errno}",
                f"{module}: cannot send to {host}:{port}: {exc.strerror or exc}",
            )
            return
        self.osc_sent += 1
        ahead = (timetag / (1 << 32) - 2_208_988_800) - self.wall.wall(now)
        self.ahead_ms.append(ahead * 1000.0)
        if ahead < 0:
            self.late += 1

    def send_midi(self, module: str, port: str, at: float, message: Sequence[int]) -> None:
        self._midi_seq += 1
        heapq.heappush(self._midi, (at, self._midi_seq, module, port, tuple(message)))

    # ----- OSC destinations -------------------------------------------------

    def _open(self, module: str, dest: Destination) -> socket.socket | None:
        host, port = dest
        literal = "127.0.0.1" if host == "localhost" else host
        try:
            family = socket.AF_INET6 if ipaddress.ip_address(literal).version == 6 else socket.AF_INET
        except ValueError:  # a name: resolve it off the clock thread
            retry = self._resolving.get(dest)
            if retry is None or (retry > 0 and time.monotonic() >= retry):
                self._resolving[dest] = 0.0  # in progress
                threading.Thread(target=self._resolve, args=(module, dest), name="vt-resolve", daemon=True).start()
            return None
        return self._connect(module, dest, family, (literal, port))

    def _connect(self, module: str, dest: Destination, family: int, addr: Any) -> socket.socket | None:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            self.osc_errors += 1
            self.report(
                module,
                f"connect:{dest[0]}:{dest[1]}",
                f"{module}: cannot send to {dest[0]}:{dest[1]}: {exc.strerror or exc}",
            )
            return None
        self._socks[dest] = sock
        return sock

    def _resolve(self, module: str, dest: Destination) -> None:  # on a vt-resolve thread
        try:
            info = socket.getaddrinfo(dest[0], dest[1], type=socket.SOCK_DGRAM)
            result: Any = (module, info[0][0], info[0][4])
        except OSError as exc:
            result = (module, exc, None)
        self._resolved.append((dest, result))
        self._wake.wake()

    def drain_resolved(self) -> None:
        """Take the resolver's results (scheduler thread, when `wake_fd` is readable)."""
        self._wake.clear()
        while self._resolved:
            dest, (module, family, addr) = self._resolved.popleft()
            if isinstance(family, BaseException):
                self._resolving[dest] = time.monotonic() + RESOLVE_RETRY_SECONDS
                self.report(
                    module,
                    f"resolve:{dest[0]}",
                    f"{module}: cannot resolve host {dest[0]!r} ({family}); its events are dropped, the clock keeps running",
                )
                continue
            self._resolving.pop(dest, None)
            self._connect(module, dest, family, addr)

    # ----- MIDI -------------------------------------------------------------

    def next_midi(self) -> float | None:
        return self._midi[0][0] if self._midi else None

    def flush_midi(self, now: float) -> None:
        """Send every MIDI message that is due."""
        heap = self._midi
        while heap and heap[0][0] <= now:
            at, _, module, port, message = heapq.heappop(heap)
            out = self._midi_port(module, port)
            if out is None:
                continue
            try:
                import mido

                out.send(mido.Message.from_bytes(list(message)))
            except Exception as exc:
                self.midi_errors += 1
                self.report(module, f"midi-send:{type(exc).__name__}", f"{module}: MIDI send failed: {exc}")
                continue
            self.midi_sent += 1
            if now - at > 0.001:
                self.late += 1

    def _midi_port(self, module: str, port: str) -> Any:
        if port in self._midi_ports:
            return self._midi_ports[port]
        out: Any = None
        try:
            import mido

            out = mido.open_output(port or None)
        except ImportError as exc:
            self.midi_errors += 1
            self.report(
                module,
                "midi-backend",
                f"{module}: no MIDI backend ({exc}); install one with: pip install 'vtkernel[midi]'. Its notes are dropped.",
            )
        except Exception as exc:
            self.midi_errors += 1
            try:
                import mido

                names = ", ".join(mido.get_output_names()) or "none"
            except Exception:
                names = "unknown"
            self.report(module, f"midi-port:{port}", f"{module}: cannot open MIDI port {port!r}: {exc}; ports: {names}")
        self._midi_ports[port] = out
        return out

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        for port in self._midi_ports.values():
            if port is not None:
                try:
                    port.close()
                except Exception:
                    pass
        self._wake.close()
