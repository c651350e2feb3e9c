"""The saver thread (`vt-saver`): autosaves published snapshots, off the engine thread.

How it keeps up without getting in the engine's way:

- It is woken, not polling: a `Signal` on the engine schedules a write to an
  eventfd (`Waker`), so after a publish the engine thread does one syscall
  and takes no lock. The saver sleeps in `select` on that eventfd. Once it
  knows there is something to save it leaves the signal un-armed until the
  save is done, so a stream of publishes wakes it once, not once each.
- It reads `engine.snapshot` (one reference read) and serializes that
  immutable value on its own thread. The encoder re-encodes only modules
  that changed and releases the GIL between slices of the document.
- Staleness: a version already on disk is never written again.
- Debounce: the first change after a quiet spell is written after `settle`
  (50 ms), so a burst of edits (a cell, a batch) is one write; after that,
  writes are at least `delay` apart, so a change reaches the disk at most
  about `delay` after it was published. `flush` skips both waits.
- Failures (disk full, permission denied, failed fsync) are reported once
  per distinct error through `report`; the engine is not affected; the
  saver retries with a backoff of 0.25 s doubling to at most 1 s (so a
  save lands within about a second of space returning: the ≤ 1 s loss
  promise), each time with a fresh temp file (never a second fsync of the same file); the first
  success reports that the session is saved again.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vtkernel.engine.document import Snapshot
from vtkernel.engine.engine import Engine, Signal
from vtkernel.engine.queue import Waker
from vtkernel.protocol import VTError
from vtkernel.session.format import Encoder
from vtkernel.session.store import SessionStore

SETTLE_SECONDS = 0.05
RETRY_FIRST, RETRY_MAX = 0.25, 1.0  # a failing attempt costs one open(): cheap to retry each second


@dataclass(frozen=True)
class SaverStatus:
    saved_version: int | None  # the version durably on disk (None: not known yet)
    saved_at: float | None  # time.time() of the last successful write
    writes: int  # successful writes since start
    failures: int  # consecutive failed writes (0 when healthy)
    last_error: str | None


@dataclass
class _Flush:
    done: threading.Event
    version: int | None = None
    error: VTError | None = None


class Saver:
    """Writes an engine's snapshots to a `SessionStore` on the `vt-saver` thread.

    Owner: once `start` returns, the `vt-saver` thread owns the store, the
    encoder and the bookkeeping. The engine thread only sets the signal. The
    owner of the Saver (the SessionManager) calls `start` and `stop`; any
    thread but the engine's may call `flush` and `status`.
    """

    def __init__(
        self,
        engine: Engine,
        store: SessionStore,
        *,
        report: Callable[[str], None],
        delay: float = 1.0,
        settle: float = SETTLE_SECONDS,
        saved_version: int | None = None,
        saved_at: float | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.delay = delay
        self.settle = min(settle, delay)
        self._report = report
        self._encoder = Encoder()
        self._waker = Waker()
        # Closed only when the Saver is gone: the engine thread may still be inside
        # a `Signal.set` that ends in `_schedule` just after `stop` removed the signal.
        weakref.finalize(self, self._waker.close)
        self._rearm: Callable[[], None] | None = None
        self._signal = Signal(_nothing, schedule=self._schedule)
        self._requests: deque[_Flush] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._finished = False
        # Written by vt-saver only; read (one attribute at a time) by anyone.
        self._saved_version = saved_version
        self._saved_at = saved_at if saved_version is not None else None
        self._writes = 0
        self._failures = 0
        self._last_error: VTError | None = None
        self._reported: str | None = None
        self._dirty_since: float | None = None
        self._last_write = -1e9
        self._retry_at = 0.0

    # ----- owner ------------------------------------------------------------

    def start(self) -> Saver:
        if self._thread is None:
            self.engine.add_signal(self._signal)
            self._thread = threading.Thread(target=self._run, name="vt-saver", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0, *, flush: bool = True) -> VTError | None:
        """Stop the thread within `timeout`, first saving the current version if `flush`.

        Returns the final save's error, if any. `alive` tells whether the thread ended.
        """
        deadline = time.monotonic() + timeout
        self.engine.remove_signal(self._signal)
        error: VTError | None = None
        if flush and self._thread is not None and not self._finished:
            try:
                self.flush(timeout)
            except VTError as exc:
                error = exc
        self._stopping = True
        self._waker.wake()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return error

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ----- any thread but the engine's ----------------------------------------

    def flush(self, timeout: float = 10.0) -> int:
        """Return once the version current at the call is durably on disk; its version.

        Raises `io_error` if the write failed or did not finish within `timeout`.
        """
        if not self.alive or self._stopping or self._finished:
            raise VTError("io_error", f"the saver of {self.store.path.name} is not running")
        request = _Flush(threading.Event())
        self._requests.append(request)
        self._waker.wake()
        if not request.done.wait(timeout):
            raise VTError(
                "io_error", f"saving {self.store.path.name} did not finish within {timeout:g} s (slow or hung disk?)"
            )
        if request.error is not None:
            raise request.error
        assert request.version is not None
        return request.version

    def status(self) -> SaverStatus:
        err = self._last_error
        return SaverStatus(
            self._saved_version, self._saved_at, self._writes, self._failures, None if err is None else err.message
        )

    # ----- engine thread ------------------------------------------------------

    def _schedule(self, run: Callable[[], None]) -> None:
        # Called on the engine thread after a publish: one store and one eventfd write, no lock.
        self._rearm = run
        self._waker.wake()

    # ----- vt-saver thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug: say so, and fail waiting flushes now rather than at their timeout
            self._finished = True
            error = VTError("io_error", f"the saver of {self.store.path.name} stopped: {type(exc).__name__}: {exc}")
            self._say(error.message)
            while self._requests:
                request = self._requests.popleft()
                request.error = error
                request.done.set()

    def _loop(self) -> None:
        while True:
            wait = self._wait_time()
            if wait is None or wait > 0:
                self._waker.wait(wait)
            self._waker.clear()
            requests = []
            while self._requests:
                requests.append(self._requests.popleft())
            snap = self.engine.snapshot
            now = time.monotonic()
            if snap.version == self._saved_version:
                self._dirty_since = None
            elif self._dirty_since is None:
                self._dirty_since = now
            error = None
            if self._dirty_since is not None and (requests or now >= self._due_at()):
                error = self._save(snap)
            for request in requests:
                request.version = self._saved_version
                request.error = error
                request.done.set()
            if self._stopping and not self._requests:
                self._finished = True
                return
            if self._dirty_since is None and self._rearm is not None:
                # About to sleep with no deadline: re-arm the signal, then look again,
                # so that a publish between our read and the re-arm is not missed.
                # While a save is pending the signal stays un-armed, so the engine's
                # publishes cost it a flag check, not a wake-up of this thread.
                rearm, self._rearm = self._rearm, None
                rearm()
                if self.engine.snapshot.version != self._saved_version:
                    self._dirty_since = time.monotonic()

    def _due_at(self) -> float:
        assert self._dirty_since is not None
        return max(self._dirty_since + self.settle, self._last_write + self.delay, self._retry_at)

    def _wait_time(self) -> float | None:
        if self._requests or self._stopping:
            return 0.0
        if self._dirty_since is None:
            return None  # nothing unsaved: sleep until a publish or a flush
        return self._due_at() - time.monotonic()

    def _save(self, snap: Snapshot) -> VTError | None:
        try:
            data = self._encoder.encode(snap.version, snap.doc)
            notes = self.store.save(data, snap.version)
        except VTError as exc:
            return self._failed(exc)
        except Exception as exc:  # a bug: keep the thread alive and say what happened
            return self._failed(
                VTError("io_error", f"could not save {self.store.path.name}: {type(exc).__name__}: {exc}")
            )
        self._saved_version = snap.version
        self._saved_at = time.time()
        self._last_write = time.monotonic()
        self._dirty_since = None
        self._writes += 1
        if self._failures:
            self._say(f"session {self.store.path.name} saved again: version {snap.version} is on disk")
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = None
        self._reported = None
        for note in notes:
            self._say(note)
        return None

    def _failed(self, exc: VTError) -> VTError:
        self._failures += 1
        self._last_error = exc
        self._retry_at = time.monotonic() + min(RETRY_MAX, RETRY_FIRST * 2 ** (self._failures - 1))
        if exc.message != self._reported:  # once per distinct problem, not once per attempt
            self._reported = exc.message
            self._say(f"{exc.message} (the engine keeps running; will retry)")
        return exc

    def _say(self, line: str) -> None:
        try:
            self._report(line)
        except Exception:  # a broken report callback must not stop the saving
            pass


def _nothing() -> None:
    pass


__all__ = ["Saver", "SaverStatus"]
