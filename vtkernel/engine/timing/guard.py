"""User code in the scheduler process: validated, and bounded in time and size.

A module type's runtime methods (`pattern`, `signal`, `process`, `emit`, and
the class methods `steps_per_beat`, `beats_per_cycle`) are user code that
runs inside the clock. The scheduler never calls them directly: `Guard.wrap`
gives each class a subclass whose methods

- mark the call (`Guard.current`, and the module's name in the shared
  status page, so the parent can name a module that froze the process);
- validate what comes back before it reaches the clock: every onset is a
  `(beat, value[, duration])` with a finite real beat (NaN, inf or a string
  would break the tempo map and the event sort), beats outside the window
  are dropped, at most `max_events` onsets per call (an endless generator
  is cut off after that many), `steps_per_beat` an int in 1..1024,
  `beats_per_cycle` a finite positive number, and what a sink hands to the
  outputs (a MIDI time, an OSC timetag) is checked by `CheckedOutputs`;
- are interrupted when they run past the time budget: the `Watchdog`
  thread sends the main thread a signal whose handler raises
  `UserCodeTimeout` (an `Exception`, so the renderer's per-module guard
  mutes that module with one line) and, if the code swallows it,
  `UserCodeHung` (a `BaseException`, caught by the scheduler loop).

What no signal can interrupt (a C call that holds the GIL, code that
swallows every exception) is caught from outside: each tick stamps its start
in the status page, the parent's runtime sees a tick older than its limit,
reads the module's name from the page, kills the process and restarts it
with that module muted (`vtkernel.runtime.host`).

The `Watchdog` also ends the process when its parent dies (the parent's
death is seen even while the main thread is stuck: `PR_SET_PDEATHSIG` on
Linux, and the watchdog's `os.getppid()` check everywhere).

Memory: `limit_memory` caps the address space (RLIMIT_AS) at what the
process has at start plus a budget, so a module that allocates gigabytes
gets a `MemoryError` in its own call (and is muted) instead of taking the
machine down.

Threads: `Guard` is written by the scheduler's main thread (`enter`/
`leave` in the wrappers) and read by the watchdog thread; a single
attribute store (`current`) is what the two share. The status page is
written by the main thread and read by the parent process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import mmap
import numbers
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from vtkernel.engine.schema import ModuleType
from vtkernel.engine.timing.clock import BEAT_EPSILON
from vtkernel.handoff import PAGE_SIZE as PAGE_SIZE

DEFAULT_BUDGET = 0.2  # seconds one call of user code may take before it is interrupted
ESCALATE_AFTER = 0.2  # seconds after an interrupt that was swallowed before a harder one
DEFAULT_MAX_EVENTS = 4096  # onsets one pattern() call may return (one window is milliseconds long)
MAX_PROCESS_VALUES = 256  # values one process() call may return
DEFAULT_MEMORY_MB = 1024  # address space a scheduler may grow by, beyond what it has at start
INTERRUPT_SIGNAL = getattr(signal, "SIGUSR2", None)

# The status page shared with the parent (an mmap of a memfd); its size is the hand-off's.
TICK_AT = 0  # double: monotonic time the current tick began; 0.0 between ticks
NAME_AT = 8  # the module whose code runs now (utf-8, NUL-padded); first byte 0: none
NAME_LEN = 120
_TICK = struct.Struct("<d")


class UserCodeTimeout(Exception):
    """Raised in user code that ran past its time budget (the renderer mutes the module)."""


class UserCodeHung(BaseException):
    """Raised when user code swallowed `UserCodeTimeout`; the scheduler loop mutes the module."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class StatusPage:
    """The shared page: the tick's start and the running module's name. See the module docstring."""

    def __init__(self, fd: int) -> None:
        self.map = mmap.mmap(fd, PAGE_SIZE)

    @classmethod
    def create(cls) -> tuple[StatusPage, int]:
        """A new page and its fd (to pass to the child)."""
        fd = cls.new_fd()
        return cls(fd), fd

    @staticmethod
    def new_fd() -> int:
        """A file descriptor for a new, zeroed page (a memfd, or an unlinked temporary file)."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("vt-scheduler-status", 0)
        else:  # pragma: no cover - macOS
            import tempfile

            f = tempfile.TemporaryFile()
            fd = os.dup(f.fileno())
            f.close()
        os.ftruncate(fd, PAGE_SIZE)
        return fd

    def tick_started(self) -> float:
        return float(_TICK.unpack_from(self.map, TICK_AT)[0])

    def running(self) -> str:
        raw = bytes(self.map[NAME_AT : NAME_AT + NAME_LEN])
        return raw.split(b"\0", 1)[0].decode(errors="replace")

    def set_tick(self, t: float) -> None:
        _TICK.pack_into(self.map, TICK_AT, t)

    def clear(self) -> None:
        self.map[0:PAGE_SIZE] = bytes(PAGE_SIZE)

    def close(self) -> None:
        try:
            self.map.close()
        except (BufferError, ValueError):
            pass


class Guard:
    """Wraps module classes so their code is marked, validated and interruptible. Owner: the main thread."""

    def __init__(
        self,
        report: Callable[[str, str, str], None],
        page: StatusPage | None = None,
        *,
        budget: float = DEFAULT_BUDGET,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self.report = report
        self.page = page
        self.budget = budget
        self.max_events = max_events
        self.current: tuple[int, str, float] | None = None  # (call id, module, started) while user code runs
        self.calls = 0
        self.fire_id = 0  # the call the watchdog interrupted
        self.strikes = 0
        self.memory_note = "it allocated past the scheduler process's memory cap"  # the scheduler adds the figure
        self.faults: dict[str, str] = {}  # module -> why, for what the watchdog stopped (the scheduler makes it stick)
        self._tags: dict[str, bytes] = {}
        self._checked: dict[int, CheckedOutputs] = {}
        self._wrapped: dict[type[ModuleType], type[ModuleType]] = {}

    # ----- marking ----------------------------------------------------------

    def enter(self, name: str) -> None:
        self.calls += 1
        self.current = (self.calls, name, time.monotonic())
        page = self.page
        if page is not None:
            tag = self._tags.get(name)
            if tag is None:
                tag = self._tags[name] = name.encode()[: NAME_LEN - 1].ljust(NAME_LEN, b"\0")
            page.map[NAME_AT : NAME_AT + NAME_LEN] = tag

    def leave(self) -> None:
        self.current = None
        page = self.page
        if page is not None:
            page.map[NAME_AT] = 0

    def on_interrupt(self, signum: int, frame: Any) -> None:
        """The signal handler (main thread): raise in the user code the watchdog interrupted."""
        cur = self.current
        if cur is None or cur[0] != self.fire_id:
            return  # the call ended meanwhile: nothing to interrupt
        ms = self.budget * 1000.0
        if self.strikes <= 1:
            raise UserCodeTimeout(f"it ran past its time budget ({ms:.0f} ms per call)")
        self.leave()
        raise UserCodeHung(cur[1], f"{cur[1]}: its code ignored the time budget ({ms:.0f} ms per call); the module is muted until it is edited")

    # ----- wrapping ---------------------------------------------------------

    def wrap(self, cls: type[ModuleType]) -> type[ModuleType]:
        """A subclass of `cls` whose runtime methods run under this guard (cached per class)."""
        done = self._wrapped.get(cls)
        if done is not None:
            return done
        guard = self
        ns: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__vt_user__": cls}

        def overrides(method: str) -> bool:
            return getattr(cls, method) is not getattr(ModuleType, method)

        if overrides("pattern"):
            pattern = cls.pattern

            def guarded_pattern(inst: Any, p: Any, start: float, end: float) -> list[Any]:
                guard.enter(inst.name)
                try:
                    return guard.onsets(inst.name, pattern(inst, p, start, end), start, end)
                except MemoryError:
                    raise MemoryError(guard.memory_note) from None
                finally:
                    guard.leave()

            ns["pattern"] = guarded_pattern
        if overrides("signal"):
            signal_fn = cls.signal

            def guarded_signal(inst: Any, p: Any, beat: float, seconds: float) -> Any:
                guard.enter(inst.name)
                try:
                    return signal_fn(inst, p, beat, seconds)
                finally:
                    guard.leave()

            ns["signal"] = guarded_signal
        if overrides("process"):
            process = cls.process

            def guarded_process(inst: Any, p: Any, beat: float, value: Any) -> Any:
                guard.enter(inst.name)
                try:
                    try:
                        result = process(inst, p, beat, value)
                    except MemoryError:
                        raise MemoryError(guard.memory_note) from None
                    if isinstance(result, (list, tuple)) and len(result) > MAX_PROCESS_VALUES:
                        raise ValueError(f"returned {len(result)} values for one event (at most {MAX_PROCESS_VALUES})")
                    return result
                finally:
                    guard.leave()

            ns["process"] = guarded_process
        if overrides("emit"):
            emit = cls.emit

            def guarded_emit(inst: Any, p: Any, event: Any, out: Any) -> None:
                guard.enter(inst.name)
                try:
                    emit(inst, p, event, guard.checked(out))
                finally:
                    guard.leave()

            ns["emit"] = guarded_emit
        if cls.steps_per_beat.__func__ is not ModuleType.steps_per_beat.__func__:  # type: ignore[attr-defined]
            spb = cls.steps_per_beat.__func__  # type: ignore[attr-defined]

            def guarded_spb(klass: Any, p: Any) -> int:
                value = guard.class_call(cls, "steps_per_beat", spb, klass, p)
                if type(value) is int and 1 <= value <= 1024:
                    return value
                if value is not None:
                    guard.report(
                        "", f"spb:{cls.type_name}", f"module type {cls.type_name!r}: steps_per_beat() returned {value!r:.40}; using 4 (it must be an int in 1..1024)"
                    )
                return 4

            ns["steps_per_beat"] = classmethod(guarded_spb)
        if cls.beats_per_cycle.__func__ is not ModuleType.beats_per_cycle.__func__:  # type: ignore[attr-defined]
            bpc = cls.beats_per_cycle.__func__  # type: ignore[attr-defined]

            def guarded_bpc(klass: Any, p: Any, meter: int) -> float:
                value = guard.class_call(cls, "beats_per_cycle", bpc, klass, p, meter)
                if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < float(value) < math.inf:
                    return float(value)
                if value is not None:
                    guard.report(
                        "", f"bpc:{cls.type_name}", f"module type {cls.type_name!r}: beats_per_cycle() returned {value!r:.40}; using the meter"
                    )
                return float(meter)

            ns["beats_per_cycle"] = classmethod(guarded_bpc)
        if cls.__init__ is not object.__init__:
            init = cls.__init__

            def guarded_init(inst: Any, *args: Any, **kwargs: Any) -> None:
                guard.enter(cls.type_name)
                try:
                    init(inst, *args, **kwargs)
                except Exception as exc:  # every method then raises it: the module is muted on first use
                    _break(inst, exc)
                finally:
                    guard.leave()

            ns["__init__"] = guarded_init
        wrapped = type(cls.__name__, (cls,), ns)
        self._wrapped[cls] = wrapped
        return wrapped

    def class_call(self, cls: type[ModuleType], method: str, fn: Any, *args: Any) -> Any:
        """A class method of user code; its failure is reported and the caller falls back (returns None)."""
        self.enter(cls.type_name)
        try:
            return fn(*args)
        except Exception as exc:
            self.report("", f"{method}:{cls.type_name}", f"module type {cls.type_name!r}: {method}() raised {type(exc).__name__}: {exc}")
            return None
        finally:
            self.leave()

    def checked(self, out: Any) -> CheckedOutputs:
        proxy = self._checked.get(id(out))
        if proxy is None or proxy.out is not out:
            proxy = self._checked[id(out)] = CheckedOutputs(out)
        return proxy

    # ----- validation -------------------------------------------------------

    def onsets(self, name: str, raw: Iterable[Any], start: float, end: float) -> list[Any]:
        """Check what a pattern returned (see the module docstring); raise ValueError to mute it."""
        cap = self.max_events
        out: list[Any] = []
        lo, hi = start - BEAT_EPSILON, end + BEAT_EPSILON
        dropped = None
        append = out.append
        for item in raw:  # a generator runs here, inside the guard
            if len(out) >= cap:
                why = f"returned more than {cap} onsets for the window [{start:g}, {end:g})"
                self.faults[name] = f"{name}: pattern() {why}; the module is muted until it is edited"
                raise ValueError(why)
            kind = type(item)
            if (kind is not tuple and kind is not list) or not 2 <= len(item) <= 3:
                if not isinstance(item, (tuple, list)) or not 2 <= len(item) <= 3:
                    raise ValueError(f"must give (beat, value) or (beat, value, duration) pairs, got {_short(item)}")
            beat = item[0]
            kind = type(beat)
            if kind is not float and kind is not int and (isinstance(beat, bool) or not isinstance(beat, numbers.Real)):
                raise ValueError(f"gave a beat that is not a number: {_short(beat)}")
            if not lo <= beat < hi:
                if not math.isfinite(float(beat)):
                    raise ValueError(f"gave the beat {beat!r}; beats must be finite numbers")
                dropped = beat
                continue
            if len(item) == 3:
                duration = item[2]
                kind = type(duration)
                if not ((kind is float or kind is int) and 0 <= duration < math.inf):
                    if isinstance(duration, bool) or not isinstance(duration, numbers.Real) or not 0 <= float(duration) < math.inf:
                        raise ValueError(f"gave the duration {_short(duration)}; durations must be finite numbers >= 0")
            append(item)
        if dropped is not None:
            self.report(
                name,
                "outside-window",
                f"{name}: pattern() gave the beat {float(dropped):g} outside the window [{start:g}, {end:g}) it was asked for; such onsets are dropped",
            )
        return out


class CheckedOutputs:
    """What a sink's `emit` sees as `out`: the scheduler's outputs, with each time checked first."""

    __slots__ = ("out",)

    def __init__(self, out: Any) -> None:
        self.out = out

    def send_osc(self, module: str, host: str, port: int, address: str, timetag: int, args: Sequence[Any]) -> None:
        if type(timetag) is not int or not 0 <= timetag < 1 << 64:
            raise ValueError(f"gave the OSC timetag {_short(timetag)}; a timetag is an int in [0, 2**64)")
        self.out.send_osc(module, host, port, address, timetag, args)

    def send_midi(self, module: str, port: str, at: float, message: Sequence[int]) -> None:
        if isinstance(at, bool) or not isinstance(at, numbers.Real) or not abs(float(at) - time.monotonic()) < 3600.0:
            raise ValueError(f"gave the MIDI time {_short(at)}; it must be a monotonic time within the hour")
        self.out.send_midi(module, port, float(at), message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _break(inst: Any, exc: Exception) -> None:
    """After a failed __init__: every runtime method of `inst` raises `exc` (so the module is muted)."""

    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"__init__() raised {type(exc).__name__}: {exc}")

    for method in ("pattern", "signal", "process", "emit"):
        try:
            setattr(inst, method, raiser)
        except AttributeError:  # __slots__ without __dict__: nothing to shadow
            return


class Watchdog:
    """A thread in the scheduler process: interrupts overrunning user code, ends the process with its parent.

    Owner: its own thread; it reads `Guard.current` and writes `fire_id`/`strikes`.
    """

    def __init__(self, guard: Guard, *, main_thread_id: int, parent_pid: int, priority: tuple[int, int] | None = None) -> None:
        self.guard = guard
        self.main_thread_id = main_thread_id
        self.parent_pid = parent_pid
        self.priority = priority  # (policy, level) for this thread, above the main thread's
        self.period = max(0.005, min(0.05, guard.budget / 4))
        self._stop = threading.Event()
        self._fired_at = 0.0
        self.thread = threading.Thread(target=self._run, name="vt-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        if self.priority is not None:
            try:
                os.sched_setscheduler(0, self.priority[0], os.sched_param(self.priority[1]))  # this thread only
            except (OSError, AttributeError):
                pass
        guard = self.guard
        while not self._stop.wait(self.period):
            if os.getppid() != self.parent_pid:
                os._exit(0)  # the parent is gone (and the main thread may be stuck): nobody listens any more
            cur = guard.current
            if cur is None or INTERRUPT_SIGNAL is None:
                continue
            now = time.monotonic()
            if now - cur[2] < guard.budget:
                continue
            if guard.fire_id != cur[0]:
                guard.fire_id, guard.strikes = cur[0], 1
                guard.faults[cur[1]] = f"{cur[1]}: its code ran past its time budget ({guard.budget * 1000:.0f} ms per call); the module is muted until it is edited"
            elif now - self._fired_at >= ESCALATE_AFTER:
                guard.strikes += 1
            else:
                continue
            self._fired_at = now
            try:
                signal.pthread_kill(self.main_thread_id, INTERRUPT_SIGNAL)
            except (OSError, ValueError):
                pass


# ----- the process: parent death, priority, memory ----------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel kills this process when the thread that started it ends (PR_SET_PDEATHSIG).

    The runtime starts the scheduler from its long-lived feeder thread, which
    ends only when the runtime stops or the kernel process dies.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # it died before we could ask
        os._exit(0)


RT_LEVEL = 10  # SCHED_FIFO priority of the scheduler's main thread (1..99); its watchdog gets one more
NICE_LEVEL = -5


def request_priority(enabled: bool = True) -> tuple[str, tuple[int, int] | None]:
    """Ask the OS for real-time (or raised) priority for this thread and the threads it starts later.

    Returns what was granted, in words for `%vt stats`, and the (policy, level)
    the watchdog thread should take (one above), or None.
    """
    if not enabled:
        return "normal (not requested)", None
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO"):
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_LEVEL))
            return f"SCHED_FIFO {RT_LEVEL}", (os.SCHED_FIFO, RT_LEVEL + 1)
        except (OSError, PermissionError):
            pass
        if hasattr(os, "SCHED_RR"):
            try:
                os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_LEVEL))
                return f"SCHED_RR {RT_LEVEL}", (os.SCHED_RR, RT_LEVEL + 1)
            except (OSError, PermissionError):
                pass
    if sys.platform == "win32":  # pragma: no cover - not tested here
        try:
            import psutil

            psutil.Process().nice(psutil.HIGH_PRIORITY_CLASS)
            return "HIGH_PRIORITY_CLASS", None
        except Exception:
            return "normal (not permitted)", None
    try:
        before = os.getpriority(os.PRIO_PROCESS, 0)
        if before > NICE_LEVEL:
            os.setpriority(os.PRIO_PROCESS, 0, NICE_LEVEL)
        return f"nice {os.getpriority(os.PRIO_PROCESS, 0)}", None
    except (OSError, AttributeError):
        return "normal (not permitted)", None


def limit_memory(extra_mb: int) -> str:
    """Cap the address space at what the process has now plus `extra_mb` (RLIMIT_AS); say what was set."""
    if extra_mb <= 0:
        return "unlimited"
    try:
        import resource

        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + extra_mb * (1 << 20)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        return f"{limit >> 20} MB"
    except (OSError, ValueError, ImportError):
        return "unlimited"


def install_interrupt(guard: Guard) -> bool:
    """Main thread: route the watchdog's signal to `guard.on_interrupt`. False where there is no such signal."""
    if INTERRUPT_SIGNAL is None or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(INTERRUPT_SIGNAL, guard.on_interrupt)
    return True
