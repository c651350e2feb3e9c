"""The clock loop: the time-critical part, run in its own process.

`python -m vtkernel.engine.timing.scheduler FD` runs `Scheduler` on the
socket FD that the parent (`vtkernel.engine.runtime.Runtime`) passed down.
It lives in a child process because one C call that holds the kernel's GIL
(a big numpy operation, `sum(range(10**8))`, a slow plot) stops every thread
of the kernel for as long as it runs; a process has its own GIL. The same
class can run on a thread (`Runtime(in_process=True)`), which the benchmark
uses as the baseline that shows why.

One loop, no busy polling: it sleeps in `select` on the parent's socket
until the earliest of (the next onset minus the lookahead, the next MIDI
message, the next telemetry frame while playing), or until a message comes.
Each wake-up is a *tick*: apply what the parent sent, render every event up
to one lookahead past now (`Renderer.advance`), send what is due. Lateness
of a tick is how long after its planned time the loop actually woke.

It never blocks on the parent: replies go into a buffer that is written
when the socket is writable, and telemetry is dropped rather than queued
without bound if the parent stops reading (for example while its GIL is
held by a long C call).

Owner: one thread (the child's main thread, or the `vt-scheduler` thread).
"""

from __future__ import annotations

import gc
import math
import os
import select
import socket
import sys
import time
from collections import deque
from typing import Any

from vtkernel.engine.schema import BUILTIN_TYPES, ModuleType
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.outputs import SchedulerOutputs
from vtkernel.engine.timing.render import Renderer
from vtkernel.engine.timing.shipping import load_class
from vtkernel.engine.timing.wire import FrameReader, encode

DEFAULT_LOOKAHEAD = 0.05
TELEMETRY_HZ = 30.0
MAX_OUTBUF = 4 << 20  # bytes waiting for the parent; past this, telemetry is dropped
LATENESS_SAMPLES = 2048


class Scheduler:
    """The loop. See the module docstring. Owner: the thread that calls `run`."""

    def __init__(self, sock: socket.socket, *, lookahead: float = DEFAULT_LOOKAHEAD) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.wall = WallClock.now()
        self.out = SchedulerOutputs(self.wall)
        types: dict[str, type[ModuleType]] = {cls.type_name: cls for cls in BUILTIN_TYPES}
        self.renderer = Renderer(types, self.out, lookahead=lookahead, wall=self.wall)
        self.telemetry_period = 1.0 / TELEMETRY_HZ
        self.lateness_ms: deque[float] = deque(maxlen=LATENESS_SAMPLES)
        self.max_lateness_ms = 0.0
        self.ticks = 0
        self._reader = FrameReader()
        self._outbuf = bytearray()
        self._quit = False
        self._next_telemetry = 0.0
        self._telemetry_dirty = True
        self._dropped_frames = 0

    # ----- sending to the parent --------------------------------------------

    def _send(self, message: Any, *, droppable: bool = False) -> None:
        if droppable and len(self._outbuf) > MAX_OUTBUF:
            self._dropped_frames += 1
            return
        self._outbuf += encode(message)
        self._flush()

    def _flush(self) -> None:
        while self._outbuf:
            try:
                n = self.sock.send(self._outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the parent is gone
                self._quit = True
                self._outbuf.clear()
                return
            del self._outbuf[:n]

    # ----- messages from the parent ---------------------------------------------

    def _handle(self, message: Any, now: float) -> None:
        kind = message[0]
        if kind == "patch":
            _, version, ops = message
            self.renderer.apply(ops, version, now)
            self._send(("synced", version))
        elif kind == "reset":
            _, version, doc = message
            self.renderer.reset(doc, version, now)
            self._send(("synced", version))
        elif kind == "types":
            for payload in message[1]:
                try:
                    cls = load_class(payload)
                except Exception as exc:
                    self.out.report(
                        "",
                        f"load:{exc}",
                        f"a module class could not be loaded in the scheduler: {type(exc).__name__}: {exc}",
                    )
                    continue
                self.renderer.set_type(cls)
        elif kind == "config":
            config = message[1]
            if "lookahead" in config:
                self.renderer.lookahead = float(config["lookahead"])
            if "telemetry_hz" in config:
                self.telemetry_period = 1.0 / float(config["telemetry_hz"])
        elif kind == "quit":
            self._quit = True
        self._telemetry_dirty = True

    # ----- the loop ---------------------------------------------------------------

    def run(self) -> None:
        self._send(("ready", os.getpid()))
        renderer = self.renderer
        out = self.out
        next_tick: float | None = None
        sock = self.sock
        sock_fd = sock.fileno()
        wake_fd = out.wake_fd
        try:
            while not self._quit:
                deadline = next_tick
                midi = out.next_midi()
                if midi is not None and (deadline is None or midi < deadline):
                    deadline = midi
                if renderer.playing or self._telemetry_dirty:
                    t = self._next_telemetry
                    if deadline is None or t < deadline:
                        deadline = t
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                rlist, wlist, _ = select.select([sock_fd, wake_fd], [sock_fd] if self._outbuf else [], [], timeout)
                now = time.monotonic()
                if timeout and deadline is not None and now >= deadline:
                    # A timed sleep ran out: how late did the OS wake us?
                    late = (now - deadline) * 1000.0
                    self.lateness_ms.append(late)
                    self.max_lateness_ms = max(self.max_lateness_ms, late)
                    self.ticks += 1
                if sock_fd in rlist:
                    for message in self._reader.read(sock):
                        self._handle(message, now)
                    if self._reader.closed:
                        break
                if wake_fd in rlist:
                    out.drain_resolved()
                next_tick = renderer.advance(now)
                out.flush_midi(now)
                if now >= self._next_telemetry and (renderer.playing or self._telemetry_dirty):
                    self._telemetry(now)
                if out.reports:
                    for line in out.reports:
                        self._send(("report", line))
                    out.reports.clear()
                if wlist:
                    self._flush()
        finally:
            out.close()

    def _telemetry(self, now: float) -> None:
        self._next_telemetry = now + self.telemetry_period
        self._telemetry_dirty = False
        recorded, self.out.recorded = self.out.recorded, {}
        self._send(("telemetry", self.telemetry(now), recorded), droppable=not recorded)

    def telemetry(self, now: float) -> dict[str, Any]:
        r = self.renderer
        out = self.out
        late = sorted(self.lateness_ms)
        ahead = sorted(out.ahead_ms)
        return {
            "beat": round(r.beat_at(now), 6),
            "playing": r.playing,
            "bpm": r.live["clock"]["bpm"],
            "version": r.version,
            "values": r.values(now),
            "events": r.counters.events,
            "events_sent": out.osc_sent + out.midi_sent,
            "osc_errors": out.osc_errors,
            "osc_dropped": out.osc_dropped,
            "midi_errors": out.midi_errors,
            "late_events": out.late,
            "ticks": self.ticks,
            "tick_lateness_ms": {
                "p50": _pct(late, 0.5),
                "p99": _pct(late, 0.99),
                "max": round(self.max_lateness_ms, 3),
            },
            "ahead_ms": {"min": _pct(ahead, 0.0), "p50": _pct(ahead, 0.5)},
            "lookahead_ms": round(r.lookahead * 1000.0, 3),
            "skipped_seconds": round(r.counters.skipped_seconds, 3),
            "muted": dict(r.muted),
            "dropped_frames": self._dropped_frames,
        }


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, math.floor(q * len(sorted_values)))], 3)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fd = int(args[0])
    lookahead = float(args[1]) if len(args) > 1 else DEFAULT_LOOKAHEAD
    sock = socket.socket(fileno=fd)
    gc.freeze()  # what was imported is permanent: keep it out of the collector's walks
    try:
        Scheduler(sock, lookahead=lookahead).run()
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
