"""The runtime: runs the scheduler process for an engine and keeps what it reports.

The engine thread stays the only authority on state; the scheduler
(`vtkernel.engine.timing.scheduler`, in a child process) only *renders* the
patch. The runtime feeds it incrementally:

- an `on_publish_hooks` entry puts each new `Snapshot` in a deque and wakes
  the feeder (an eventfd write: the engine thread never waits);
- the feeder thread coalesces what is queued into one JSON Patch
  (`render_ops(old, new, changed paths)`: O(change), never the whole
  document) and sends it with each op's quantization (`Change.quantize`);
  the whole document goes only at start and after a restart;
- module classes go when they are registered (`Registry.subscribe`), by
  reference when the child can import them and by value otherwise (see
  `vtkernel.engine.timing.shipping`);
- the reader thread keeps the latest telemetry, recorded events and reports.

If the kernel's GIL is held (a long C call), the feeder and the reader stop,
but the child keeps the clock and its copy of the patch; they catch up after.

Threads: `start`/`stop` are called by one controlling thread (the kernel's
main thread). `vt-runtime-feed` owns the socket's write side and the copy of
what the child has; `vt-runtime-read` owns its read side. `telemetry`,
`stats`, `recorded`, `reports`, `wait_synced` may be called from any thread.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from vtkernel.engine.delta import render_ops
from vtkernel.engine.document import Path, Snapshot
from vtkernel.engine.engine import Engine
from vtkernel.engine.queue import Waker
from vtkernel.engine.schema import ModuleType
from vtkernel.engine.timing.render import decode_pointer
from vtkernel.engine.timing.scheduler import DEFAULT_LOOKAHEAD, TELEMETRY_HZ, Scheduler
from vtkernel.engine.timing.shipping import ShippingError, ship_class
from vtkernel.engine.timing.wire import recv_frame, send_frame

READY_TIMEOUT = 30.0
MAX_RESTARTS = 3  # per RESTART_WINDOW; a scheduler that keeps dying is reported, not respawned forever
RESTART_WINDOW = 60.0
MAX_REPORTS = 200
RECORDER_DEFAULT_SIZE = 1000

Recorded = tuple[float, float, Any]  # (wall-clock time, beat, value)


class Runtime:
    """Runs the scheduler for `engine`. See the module docstring for threads and data flow.

    `lookahead`: how far ahead of its time each event is sent (seconds).
    `in_process`: run the scheduler on a thread of this process instead (for
    comparison only: a C call holding the GIL then stops the clock too).
    `on_report`: called with each problem line (on the reader thread; must not block).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lookahead: float = DEFAULT_LOOKAHEAD,
        in_process: bool = False,
        on_report: Callable[[str], None] | None = None,
        telemetry_hz: float = TELEMETRY_HZ,
    ) -> None:
        if not 0.0 < lookahead <= 2.0:
            raise ValueError(f"lookahead must be in (0, 2] seconds, got {lookahead}")
        self.engine = engine
        self.lookahead = lookahead
        self.in_process = in_process
        self.on_report = on_report
        self.telemetry_hz = telemetry_hz
        self._inbox: deque[tuple[Any, ...]] = deque()
        self._waker = Waker()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None  # the in-process scheduler
        self._stderr: IO[bytes] | None = None
        self._feeder: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._sent: Snapshot | None = None  # what the child has (feeder thread)
        self._stopping = False
        self._need_restart = False
        self._restarts: deque[float] = deque()
        self._telemetry: dict[str, Any] = {}
        self._reports: deque[str] = deque(maxlen=MAX_REPORTS)
        self._recorded: dict[str, deque[Recorded]] = {}
        self._synced = -1
        self._synced_cond = threading.Condition()
        self._unsubscribe: Callable[[], None] | None = None
        self.pid: int | None = None

    # ----- lifecycle (controlling thread) ----------------------------------------

    def start(self) -> Runtime:
        if self._feeder is not None:
            return self
        self._stopping = False
        self._launch()
        self._inbox.append(("reset",))
        self.engine.on_publish_hooks.append(self._on_publish)
        self._unsubscribe = self.engine.registry.subscribe(self._on_register)
        self._feeder = threading.Thread(target=self._feed, name="vt-runtime-feed", daemon=True)
        self._feeder.start()
        self._waker.wake()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._feeder is None:
            return
        self._stopping = True
        self.engine.on_publish_hooks = [h for h in self.engine.on_publish_hooks if h != self._on_publish]
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._waker.wake()
        self._feeder.join(timeout)
        self._feeder = None
        self._shutdown_child(timeout)
        self._sent = None

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._thread is not None and self._thread.is_alive()

    def set_lookahead(self, seconds: float) -> None:
        if not 0.0 < seconds <= 2.0:
            raise ValueError(f"lookahead must be in (0, 2] seconds, got {seconds}")
        self.lookahead = seconds
        self._inbox.append(("config", {"lookahead": seconds}))
        self._waker.wake()

    # ----- readers (any thread) -----------------------------------------------------

    def telemetry(self) -> dict[str, Any]:
        """The scheduler's latest telemetry: beat, playing, values, lateness, counters."""
        return dict(self._telemetry)

    def stats(self) -> dict[str, Any]:
        """Figures for `%vt stats`."""
        t = self._telemetry
        return {
            "scheduler": f"process {self.pid}" if not self.in_process else "thread (in-process)",
            "alive": self.alive,
            "lookahead_ms": round(self.lookahead * 1000.0, 3),
            "synced_version": self._synced,
            "tick_lateness_ms": t.get("tick_lateness_ms"),
            "ahead_ms": t.get("ahead_ms"),
            "ticks": t.get("ticks", 0),
            "events_sent": t.get("events_sent", 0),
            "late_events": t.get("late_events", 0),
            "osc_errors": t.get("osc_errors", 0),
            "midi_errors": t.get("midi_errors", 0),
            "restarts": len(self._restarts),
            "reports": len(self._reports),
        }

    def recorded(self, name: str) -> list[Recorded]:
        """The events recorder `name` kept: `(wall-clock time, beat, value)`, oldest first."""
        return list(self._recorded.get(name, ()))

    def clear_recorded(self, name: str | None = None) -> None:
        if name is None:
            self._recorded.clear()
        else:
            self._recorded.pop(name, None)

    def reports(self) -> list[str]:
        """Problems the scheduler reported (each once), oldest first."""
        return list(self._reports)

    def wait_synced(self, version: int | None = None, timeout: float = 5.0) -> bool:
        """Wait until the scheduler has the patch of `version` (default: the engine's current one)."""
        target = self.engine.version if version is None else version
        with self._synced_cond:
            return self._synced_cond.wait_for(lambda: self._synced >= target, timeout)

    def wait_telemetry(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """Wait for telemetry that satisfies `predicate`; return it (raise TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        with self._synced_cond:
            while not predicate(self._telemetry):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching telemetry within {timeout}s; last: {self._telemetry}")
                self._synced_cond.wait(left)
            return dict(self._telemetry)

    # ----- engine thread / registering thread -------------------------------------------

    def _on_publish(self, snap: Snapshot) -> None:
        """On the engine thread: hand the snapshot over and return (never blocks)."""
        self._inbox.append(("snap", snap))
        self._waker.wake()

    def _on_register(self, cls: type[ModuleType]) -> None:
        """On the registering thread: refuse a class the scheduler could not receive."""
        try:
            payload = ship_class(cls)
        except ShippingError as exc:
            raise TypeError(str(exc)) from None
        self._inbox.append(("types", [payload]))
        self._waker.wake()

    # ----- the child --------------------------------------------------------------

    def _launch(self) -> None:
        parent, child = socket.socketpair()
        try:
            if self.in_process:
                scheduler = Scheduler(child, lookahead=self.lookahead)
                self._thread = threading.Thread(
                    target=self._run_in_thread, args=(scheduler, child), name="vt-scheduler", daemon=True
                )
                self._thread.start()
            else:
                self._stderr = tempfile.TemporaryFile()
                env = dict(os.environ)
                env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "vtkernel.engine.timing.scheduler",
                        str(child.fileno()),
                        repr(self.lookahead),
                    ],
                    pass_fds=(child.fileno(),),
                    close_fds=True,  # the kernel's own fds (session lock, zmq) stay in the kernel
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=self._stderr,  # never the kernel's fd 2: ipykernel forwards that to the notebook
                    env=env,
                    start_new_session=True,  # a kernel interrupt (SIGINT to its group) must not reach the clock
                )
                child.close()
            parent.settimeout(READY_TIMEOUT)
            ready = recv_frame(parent)
            if not ready or ready[0] != "ready":
                raise RuntimeError(f"the scheduler did not start: {self._last_stderr() or ready!r}")
            parent.settimeout(None)
        except BaseException:
            parent.close()
            self._kill_child()
            raise
        self.pid = ready[1]
        self._sock = parent
        self._sent = None
        send_frame(parent, ("config", {"telemetry_hz": self.telemetry_hz, "lookahead": self.lookahead}))
        self._reader = threading.Thread(target=self._read, args=(parent,), name="vt-runtime-read", daemon=True)
        self._reader.start()

    @staticmethod
    def _run_in_thread(scheduler: Scheduler, sock: socket.socket) -> None:
        try:
            scheduler.run()
        finally:
            sock.close()

    def _last_stderr(self) -> str:
        f = self._stderr
        if f is None:
            return ""
        try:
            f.seek(0)
            lines = f.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return lines[-1] if lines else ""

    def _kill_child(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def _shutdown_child(self, timeout: float) -> None:
        sock = self._sock
        if sock is not None:
            try:
                send_frame(sock, ("quit",))
            except OSError:
                pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            self._kill_child()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            self._sock = None
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # ----- feeder thread ----------------------------------------------------------

    def _feed(self) -> None:
        while True:
            self._waker.wait(None)
            self._waker.clear()
            if self._stopping:
                return
            if self._need_restart and not self._restart():
                return
            try:
                self._feed_once()
            except OSError:  # the child died mid-send: the reader sees the end and asks for a restart
                pass

    def _feed_once(self) -> None:
        sock = self._sock
        assert sock is not None
        snaps: list[Snapshot] = []
        inbox = self._inbox
        while inbox:
            item = inbox.popleft()
            kind = item[0]
            if kind == "snap":
                snaps.append(item[1])
                continue
            self._send_snaps(sock, snaps)
            snaps = []
            if kind == "reset":
                self._send_reset(sock)
            elif kind == "types":
                send_frame(sock, ("types", item[1]))
            elif kind == "config":
                send_frame(sock, ("config", item[1]))
        self._send_snaps(sock, snaps)

    def _send_reset(self, sock: socket.socket) -> None:
        payloads = []
        for cls in self.engine.registry.types().values():
            try:
                payloads.append(ship_class(cls))
            except ShippingError as exc:
                self._report(str(exc))
        send_frame(sock, ("types", payloads))
        snap = self.engine.snapshot
        send_frame(sock, ("reset", snap.version, snap.doc.to_json()))
        self._sent = snap

    def _send_snaps(self, sock: socket.socket, snaps: list[Snapshot]) -> None:
        sent = self._sent
        if sent is None:
            return
        snaps = [s for s in snaps if s.version > sent.version and s.change is not None]
        if not snaps:
            return
        newest = snaps[-1]
        latest: dict[Path, tuple[int, str | None]] = {}
        for i, snap in enumerate(snaps):
            change = snap.change
            assert change is not None
            quantize = dict(getattr(change, "quantize", ()) or ())
            for path in change.paths:
                latest[path] = (i, quantize.get(path))
        ops = render_ops(sent.doc, newest.doc, latest)
        if any(q for _, q in latest.values()):
            annotated = [(op, _quantize_of(op["path"], latest)) for op in ops]
        else:
            annotated = [(op, None) for op in ops]
        send_frame(sock, ("patch", newest.version, annotated))
        self._sent = newest

    def _restart(self) -> bool:
        self._need_restart = False
        code = self._proc.poll() if self._proc is not None else None
        why = self._last_stderr()
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW:
            self._restarts.popleft()
        detail = f" (exit code {code}{': ' + why if why else ''})" if code is not None else ""
        if len(self._restarts) >= MAX_RESTARTS:
            self._report(
                f"the scheduler process exited{detail} {MAX_RESTARTS} times in a minute; not restarting it (Runtime.start() after a fix)"
            )
            return False
        self._restarts.append(now)
        self._report(f"the scheduler process exited{detail}; restarting it")
        self._shutdown_child(2.0)
        self._launch()
        self._inbox.appendleft(("reset",))
        return True

    # ----- reader thread --------------------------------------------------------------

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                message = recv_frame(sock)
            except (OSError, ValueError, EOFError):
                message = None
            if message is None:
                if not self._stopping:
                    self._need_restart = True
                    self._waker.wake()
                return
            kind = message[0]
            if kind == "telemetry":
                self._take_recorded(message[2])
                with self._synced_cond:
                    self._telemetry = message[1]
                    self._synced_cond.notify_all()
            elif kind == "synced":
                with self._synced_cond:
                    self._synced = max(self._synced, message[1])
                    self._synced_cond.notify_all()
            elif kind == "report":
                self._report(message[1])

    def _report(self, line: str) -> None:
        self._reports.append(line)
        if self.on_report is not None:
            try:
                self.on_report(line)
            except Exception:  # a reporting callback must not kill the reader
                pass

    def _take_recorded(self, recorded: dict[str, list[Recorded]]) -> None:
        if not recorded:
            return
        modules = self.engine.snapshot.doc.modules
        for name, events in recorded.items():
            module = modules.get(name)
            size = module.params.get("size", RECORDER_DEFAULT_SIZE) if module is not None else RECORDER_DEFAULT_SIZE
            kept = self._recorded.get(name)
            if kept is None or kept.maxlen != size:
                kept = self._recorded[name] = deque(kept or (), maxlen=size)
            kept.extend(events)


def _quantize_of(pointer: str, latest: dict[Path, tuple[int, str | None]]) -> str | None:
    """The quantization of an op: that of the latest version that touched its path (or a path inside it)."""
    segs = decode_pointer(pointer)
    if segs[0] == "connections":
        segs = ("connections",)  # `/connections/7` is an index; the engine's paths name keys
    best, quantize = -1, None
    for path, (i, q) in latest.items():
        n = min(len(path), len(segs))
        if path[:n] == segs[:n] and i > best:
            best, quantize = i, q
    return quantize
