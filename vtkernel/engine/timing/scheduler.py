"""The clock loop: the time-critical part, run in its own process.

`python -m vtkernel.engine.timing.scheduler FD` runs `Scheduler` on the
socket FD that the parent (`vtkernel.runtime.Runtime`) passed down.
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

User code (module classes) runs under `vtkernel.engine.timing.guard`: its
results are validated before they reach the clock, each call has a time
budget enforced by a watchdog thread, and the process's address space is
capped. A module the watchdog had to stop stays muted ("sticky") until its
own entry in the document or its class changes; other modules keep playing.
Each tick stamps its start in a status page shared with the parent, which
restarts a process whose tick never ends (see `vtkernel.runtime.host`).

MIDI has no timetags: the loop sleeps until `MIDI_SPIN` before a MIDI
deadline, then waits out the rest on the monotonic clock, sends, and keeps
the send lateness (time after the send call minus the deadline).

The process asks for real-time priority (`SCHED_FIFO`) where permitted,
with its watchdog thread one level above, and says what it got in
telemetry (`priority`).

Owner: one thread (the child's main thread, or the `vt-scheduler` thread).
"""

from __future__ import annotations

import gc
import json
import os
import select
import socket
import sys
import threading
import time
from collections import deque
from typing import Any

from vtkernel import handoff
from vtkernel.engine.figures import percentile
from vtkernel.engine.schema import BUILTIN_TYPES, ModuleType
from vtkernel.engine.timing.clock import TempoMap, WallClock
from vtkernel.engine.timing.guard import (
    DEFAULT_BUDGET,
    DEFAULT_MEMORY_MB,
    Guard,
    StatusPage,
    UserCodeHung,
    Watchdog,
    die_with_parent,
    install_interrupt,
    limit_memory,
    request_priority,
)
from vtkernel.engine.timing.link import LinkSession
from vtkernel.engine.timing.outputs import Recorded, SchedulerOutputs
from vtkernel.engine.timing.render import Renderer
from vtkernel.engine.timing.shipping import load_class
from vtkernel.engine.timing.wire import FrameReader, encode

DEFAULT_LOOKAHEAD = 0.05
TELEMETRY_HZ = 30.0
MAX_OUTBUF = 4 << 20  # bytes waiting for the parent; past this, telemetry is dropped
LATENESS_SAMPLES = 2048
MIDI_SPIN = 0.001  # seconds before a MIDI deadline where sleeping stops and waiting on the clock starts


class Scheduler:
    """The loop. See the module docstring. Owner: the thread that calls `run`."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        lookahead: float = DEFAULT_LOOKAHEAD,
        wall: WallClock | None = None,
        page: StatusPage | None = None,
        budget: float = DEFAULT_BUDGET,
        priority: str = "normal (not requested)",
        memory: str = "unlimited",
    ) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.wall = wall or WallClock.now()
        self.out = SchedulerOutputs(self.wall)
        self.page = page
        self.guard = Guard(self.out.report, page, budget=budget)
        self.priority = priority
        self.memory = memory
        types: dict[str, type[ModuleType]] = {cls.type_name: self.guard.wrap(cls) for cls in BUILTIN_TYPES}
        self.renderer = Renderer(types, self.out, lookahead=lookahead, wall=self.wall)
        self.renderer.link = LinkSession()  # joins a Link session when the document says clock.link
        # module -> (fingerprint of its entry and class, why): muted until that changes
        self.sticky: dict[str, tuple[Any, str]] = {}
        self.midi_late_ms: deque[float] = deque(maxlen=LATENESS_SAMPLES)
        self.midi_late_max_ms = 0.0
        self.midi_spin = MIDI_SPIN
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

    def _synced(self, version: int) -> None:
        """Say that `version` is applied, behind every event recorded before it.

        The parent reads in order, so once it knows `version` is synced it holds all
        that was recorded under the versions before: `vt.stop()` then
        `vt.recorded(...)` sees every event that was sent, with none still in flight.
        """
        if self.out.recorded:  # the events alone: a whole telemetry costs ~11 ms at 2,000 modules
            self._send(("recorded", self._take_recorded()))
        self._send(("synced", version))

    def _take_recorded(self) -> dict[str, list[Recorded]]:
        recorded, self.out.recorded = self.out.recorded, {}
        return recorded

    def _handle(self, message: Any, now: float) -> None:
        kind = message[0]
        if kind == "patch":
            _, version, ops = message
            self.renderer.apply(ops, version, now)
            self._synced(version)
        elif kind == "reset":
            _, version, doc = message[:3]
            extra = message[3] if len(message) > 3 else {}
            self.renderer.reset(doc, version, now)
            resume = extra.get("resume")
            if resume and self.renderer.playing:
                self._resume(resume, now)
            for name, why in (extra.get("muted") or {}).items():
                fp = self._fingerprint(name)
                if fp is not None:
                    self.sticky[name] = (fp, why)
            self._synced(version)
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
                self.renderer.set_type(self.guard.wrap(cls))
        elif kind == "config":
            config = message[1]
            if "lookahead" in config:
                self.renderer.lookahead = float(config["lookahead"])
            if "telemetry_hz" in config:
                self.telemetry_period = 1.0 / float(config["telemetry_hz"])
            if "budget" in config:
                self.guard.budget = float(config["budget"])
            if "midi_spin" in config:  # 0: sleep right up to each MIDI deadline (the benchmark's baseline)
                self.midi_spin = float(config["midi_spin"])
        elif kind == "quit":
            self._send(("bye", self.transport()))
            self._quit = True
        self._telemetry_dirty = True

    # ----- the transport across restarts ----------------------------------------

    def transport(self) -> dict[str, float] | None:
        """Where the transport is (absolute monotonic anchors, valid in any process), or None when stopped."""
        r = self.renderer
        tempo = r.tempo
        if tempo is None:
            return None
        return {
            "bpm": tempo.bpm,
            "anchor_time": tempo.anchor_time,
            "anchor_beat": tempo.anchor_beat,
            "play_time": r.play_time,
            "horizon": r.horizon,
        }

    def _resume(self, resume: dict[str, float], now: float) -> None:
        """Continue the transport a previous scheduler process ran (`transport()`), not from beat 0."""
        r = self.renderer
        at = float(resume["anchor_time"])
        tempo = TempoMap(float(resume["bpm"]), at, float(resume["anchor_beat"]), self.wall.timetag(at))
        bpm = float(r.live["clock"]["bpm"])
        if bpm != tempo.bpm:
            tempo = tempo.with_bpm(bpm, max(tempo.anchor_beat, tempo.beat_at(now)))
        r.tempo = tempo
        r.play_time = float(resume["play_time"])
        # What the old process rendered (up to its horizon) went out; what fell due meanwhile is lost.
        r.horizon = max(float(resume["horizon"]), tempo.beat_at(now))
        r.stopped_beat = 0.0

    # ----- sticky mutes (what the watchdog stopped) ---------------------------------

    def _fingerprint(self, name: str) -> Any:
        module = self.renderer.target["modules"].get(name)
        if module is None:
            return None
        cls = self.renderer.types.get(module.get("type", ""))
        return (json.dumps(module, sort_keys=True, default=str), id(cls))

    def _enforce_sticky(self) -> None:
        guard = self.guard
        if guard.faults:
            for name, why in guard.faults.items():
                fp = self._fingerprint(name)
                if fp is not None:
                    self.sticky[name] = (fp, why)
            guard.faults.clear()
        muted = self.renderer.muted
        for name, (fp, why) in list(self.sticky.items()):
            if self._fingerprint(name) != fp:  # edited, retyped, its class redefined, or removed
                del self.sticky[name]
                if muted.get(name) == why:
                    del muted[name]
            elif name not in muted:
                muted[name] = why

    def _hung(self, exc: UserCodeHung) -> None:
        """User code swallowed the timeout: mute its module (the render of this window was cut short)."""
        why = str(exc)
        self.renderer.muted[exc.name] = why
        self.guard.faults[exc.name] = why
        self.out.report(exc.name, "hung", why)

    # ----- the loop ---------------------------------------------------------------

    def run(self) -> None:
        self._send(("ready", os.getpid(), self.wall.offset))
        renderer = self.renderer
        out = self.out
        page = self.page
        next_tick: float | None = None
        sock = self.sock
        sock_fd = sock.fileno()
        wake_fd = out.wake_fd
        try:
            while not self._quit:
                deadline = next_tick
                spin_to = None
                midi = out.next_midi()
                if midi is not None and (deadline is None or midi - self.midi_spin < deadline):
                    deadline, spin_to = midi - self.midi_spin, midi
                # In a Link session telemetry keeps coming while stopped: peers join and leave then too.
                if renderer.playing or self._telemetry_dirty or renderer.linked:
                    t = self._next_telemetry
                    if deadline is None or t < deadline:
                        deadline, spin_to = t, None
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                if page is not None:
                    page.set_tick(0.0)
                rlist, wlist, _ = select.select([sock_fd, wake_fd], [sock_fd] if self._outbuf else [], [], timeout)
                now = time.monotonic()
                if page is not None:
                    page.set_tick(now)
                if timeout and deadline is not None and now >= deadline:
                    # A timed sleep ran out: how late did the OS wake us?
                    late = (now - deadline) * 1000.0
                    self.lateness_ms.append(late)
                    self.max_lateness_ms = max(self.max_lateness_ms, late)
                    self.ticks += 1
                if spin_to is not None and not rlist:
                    while now < spin_to:  # the last millisecond before a MIDI deadline: wait it out exactly
                        now = time.monotonic()
                self._flush_midi(now)
                if sock_fd in rlist:
                    for message in self._reader.read(sock):
                        try:
                            self._handle(message, now)
                        except UserCodeHung as exc:
                            self._hung(exc)
                    if self._reader.closed:
                        break
                    if self.sticky or self.guard.faults:
                        self._enforce_sticky()  # before rendering: a module muted across a restart stays silent
                if wake_fd in rlist:
                    out.drain_resolved()
                try:
                    next_tick = renderer.advance(now)
                except UserCodeHung as exc:
                    self._hung(exc)
                    if renderer.tempo is not None:  # what fell due while it hung is dropped, not sent late
                        renderer.horizon = max(renderer.horizon, renderer.tempo.beat_at(time.monotonic()))
                    next_tick = now
                if self.sticky or self.guard.faults:
                    self._enforce_sticky()
                if out.next_midi() is not None:
                    self._open_midi_ports()
                self._flush_midi(time.monotonic())
                if now >= self._next_telemetry and (renderer.playing or self._telemetry_dirty or renderer.linked):
                    self._telemetry(now)
                if out.reports:
                    for line in out.reports:
                        self._send(("report", line))
                    out.reports.clear()
                if wlist:
                    self._flush()
        finally:
            if page is not None:
                page.set_tick(0.0)
            out.close()

    def _open_midi_ports(self) -> None:
        """Open a MIDI port when its first message is queued (a lookahead early), not at its deadline:
        importing the backend and opening the port took ~7 ms, which made the first note that late."""
        heap = getattr(self.out, "_midi", None)
        opened = getattr(self.out, "_midi_ports", None)
        open_port = getattr(self.out, "_midi_port", None)
        if heap is None or opened is None or open_port is None:
            return
        for item in heap:
            if item[3] not in opened:
                open_port(item[2], item[3])

    def _flush_midi(self, now: float) -> None:
        """Send the MIDI messages due by `now`; keep how late the batch left (after the send calls)."""
        out = self.out
        at = out.next_midi()
        if at is None or at > now:
            return
        out.flush_midi(now)
        late = (time.monotonic() - at) * 1000.0
        self.midi_late_ms.append(late)
        if late > self.midi_late_max_ms:
            self.midi_late_max_ms = late

    def _telemetry(self, now: float) -> None:
        self._next_telemetry = now + self.telemetry_period
        self._telemetry_dirty = False
        recorded = self._take_recorded()
        self._send(("telemetry", self.telemetry(now), recorded), droppable=not recorded)

    def telemetry(self, now: float) -> dict[str, Any]:
        r = self.renderer
        out = self.out
        late = sorted(self.lateness_ms)
        ahead = sorted(out.ahead_ms)
        midi_late = sorted(self.midi_late_ms)
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
                "p50": percentile(late, 0.5, 3),
                "p99": percentile(late, 0.99, 3),
                "max": round(self.max_lateness_ms, 3),
            },
            "ahead_ms": {"min": percentile(ahead, 0.0, 3), "p50": percentile(ahead, 0.5, 3)},
            "lookahead_ms": round(r.lookahead * 1000.0, 3),
            "skipped_seconds": round(r.counters.skipped_seconds, 3),
            "muted": dict(r.muted),
            "sticky": {name: why for name, (_, why) in self.sticky.items()},
            "dropped_frames": self._dropped_frames,
            "priority": self.priority,
            "memory_limit": self.memory,
            "budget_ms": round(self.guard.budget * 1000.0, 3),
            "midi_send_lateness_ms": {
                "p50": percentile(midi_late, 0.5, 3),
                "p99": percentile(midi_late, 0.99, 3),
                "max": round(self.midi_late_max_ms, 3),
                "n": len(midi_late),
            },
            "transport": self.transport(),
            "link": r.link_telemetry(now),
        }


def main(argv: list[str] | None = None) -> int:
    """`FD|tcp:HOST:PORT [LOOKAHEAD] [key=value ...]`; keys: `page` (status page fd) or `page_path`,
    `wall` (monotonic-to-wall offset), `parent` (pid), `priority` (0/1), `memory_mb`, `budget` (seconds)."""
    args = sys.argv[1:] if argv is None else argv
    lookahead = float(args[1]) if len(args) > 1 else DEFAULT_LOOKAHEAD
    opts = dict(a.split("=", 1) for a in args[2:] if "=" in a)
    parent = int(opts.get("parent", os.getppid()))
    die_with_parent(parent)
    priority, watchdog_priority = request_priority(opts.get("priority", "1") == "1")
    page: StatusPage | None = None
    if "page_path" in opts:  # the portable hand-off (Windows; VTKERNEL_PORTABLE=1): map the page by name
        page = StatusPage(os.open(opts["page_path"], os.O_RDWR | getattr(os, "O_BINARY", 0)))
    elif "page" in opts:
        page = StatusPage(int(opts["page"]))
    if args[0].startswith("tcp:"):  # connect back to the parent and prove who we are (vtkernel.handoff)
        sock = handoff.connect_parent(args[0])
    else:
        sock = socket.socket(fileno=int(args[0]))
    wall = WallClock(float(opts["wall"])) if "wall" in opts else None
    budget = float(opts.get("budget", DEFAULT_BUDGET))
    scheduler = Scheduler(sock, lookahead=lookahead, wall=wall, page=page, budget=budget, priority=priority)
    install_interrupt(scheduler.guard)
    watchdog = Watchdog(
        scheduler.guard, main_thread_id=threading.get_ident(), parent_pid=parent, priority=watchdog_priority
    ).start()
    scheduler.memory = limit_memory(int(opts.get("memory_mb", DEFAULT_MEMORY_MB)))
    scheduler.guard.memory_note = f"it allocated past the scheduler process's memory cap ({scheduler.memory})"
    gc.freeze()  # what was imported is permanent: keep it out of the collector's walks
    try:
        scheduler.run()
    finally:
        watchdog.stop()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
