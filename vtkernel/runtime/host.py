"""The runtime's host: runs the scheduler process for an engine and keeps what it reports.

The engine thread stays the only authority on state; the scheduler
(`vtkernel.engine.timing.scheduler`, in a child process) only *renders* the
patch. The runtime feeds it incrementally:

- an engine `Signal` wakes the feeder after a publish (an eventfd write: the
  engine thread never waits and runs none of our code);
- the feeder thread takes the versions since the one the child has
  (`Engine.history_since`) and sends them as one JSON Patch
  (`render_ops(old, new, changed paths)`: O(change), never the whole
  document) with each op's quantization (`Change.quantize`);
  the whole document goes only at start and after a restart;
- module classes go when they are registered (`Registry.subscribe`), by
  reference when the child can import them and by value otherwise (see
  `vtkernel.engine.timing.shipping`);
- the reader thread keeps the latest telemetry, recorded events and reports.

If the kernel's GIL is held (a long C call), the feeder and the reader stop,
but the child keeps the clock and its copy of the patch; they catch up after.

Keeping the child alive (see `vtkernel.engine.timing.guard` for what the
child does itself):

- `start()` returns at once; the feeder thread spawns the child, so start-up
  never waits for it (`wait_ready` does). The feeder is long-lived, which is
  what Linux's parent-death signal needs: the child dies with it.
- The child stamps each tick's start in a shared status page. The monitor
  thread `vt-runtime-watch` kills a child whose tick has run longer than
  `STUCK_SECONDS` (user code that no signal could interrupt: a C call that
  holds the GIL, code that swallows every exception), naming the module
  that was running from the same page. `alive` is False from then on.
- A child that exits or is killed is restarted with the whole patch, the
  transport's anchors (so it resumes the beat instead of starting at 0) and
  the modules to keep muted (the culprit included). At most `MAX_RESTARTS`
  per `RESTART_WINDOW`; the count starts again after `HEALTHY_SECONDS` of
  healthy running. Past the limit it waits for `restart()` (`%vt restart`)
  or an edit of the patch.

Threads: `start` may be called again while started (it then only waits
for the child): the kernel calls `start(wait=False)` on its main thread (a
failed start is reported by the feeder, once); `stop` is called once, by the kernel's main thread at shutdown. The engine thread
only calls the signal's `schedule` (`_on_publish`). `vt-runtime-feed` owns
the child process, the socket's write side and the copy of what the child
has; `vt-runtime-read` owns its read side; `vt-runtime-watch` only reads
the status page and may kill the child.
`telemetry`, `stats`, `recorded`, `reports`, `wait_synced`, `wait_ready`,
`set_lookahead`, `configure` and `restart` may be called from any thread
(the kernel calls them from cells, the hub and its `vt-verbs` worker).
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

from vtkernel import handoff
from vtkernel.engine.delta import render_ops
from vtkernel.engine.document import Path, Snapshot
from vtkernel.engine.engine import Engine, Signal
from vtkernel.engine.platform import USE_INHERITED_FDS, WINDOWS
from vtkernel.engine.queue import Waker
from vtkernel.engine.schema import ModuleType
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.guard import DEFAULT_BUDGET, DEFAULT_MEMORY_MB, StatusPage
from vtkernel.engine.timing.outputs import Recorded
from vtkernel.engine.timing.scheduler import DEFAULT_LOOKAHEAD, TELEMETRY_HZ, Scheduler
from vtkernel.engine.timing.shipping import ShippingError, ship_class
from vtkernel.engine.timing.wire import recv_frame, send_frame
from vtkernel.handoff import PAGE_SIZE, Started
from vtkernel.jsonpatch import decode_pointer
from vtkernel.protocol import Play, SetBpm, Stop

READY_TIMEOUT = 30.0
MAX_RESTARTS = 3  # per RESTART_WINDOW; a scheduler that keeps dying is reported, not respawned forever
RESTART_WINDOW = 60.0
HEALTHY_SECONDS = 30.0  # a child that ran this long without trouble resets the restart count
STUCK_SECONDS = 2.0  # a tick running longer than this means the child is stuck: kill and restart it
MONITOR_PERIOD = 0.1
MAX_REPORTS = 200
RECORDER_DEFAULT_SIZE = 1000
RECORDED_SYNC_SECONDS = 1.0  # `recorded` waits this long at most for the scheduler to catch up



class Runtime:
    """Runs the scheduler for `engine`. See the module docstring for threads and data flow.

    `lookahead`: how far ahead of its time each event is sent (seconds).
    `in_process`: run the scheduler on a thread of this process instead (for
    comparison only: a C call holding the GIL then stops the clock too).
    `on_report`: called with each problem line (on the reader thread; must not block).
    `priority`: ask the OS for real-time priority for the child (see `guard.request_priority`).
    `budget`: seconds one call of user code may take in the child; `memory_mb`: how much
    the child's address space may grow (0: no cap).
    `adopt`: a scheduler process already started with the default options (a
    `vtkernel.handoff.Started`, from `vtkernel.kernel.prespawn`), used as the first child.
    `spare`: keep a second scheduler process started and waiting, so a restart (a crash, a
    stuck child, `restart()`) takes it at once instead of starting one cold (~0.3-0.6 s here).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lookahead: float = DEFAULT_LOOKAHEAD,
        in_process: bool = False,
        on_report: Callable[[str], None] | None = None,
        telemetry_hz: float = TELEMETRY_HZ,
        priority: bool = True,
        budget: float = DEFAULT_BUDGET,
        memory_mb: int = DEFAULT_MEMORY_MB,
        stuck_seconds: float = STUCK_SECONDS,
        adopt: Started | None = None,
        spare: bool = False,
    ) -> None:
        if not 0.0 < lookahead <= 2.0:
            raise ValueError(f"lookahead must be in (0, 2] seconds, got {lookahead}")
        self.engine = engine
        self.lookahead = lookahead
        self.in_process = in_process
        self.on_report = on_report
        self.telemetry_hz = telemetry_hz
        self.priority = priority
        self.budget = budget
        self.memory_mb = memory_mb
        self.stuck_seconds = stuck_seconds
        self._wall = WallClock.now()  # one mapping for every child: timetags stay continuous across restarts
        defaults = priority and budget == DEFAULT_BUDGET and memory_mb == DEFAULT_MEMORY_MB
        if adopt is not None and (in_process or not defaults):
            adopt.discard()  # started with other options than these
            adopt = None
        self._adopt = adopt
        self.spare = spare
        self._spare: Started | None = None
        self._inbox: deque[tuple[Any, ...]] = deque()
        self._waker = Waker()
        self._signal: Signal | None = None  # set by the engine after each publish
        self._rearm: Callable[[], None] | None = None  # the signal's pending run: called on the feeder
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
        self._gen = 0  # which child the reader threads belong to
        self._reset_gen = 0  # the child that has been sent the patch
        self._ready = threading.Event()
        self._start_error: str | None = None
        self._page: StatusPage | None = None
        self._launched_at = 0.0
        self._stuck = False
        self._kill_reason: str | None = None
        self._given_up = False
        self._given_up_version = 0
        self._retry_after_edit = False
        self._restart_requested = False
        self._restarting = False
        self._transport: dict[str, float] | None = None  # the last the child said (telemetry, "bye")
        self._sticky: dict[str, str] = {}  # modules the child keeps muted (telemetry)
        self._culprits: dict[str, str] = {}  # modules to mute in the next child
        self._monitor: threading.Thread | None = None
        self._telemetry: dict[str, Any] = {}
        self._link_followed: tuple[int, float] | None = None  # (version, tempo) last followed from Link
        self._link_transport_followed: tuple[int, bool] | None = None  # (version, playing) likewise
        self._reports: deque[str] = deque(maxlen=MAX_REPORTS)
        self._recorded: dict[str, deque[Recorded]] = {}
        self._synced = -1
        self._synced_cond = threading.Condition()
        self._unsubscribe: Callable[[], None] | None = None
        self.pid: int | None = None

    # ----- lifecycle (controlling thread) ----------------------------------------

    def start(self, wait: bool = True) -> Runtime:
        """Start the scheduler. With `wait`, return once it runs (raise RuntimeError if it cannot start)."""
        if self._feeder is None:
            self._stopping = False
            self._start_error = None
            self._given_up = False
            self._transport = None
            self._restarts.clear()
            self._inbox.append(("reset",))
            self._signal = self.engine.add_signal(Signal(_nothing, schedule=self._on_publish))
            self._unsubscribe = self.engine.registry.subscribe(self._on_register)
            self._feeder = threading.Thread(target=self._feed, name="vt-runtime-feed", daemon=True)
            self._feeder.start()
            if not self.in_process:
                self._monitor = threading.Thread(target=self._watch, name="vt-runtime-watch", daemon=True)
                self._monitor.start()
        if wait and not self.wait_ready(READY_TIMEOUT):
            raise RuntimeError(f"the scheduler did not start: {self._start_error or 'no answer'}")
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until a scheduler runs (True), or it failed to start / `timeout` passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready.is_set():
            if self._start_error is not None or self._feeder is None:
                return False
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._ready.wait(0.05 if left is None else min(0.05, left))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        if self._feeder is None:
            return
        self._stopping = True
        if self._signal is not None:
            self.engine.remove_signal(self._signal)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._waker.wake()
        self._feeder.join(timeout + 1.0)  # the feeder shuts the child down on its way out
        self._feeder = None
        if self._monitor is not None:
            self._monitor.join(1.0)
            self._monitor = None
        self._shutdown_child(timeout)  # in case the feeder could not
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.discard()
        self._sent = None

    def restart(self, timeout: float = READY_TIMEOUT) -> str:
        """Restart the scheduler process now (`%vt restart`), keeping the transport's beat.

        Also brings it back after the restart limit. Returns one line for the user.
        """
        if self._feeder is None:
            raise RuntimeError("the scheduler is not started")
        gen = self._gen
        self._restart_requested = True
        self._waker.wake()
        deadline = time.monotonic() + timeout
        while not (self._gen > gen and self._ready.is_set()):
            if time.monotonic() > deadline or self._feeder is None:
                raise RuntimeError(f"the scheduler did not restart: {self._start_error or 'no answer'}")
            time.sleep(0.01)
        self.wait_synced(timeout=max(0.1, deadline - time.monotonic()))
        t = self._transport
        where = f", the transport continues at beat {t['horizon']:.2f}" if t else ""
        return f"scheduler restarted (process {self.pid}){where}"

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while a scheduler runs and answers: started, not exited, not stuck, not given up."""
        if self.in_process:
            return self._thread is not None and self._thread.is_alive() and self._ready.is_set()
        proc = self._proc
        return proc is not None and proc.poll() is None and self._ready.is_set() and not self._stuck

    @property
    def state(self) -> str:
        """`starting`, `running`, `stuck`, `restarting`, `given up` or `stopped`, in one word or two."""
        if self._feeder is None:
            return "stopped"
        if self._given_up:
            return "given up"
        if self._stuck:
            return "stuck"
        if self.alive:
            return "running"
        return "restarting" if self._gen > 1 else "starting"

    def set_lookahead(self, seconds: float) -> None:
        if not 0.0 < seconds <= 2.0:
            raise ValueError(f"lookahead must be in (0, 2] seconds, got {seconds}")
        self.lookahead = seconds
        self._inbox.append(("config", {"lookahead": seconds}))
        self._waker.wake()

    def configure(self, **config: Any) -> None:
        """Send scheduler settings (`budget`, `midi_spin`, `telemetry_hz`); they hold until its next restart."""
        self._inbox.append(("config", dict(config)))
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
            "state": self.state,
            "alive": self.alive,
            "priority": t.get("priority", "unknown"),
            "link": t.get("link"),  # peers, the session's tempo, our bar phase against the session's (ms)
            "lookahead_ms": round(self.lookahead * 1000.0, 3),
            "synced_version": self._synced,
            "tick_lateness_ms": t.get("tick_lateness_ms"),
            "ahead_ms": t.get("ahead_ms"),
            "ticks": t.get("ticks", 0),
            "events_sent": t.get("events_sent", 0),
            "late_events": t.get("late_events", 0),
            "osc_errors": t.get("osc_errors", 0),
            "midi_errors": t.get("midi_errors", 0),
            "midi_send_lateness_ms": t.get("midi_send_lateness_ms"),
            "muted": sorted(t.get("muted") or ()),
            "memory_limit": t.get("memory_limit", "unknown"),
            "restarts": len(self._restarts),
            "reports": len(self._reports),
        }

    def recorded(self, name: str) -> list[Recorded]:
        """The events recorder `name` kept: `(wall-clock time, beat, value)`, oldest first.

        First waits (at most `RECORDED_SYNC_SECONDS`) for the scheduler to hold the
        engine's current version: it sends what it recorded before saying so, so
        after `vt.stop()` this has every event that was sent. A scheduler that does
        not answer (stopped, restarting) gets what has arrived. Any thread but the
        reader's (`vt-runtime-read`), which is the one that marks versions synced.
        """
        if self._feeder is not None:
            self.wait_synced(timeout=RECORDED_SYNC_SECONDS)
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

    def _on_publish(self, run: Callable[[], None]) -> None:
        """The signal's `schedule`, on the engine thread: keep its run for the feeder and wake it (never blocks)."""
        self._rearm = run
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

    def _spawn(self) -> Started:
        """Feeder thread: start a scheduler process (it says hello on its socket when it is ready)."""
        if not USE_INHERITED_FDS:
            return self._spawn_portable()
        parent, child = socket.socketpair()
        page_fd = StatusPage.new_fd()
        stderr = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vtkernel.engine.timing.scheduler",
                    str(child.fileno()),
                    *self._child_args(f"page={page_fd}"),
                ],
                pass_fds=(child.fileno(), page_fd),
                close_fds=True,  # the kernel's own fds (session lock, zmq) stay in the kernel
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,  # never the kernel's fd 2: ipykernel forwards that to the notebook
                env=handoff.child_env(),
                start_new_session=True,  # a kernel interrupt (SIGINT to its group) must not reach the clock
            )
        except BaseException:
            parent.close()
            os.close(page_fd)
            stderr.close()
            raise
        finally:
            child.close()
        return Started(proc, parent, page_fd, stderr)

    def _child_args(self, page: str) -> list[str]:
        return [
            repr(self.lookahead),
            page,
            f"wall={self._wall.offset!r}",
            f"parent={os.getpid()}",
            f"priority={1 if self.priority else 0}",
            f"memory_mb={self.memory_mb}",
            f"budget={self.budget!r}",
        ]

    def _spawn_portable(self) -> Started:
        """Where descriptors cannot be inherited (Windows; VTKERNEL_PORTABLE=1): the child connects back.

        The parent listens on loopback; the child, told the port on its command
        line and a one-time token in its environment (never on the command
        line, which other users can read), connects and sends the token first;
        anything else that connects is refused (`vtkernel.handoff`). The status
        page is a named temporary file both processes map; its name is removed
        once the child has it open (POSIX; Windows removes it when the last
        handle closes). The connection is accepted, and the hello awaited, when
        the child is taken (`_launch`, on the feeder).
        """
        listener, token = handoff.listen()
        page_fd, page_path = tempfile.mkstemp(prefix="vt-scheduler-", suffix=".page")
        os.ftruncate(page_fd, PAGE_SIZE)
        stderr = tempfile.TemporaryFile()
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # Windows: the kernel's Ctrl+C stays there
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vtkernel.engine.timing.scheduler",
                    handoff.address(listener),
                    *self._child_args(f"page_path={page_path}"),
                ],
                close_fds=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=handoff.child_env(**{handoff.TOKEN_ENV: token}),
                start_new_session=not WINDOWS,
                creationflags=flags,
            )
        except BaseException:
            listener.close()
            os.close(page_fd)
            stderr.close()
            handoff.unlink(page_path)
            raise
        # Accepted (its token checked) when it is taken (`Started.sock` in `_launch`), not here:
        # the warm spare starts right after the first child, and waiting here for its interpreter
        # to start held the feeder for ~0.2 s, so a fresh kernel's first play was that late.
        return Started(proc, None, page_fd, stderr, (listener, token, page_path))

    def _launch(self) -> None:
        """Feeder thread: start a child (or take the adopted one, or the warm spare) and wait for its hello.

        Raises if it does not start.
        """
        self._gen += 1
        gen = self._gen
        self._ready.clear()
        self._stuck = False
        self._kill_reason = None
        parent: socket.socket | None = None
        try:
            if self.in_process:
                parent, child = socket.socketpair()
                scheduler = Scheduler(child, lookahead=self.lookahead, wall=self._wall, budget=self.budget)
                self._thread = threading.Thread(
                    target=self._run_in_thread, args=(scheduler, child), name="vt-scheduler", daemon=True
                )
                self._thread.start()
            else:
                started = self._adopt or self._take_spare() or self._spawn()
                self._adopt = None
                self._proc, self._stderr, parent = started.proc, started.stderr, started.sock
                self._page = StatusPage(started.page_fd)
                os.close(started.page_fd)
            parent.settimeout(READY_TIMEOUT)
            try:
                ready = recv_frame(parent)
            except OSError:
                ready = None
            if not ready or ready[0] != "ready":
                raise RuntimeError(f"the scheduler did not start: {self._last_stderr() or ready!r}")
            parent.settimeout(None)
        except BaseException:
            if parent is not None:
                parent.close()
            self._kill_child()
            raise
        self.pid = ready[1]
        if len(ready) > 2:  # the child's wall-clock offset (an adopted child made its own): later ones share it
            self._wall = WallClock(float(ready[2]))
        self._sock = parent
        self._sent = None
        self._launched_at = time.monotonic()
        send_frame(parent, ("config", {"telemetry_hz": self.telemetry_hz, "lookahead": self.lookahead}))
        self._reader = threading.Thread(target=self._read, args=(parent, gen), name="vt-runtime-read", daemon=True)
        self._reader.start()
        self._ready.set()
        if self.spare and self._spare is None:
            try:
                self._spare = self._spawn()  # warm, waiting: a restart takes it instead of starting cold
            except Exception:
                self._spare = None

    def _take_spare(self) -> Started | None:
        spare, self._spare = self._spare, None
        if spare is not None and spare.proc.poll() is not None:  # it died meanwhile
            spare.discard()
            return None
        return spare

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
        if self._page is not None:
            self._page.close()
            self._page = None

    def _shutdown_child(self, timeout: float) -> None:
        self._shutdown_handles(self._detach(), timeout)

    def _detach(self) -> tuple[Any, ...]:
        """Take the current child's handles (the next `_launch` starts a new one beside it)."""
        self._ready.clear()
        handles = (self._proc, self._thread, self._sock, self._reader, self._stderr, self._page)
        self._proc = self._thread = self._sock = self._reader = self._stderr = self._page = None
        return handles

    @staticmethod
    def _shutdown_handles(handles: tuple[Any, ...], timeout: float) -> None:
        """Ask a child to quit (it answers "bye" with its transport), wait, then kill what is left."""
        proc, thread, sock, reader, stderr, page = handles
        if sock is not None:
            try:
                send_frame(sock, ("quit",))
            except OSError:
                pass
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if thread is not None:
            thread.join(timeout)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if reader is not None:
            reader.join(timeout)
        if stderr is not None:
            stderr.close()
        if page is not None:
            page.close()

    # ----- feeder thread ----------------------------------------------------------

    def _feed(self) -> None:
        try:
            try:
                self._launch()
            except Exception as exc:
                self._give_up(f"the scheduler did not start: {exc}; run %vt restart to try again", str(exc))
            while not self._stopping:
                self._waker.clear()
                rearm, self._rearm = self._rearm, None
                if rearm is not None:
                    rearm()  # before reading the history: a publish from now on wakes us again
                if self._given_up and not self._restart_requested and self.engine.version > self._given_up_version:
                    self._need_restart = True  # the patch was edited since: the cause may be gone, try once more
                    self._retry_after_edit = True
                if self._restart_requested:
                    self._restart(manual=True)
                elif self._need_restart:
                    self._restart()
                if self._sock is not None and not self._need_restart and not self._given_up:
                    try:
                        self._feed_once()
                    except OSError:  # the child died mid-send: the reader sees the end and asks for a restart
                        pass
                self._waker.wait(None)
        finally:
            self._shutdown_child(2.0)
            self._sent = None

    def _give_up(self, line: str, error: str | None = None) -> None:
        self._report(line)
        self._start_error = error
        self._given_up = True
        self._given_up_version = self.engine.version

    def _feed_once(self) -> None:
        sock = self._sock
        assert sock is not None
        # The versions are read before the inbox: every class they use was registered,
        # and so queued as "types", before they were published.
        sent = self._sent
        snaps = None if sent is None else self.engine.history_since(sent.version)
        inbox = self._inbox
        while inbox:
            item = inbox.popleft()
            kind = item[0]
            if kind == "reset":
                self._send_reset(sock)
            elif kind == "types":
                send_frame(sock, ("types", item[1]))
            elif kind == "config":
                send_frame(sock, ("config", item[1]))
        self._send_snaps(sock, snaps)

    def _send_reset(self, sock: socket.socket) -> None:
        """The whole patch, with where the transport is and what stays muted (after a restart)."""
        payloads = []
        for cls in self.engine.registry.types().values():
            try:
                payloads.append(ship_class(cls))
            except ShippingError as exc:
                self._report(str(exc))
        send_frame(sock, ("types", payloads))
        snap = self.engine.snapshot
        muted = dict(self._sticky)
        muted.update(self._culprits)
        self._culprits.clear()
        extra = {"resume": self._transport, "muted": muted}
        self._reset_gen = self._gen
        send_frame(sock, ("reset", snap.version, snap.doc.to_json(), extra))
        self._sent = snap

    def _send_snaps(self, sock: socket.socket, snaps: list[Snapshot] | None) -> None:
        """The versions after the child's as one patch; `None` (the history ring lost the child's version): every top-level part, unquantized."""
        sent = self._sent
        if sent is None:
            return
        if snaps is None:
            newest = self.engine.snapshot
            if newest.version > sent.version:
                whole: dict[Path, tuple[int, str | None]] = {("clock",): (0, None), ("modules",): (0, None), ("connections",): (0, None)}
                send_frame(sock, ("patch", newest.version, [(op, None) for op in render_ops(sent.doc, newest.doc, whole)]))
                self._sent = newest
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

    def _restart(self, manual: bool = False) -> None:
        """Feeder thread: start a new child with the patch, the transport and what stays muted."""
        self._need_restart = False
        self._restart_requested = False
        retry, self._retry_after_edit = self._retry_after_edit, False
        now = time.monotonic()
        if manual or (self._launched_at and now - self._launched_at >= HEALTHY_SECONDS):
            self._restarts.clear()  # the last one ran long and well (or the user asked): the cause is gone
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW:
            self._restarts.popleft()
        if not manual:
            code = self._proc.poll() if self._proc is not None else None
            why = self._kill_reason or self._last_stderr()
            detail = f" (exit code {code}{': ' + why if why else ''})" if code is not None else ""
            running = self._page.running() if self._page is not None else ""
            if running and code is not None and code != -9 and running not in self._culprits:
                # It died inside a module's code (os._exit, a crash in a C extension): keep that one muted.
                self._culprits[running] = (
                    f"{running}: the scheduler process died while its code ran{detail}; "
                    "the module is muted until it is edited"
                )
                self._report(self._culprits[running])
            if len(self._restarts) >= MAX_RESTARTS and not retry:
                self._shutdown_child(2.0)
                self._give_up(
                    f"the scheduler process exited{detail} {MAX_RESTARTS} times in a minute; not restarting it: "
                    "run %vt restart (or edit the patch) once the cause is fixed"
                )
                return
            self._restarts.append(now)
            self._report(f"the scheduler process exited{detail}; restarting it")
        # A running child keeps playing until the new one is ready; then it quits and says where its
        # transport got to ("bye"), and the new one carries on from there: no gap, no repeat.
        old = self._detach()
        self._restarting = True
        try:
            if old[0] is not None and old[0].poll() is not None:  # already dead: nothing to hand over
                self._shutdown_handles(old, 2.0)
                old = (None,) * 6
            self._given_up = False
            try:
                self._launch()
            except Exception as exc:
                self._give_up(f"the scheduler did not start: {exc}; run %vt restart to try again", str(exc))
                return
            finally:
                self._shutdown_handles(old, 2.0)
        finally:
            self._restarting = False
        self._start_error = None
        self._inbox.appendleft(("reset",))

    # ----- monitor thread -------------------------------------------------------------

    def _watch(self) -> None:
        """`vt-runtime-watch`: kill a child whose tick never ends (see the module docstring)."""
        while not self._stopping:
            time.sleep(MONITOR_PERIOD)
            page, proc = self._page, self._proc
            if page is None or proc is None or self._stuck or not self._ready.is_set():
                continue
            try:
                started = page.tick_started()
                running = page.running()
            except (ValueError, OSError):  # the page was closed meanwhile
                continue
            age = time.monotonic() - started if started else 0.0
            if age <= self.stuck_seconds:
                continue
            self._stuck = True
            self._ready.clear()
            if running:
                why = (
                    f"{running}: its code did not return for {age:.1f} s and could not be interrupted "
                    "(a C call holding the GIL, or code that swallows every exception); "
                    "the scheduler was restarted and the module is muted until it is edited"
                )
                self._culprits[running] = why
                self._kill_reason = f"killed: {running} was stuck"
                self._report(why)
            else:
                self._kill_reason = f"killed: a tick ran for {age:.1f} s"
            try:
                proc.kill()
            except OSError:
                pass

    # ----- reader thread --------------------------------------------------------------

    def _read(self, sock: socket.socket, gen: int) -> None:
        while True:
            try:
                message = recv_frame(sock)
            except (OSError, ValueError, EOFError):
                message = None
            if message is None:
                if not self._stopping and not self._restarting and gen == self._gen:
                    self._need_restart = True
                    self._waker.wake()
                return
            kind = message[0]
            if kind == "telemetry":
                self._take_recorded(message[2])
                telemetry = message[1]
                if gen == self._reset_gen:  # (a new child's first telemetry, before its reset, knows nothing)
                    self._transport = telemetry.get("transport")
                self._sticky = telemetry.get("sticky") or {}
                with self._synced_cond:
                    self._telemetry = telemetry
                    self._synced_cond.notify_all()
                self._follow_link_tempo(telemetry)
                self._follow_link_transport(telemetry)
            elif kind == "bye":
                self._transport = message[1]
            elif kind == "recorded":
                self._take_recorded(message[1])
            elif kind == "synced":
                with self._synced_cond:
                    self._synced = max(self._synced, message[1])
                    self._synced_cond.notify_all()
            elif kind == "report":
                self._report(message[1])

    def _follow_link_tempo(self, telemetry: dict[str, Any]) -> None:
        """Reader thread: another Link peer changed the session's tempo; the document follows (origin `link`).

        Only when the child has applied the newest version, so a tempo a shell
        has just set (and the child is about to propose) is never undone.
        """
        link = telemetry.get("link")
        if not isinstance(link, dict) or "tempo" not in link:
            return
        snap = self.engine.snapshot
        clock = snap.doc.clock
        # Link keeps a tempo as whole microseconds per beat (133 reads back as 132.999947):
        # to a thousandth of a bpm, which is what a person types, it is the tempo they set.
        tempo = round(float(link["tempo"]), 3)
        if not clock.link or telemetry.get("version") != snap.version or abs(tempo - clock.bpm) < 0.0005:
            return
        if self._link_followed == (snap.version, tempo):
            return  # already asked for this one
        self._link_followed = (snap.version, tempo)
        self.engine.submit(SetBpm(bpm=tempo), origin="link")

    def _follow_link_transport(self, telemetry: dict[str, Any]) -> None:
        """Reader thread: with start/stop sync on, another peer's play or stop is ours too (origin `link`)."""
        link = telemetry.get("link")
        if not isinstance(link, dict) or not isinstance(link.get("playing"), bool):
            return
        snap = self.engine.snapshot
        clock = snap.doc.clock
        playing = link["playing"]
        if not clock.link_sync or telemetry.get("version") != snap.version or playing == clock.playing:
            return
        if self._link_transport_followed == (snap.version, playing):
            return
        self._link_transport_followed = (snap.version, playing)
        self.engine.submit(Play() if playing else Stop(), origin="link")

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


def _nothing() -> None:
    """The signal's callback: the feeder reads the history itself once woken."""
