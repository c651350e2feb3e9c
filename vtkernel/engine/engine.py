"""The engine thread: the only writer of state.

It drains the command queue, applies each command with the pure `apply`,
bumps the version once per drained batch, publishes the new `Snapshot` with
one reference assignment, and records what changed. It never runs a
subscriber's code: it only *signals* (`Signal.set` schedules work on the
subscriber's own event loop), so a notification can never re-enter the
engine, and it never waits for a reader.

Thread ownership
- `Engine.run` (the engine thread) owns `_edit`, `_history`, `_applied_seq`.
- Any thread may call `submit`, `snapshot`, `wait_applied`, `history_since`,
  `at`, `stats`, `add_signal`, `remove_signal`. A `Signal` is the only way
  to hear of a publish; the engine thread never runs a subscriber's code.
- `submit` takes a sequence number and enqueues under one small lock
  (`_submit_lock`), so items enter the queue in sequence order and the
  applied mark (`_applied_seq`, the seq of the last applied item) only moves
  forward. A caller that needs its own commands applied waits on its own
  `Mailbox` (`Mailbox.wait_for`), not on the global mark.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vtkernel.engine.apply import EditState, LoadDocument, apply
from vtkernel.engine.document import Change, Document, Path, Snapshot
from vtkernel.engine.figures import percentile
from vtkernel.engine.queue import CommandQueue
from vtkernel.engine.schema import Registry, default_registry
from vtkernel.engine.timing.quantize import quantized_paths
from vtkernel.protocol import Batch, Redo, Undo, VTError

log = logging.getLogger("vtkernel.engine")

HISTORY_LIMIT = 1000
DRAIN_LIMIT = 4096  # commands applied per published version, at most


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submitted command."""

    seq: int
    version: int  # the version that contains the change (the current one if nothing changed)
    error: VTError | None
    token: Any  # the submitter's own tag (e.g. a comm message id), passed back untouched


# A queued command: (seq, command, origin, reply mailbox or None, token). A plain tuple:
# it is built once per command on the producer's thread, the hottest path there is.
_Item = tuple[int, Any, str, "Mailbox | None", Any]


class Signal:
    """A coalescing, cross-thread 'something changed' flag.

    `set` may be called from any thread (the engine thread calls it after each
    publish) and only schedules `callback` on the target: an asyncio loop
    (`call_soon_threadsafe`) or any `schedule(fn)` callable. Several sets
    before the callback runs produce one call. The callback runs on the
    target's thread, never on the caller's.
    """

    def __init__(self, callback: Callable[[], None], schedule: Callable[[Callable[[], None]], Any]) -> None:
        self._callback = callback
        self._schedule = schedule
        self._pending = False
        self.closed = False

    def set(self) -> None:
        if self._pending or self.closed:
            return
        self._pending = True
        try:
            self._schedule(self._run)
        except RuntimeError:  # target loop closed: the subscriber is gone
            self.closed = True

    def _run(self) -> None:
        self._pending = False
        if not self.closed:
            self._callback()


class Mailbox:
    """Outcomes for one submitter. The engine thread puts; the owner's thread takes.

    `signal` (optional) is set after each put, so an event loop can react.
    `received` counts every outcome ever put (written by the engine thread
    only); a submitter that knows how many commands it sent blocks in
    `wait_for(count)` until that many outcomes have arrived: its own
    read-your-writes barrier, whatever other threads submit meanwhile.
    """

    def __init__(self, signal: Signal | None = None) -> None:
        self._items: deque[Outcome] = deque()
        self.signal = signal
        self.received = 0
        self._cond: threading.Condition | None = None  # created by the first waiter

    def put(self, outcome: Outcome) -> None:
        self._items.append(outcome)
        self.received += 1
        if self.signal is not None:
            self.signal.set()
        cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def wait_for(self, count: int, timeout: float | None = None) -> bool:
        """Block until `count` outcomes have been put in all (not on the engine thread); False on timeout.

        No lost wake-up: the waiter publishes `_cond` before it checks `received`
        under the lock, and the engine bumps `received` before it reads `_cond`.
        """
        if self.received >= count:
            return True
        if self._cond is None:
            self._cond = threading.Condition(threading.Lock())
        with self._cond:
            return self._cond.wait_for(lambda: self.received >= count, timeout)

    def take_all(self) -> list[Outcome]:
        out = []
        pop = self._items.popleft
        try:
            while True:
                out.append(pop())
        except IndexError:
            return out


class Engine:
    """Hosts the engine thread. See the module docstring for thread ownership."""

    def __init__(self, registry: Registry | None = None, *, history: int = HISTORY_LIMIT) -> None:
        self.registry = registry or default_registry()
        self._queue: CommandQueue[_Item] = CommandQueue()
        self._seq = itertools.count(1)
        self._submit_lock = threading.Lock()
        self._last_seq = 0
        self._applied_seq = 0
        self._edit = EditState(Document())
        self._snapshot = Snapshot(0, self._edit.doc, None)
        self._history: deque[Snapshot] = deque([self._snapshot], maxlen=history)
        self._signals: list[Signal] = []
        self._done = threading.Condition(threading.Lock())
        self._waiters = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._stats = EngineStats()

    # ----- any thread -----------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The current published version: one reference read, no lock."""
        return self._snapshot

    @property
    def version(self) -> int:
        return self._snapshot.version

    def submit(self, command: Any, *, origin: str = "api", reply: Mailbox | None = None, token: Any = None) -> int:
        """Queue a validated command; return its sequence number. Never waits for the engine.

        Taking the number and enqueueing happen under one lock: otherwise a
        thread preempted between the two lets a later number be applied first,
        and `wait_applied` of the earlier one would return before it is applied.
        """
        with self._submit_lock:
            seq = next(self._seq)
            self._last_seq = seq
            self._queue.put((seq, command, origin, reply, token))
        return seq

    def wait_applied(self, seq: int | None = None, timeout: float | None = None) -> bool:
        """Block until command `seq` (default: the last submitted) has been applied."""
        target = self._last_seq if seq is None else seq
        if self._applied_seq >= target:
            return True
        if threading.current_thread() is self._thread:
            raise RuntimeError("the engine thread cannot wait for itself")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            self._waiters += 1
            try:
                while self._applied_seq < target:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._done.wait(remaining)
            finally:
                self._waiters -= 1
        return True

    def call(self, command: Any, *, origin: str = "api", timeout: float = 10.0) -> Outcome:
        """Submit and wait for the outcome (for tests and synchronous callers)."""
        box = Mailbox()
        seq = self.submit(command, origin=origin, reply=box)
        if threading.current_thread() is self._thread:
            raise RuntimeError("the engine thread cannot wait for itself")
        if not box.wait_for(1, timeout):
            raise TimeoutError(f"engine did not apply command {seq} within {timeout}s")
        (outcome,) = box.take_all()
        return outcome

    def add_signal(self, signal: Signal) -> Signal:
        """Register a signal set after every publish (copy-on-write list: no lock for the engine).

        This is the only way to hear of a publish: the subscriber's own thread
        then reads `snapshot` or `history_since(last version it saw)`, so no
        subscriber code ever runs on the engine thread.
        """
        self._signals = [*self._signals, signal]
        return signal

    def remove_signal(self, signal: Signal) -> None:
        signal.closed = True
        self._signals = [s for s in self._signals if s is not signal]

    def history_since(self, version: int) -> list[Snapshot] | None:
        """Snapshots newer than `version`, oldest first; None if the ring no longer holds `version`."""
        hist = list(self._history)  # a copy: the engine thread may append meanwhile
        i = bisect.bisect_left(hist, version, key=_version_of)  # versions only grow along the ring
        if i < len(hist) and hist[i].version == version:
            return hist[i + 1 :]
        return None

    def history(self) -> list[Snapshot]:
        return list(self._history)

    def at(self, version: int) -> Snapshot:
        """The snapshot of an older version, while the history ring holds it (time travel)."""
        for snap in reversed(self._history):
            if snap.version == version:
                return snap
        oldest = self._history[0].version
        raise VTError("invalid_value", f"version {version} is not in history (oldest kept: {oldest}, newest: {self.version})")

    def stats(self) -> dict[str, Any]:
        return self._stats.summary(len(self._queue), self.version)

    # ----- lifecycle ------------------------------------------------------

    def start(self) -> Engine:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="vt-engine", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._queue.waker.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    # ----- engine thread --------------------------------------------------

    def run(self) -> None:
        queue = self._queue
        while not self._stopping:
            queue.wait(None)
            while True:
                items = queue.drain(DRAIN_LIMIT)
                if not items:
                    break
                self._apply_batch(items)

    def _apply_batch(self, items: list[_Item]) -> None:
        t0 = time.perf_counter()
        reg = self.registry
        edit = self._edit
        now = time.time()
        replies: list[tuple[_Item, VTError | None]] = []  # only commands that want an outcome
        errors = 0
        paths: list[Path] = []
        origin = ""
        summary = ""
        floor = 0
        qmap: dict[Path, str | None] = {}
        for item in items:
            _, command, item_origin, reply, _ = item
            try:
                edit, changes = apply(edit, command, reg, item_origin, now)
            except VTError as exc:
                errors += 1
                if reply is not None:
                    replies.append((item, exc))
                continue
            except Exception as exc:  # a bug: keep running, log its traceback, answer `internal_error`
                errors += 1
                log.exception("internal error applying %s from %s", type(command).__name__, item_origin)
                if reply is not None:
                    replies.append((item, VTError("internal_error", f"{type(exc).__name__}: {exc}"[:300].replace("\n", " "))))
                continue
            if reply is not None:
                replies.append((item, None))
            if changes:
                paths.extend(changes)
                origin = item_origin
                summary = _SUMMARY.get(type(command), "")
                if type(command) is LoadDocument:
                    floor = max(floor, command.version_floor)
                quantized = (
                    quantized_paths(command, changes)
                    if getattr(command, "quantize", None) or type(command) is Batch
                    else ()
                )
                if quantized or qmap:  # a later unquantized change to a path cancels its quantization
                    wanted = dict(quantized)
                    for p in changes:
                        qmap[p] = wanted.get(p)
            elif type(command) is LoadDocument and command.version_floor > self._snapshot.version:
                floor = max(floor, command.version_floor)
        self._edit = edit
        old = self._snapshot
        if paths or floor > old.version:
            version = max(old.version + 1, floor)
            quantize = tuple((p, q) for p, q in qmap.items() if q)
            change = Change(version, _dedupe(paths), origin, now, summary=summary, quantize=quantize)
            snap = Snapshot(version, edit.doc, change)
            self._history.append(snap)
            self._snapshot = snap  # the publish: one reference swap
        version = self._snapshot.version
        for item, err in replies:
            item[3].put(Outcome(item[0], version, err, item[4]))  # type: ignore[union-attr]
        # Items arrive in seq order (see `submit`); max() keeps the mark monotonic regardless.
        self._applied_seq = max(self._applied_seq, items[-1][0])
        if self._waiters:
            with self._done:
                self._done.notify_all()
        if version != old.version:
            for signal in self._signals:
                signal.set()
        self._stats.record(len(items), time.perf_counter() - t0, errors)


# What a history line says besides the paths, for commands whose paths alone would mislead.
_SUMMARY: dict[type, str] = {Undo: "undo", Redo: "redo", LoadDocument: "load"}


def _version_of(snap: Snapshot) -> int:
    return snap.version


def _dedupe(paths: list[Path]) -> tuple[Path, ...]:
    seen: dict[Path, None] = {}
    for p in paths:
        seen.setdefault(p, None)
    return tuple(seen)


class EngineStats:
    """Counters written by the engine thread and read (racily but harmlessly) by others."""

    def __init__(self) -> None:
        self.commands = 0
        self.errors = 0
        self.batches = 0
        self.started = time.monotonic()
        self.apply_us: deque[float] = deque(maxlen=2048)
        self._window: deque[tuple[float, int]] = deque(maxlen=256)

    def record(self, n: int, seconds: float, errors: int) -> None:
        self.commands += n
        self.errors += errors
        self.batches += 1
        self.apply_us.append(seconds * 1e6 / n)
        self._window.append((time.monotonic(), n))

    def summary(self, queue_depth: int, version: int) -> dict[str, Any]:
        now = time.monotonic()
        recent = [(t, n) for t, n in list(self._window) if now - t <= 5.0]
        rate = sum(n for _, n in recent) / 5.0 if recent else 0.0
        lat = sorted(self.apply_us)
        return {
            "version": version,
            "commands": self.commands,
            "errors": self.errors,
            "commands_per_s": round(rate, 1),
            "queue_depth": queue_depth,
            "apply_us_p50": percentile(lat, 0.5),
            "apply_us_p99": percentile(lat, 0.99),
        }

