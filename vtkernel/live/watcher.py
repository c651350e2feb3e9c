"""Watching files on disk: notice saves, settle them, and hand each one to the kernel's main thread.

How editors save (see `shared/notes/live-and-timing.md`): an atomic save is
only a `moved tmp -> path` event, an in-place write is `modified` twice then
`closed`, a vim-style save is `moved path -> path~` then `created path`. So:

- the parent directory is observed and an event matches on `src_path` or
  `dest_path`;
- events for one file are debounced (`DEBOUNCE` of quiet), then the file is
  read until its content is stable (`stat` identical around the read);
- a missing file is not an empty file: it is waited for (delete and
  re-create, backup-rename saves). An empty file must stay empty for
  `EMPTY_CONFIRM` before it applies, so a truncate-then-write save never
  removes the whole patch for a moment;
- `opened` / `closed_no_write` events (our own reads cause them) are ignored;
- observing starts before the first run, so no save is missed.

Threads:

- the watchdog observer thread only notices events and tells the settler;
- the settler thread `vt-live-settle` waits out the debounce, reads the
  file, keeps the newest text per file and calls `schedule_main(fn)` once
  per pending file; it never touches a namespace or the engine;
- `fn`, and `watch` / `unwatch` / `watched` / `stats` / `close`, run on the
  kernel's main thread, where the file's code runs in order with cells.
  When a cell is busy, saves pile up as one pending text per file and the
  newest applies when the kernel runs `fn`.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from vtkernel.api import VT
from vtkernel.engine.engine import Engine
from vtkernel.engine.figures import percentile
from vtkernel.live.runner import LiveFile, Ownership, decode_source
from vtkernel.protocol import VTError

DEBOUNCE = 0.05  # seconds of quiet after the last event of a save
EMPTY_CONFIRM = 0.15  # an empty file must stay empty this long before it applies
STABLE_TRIES = 20  # re-reads while the file is still changing under us
STABLE_GAP = 0.005
_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})


@dataclass
class _Pending:
    first: float  # monotonic time of the first event of this save
    last: float  # of the latest event
    quiet: float = DEBOUNCE
    confirming_empty: bool = False


@dataclass
class _Settled:
    data: bytes | None  # None: the file is missing right now (or is not a file: `problem`)
    first: float
    problem: str | None = None  # "is now a directory": the path exists but is not a regular file


class _NotAFile(Exception):
    """The watched path exists but is not a regular file (a directory, a FIFO...)."""


class _Settler(threading.Thread):
    """Debounces events per file and reads the settled content.

    Owner: its own thread. `notice` is called by the watchdog thread,
    `forget`/`stop` by the main thread.
    """

    def __init__(self, on_settled: Callable[[str, _Settled], None]) -> None:
        super().__init__(name="vt-live-settle", daemon=True)
        self._on_settled = on_settled
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._stopping = False

    def notice(self, path: str) -> None:
        now = time.monotonic()
        with self._cond:
            entry = self._pending.get(path)
            if entry is None:
                self._pending[path] = _Pending(now, now)
            else:
                entry.last, entry.quiet, entry.confirming_empty = now, DEBOUNCE, False
            self._cond.notify()

    def forget(self, path: str) -> None:
        with self._cond:
            self._pending.pop(path, None)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def run(self) -> None:
        while True:
            with self._cond:
                ready = self._wait_ready()
                if ready is None:
                    return
            for path, entry in ready:
                try:
                    data = _read_stable(path)
                except _NotAFile as exc:
                    self._on_settled(path, _Settled(None, entry.first, str(exc)))
                    continue
                if data == b"" and not entry.confirming_empty:
                    with self._cond:  # a truncate before a write? wait a little longer
                        if path not in self._pending:
                            self._pending[path] = _Pending(entry.first, time.monotonic(), EMPTY_CONFIRM, True)
                            self._cond.notify()
                    continue
                self._on_settled(path, _Settled(data, entry.first))

    def _wait_ready(self) -> list[tuple[str, _Pending]] | None:
        while not self._stopping:
            now = time.monotonic()
            ready = [(p, e) for p, e in self._pending.items() if now - e.last >= e.quiet]
            if ready:
                for p, _ in ready:
                    del self._pending[p]
                return ready
            waits = [e.last + e.quiet - now for e in self._pending.values()]
            self._cond.wait(min(waits) if waits else None)
        return None


def _read_stable(path: str) -> bytes | None:
    """The file's bytes once a read is not raced by a writer; None if it is missing."""
    data = b""
    for _ in range(STABLE_TRIES):
        try:
            before = os.stat(path)
            if not stat.S_ISREG(before.st_mode):  # never open a FIFO (it would block) or read a directory
                raise _NotAFile("a directory" if stat.S_ISDIR(before.st_mode) else "not a regular file")
            with open(path, "rb") as f:
                data = f.read()
            after = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            time.sleep(STABLE_GAP)
            continue
        same = (before.st_ino, before.st_size, before.st_mtime_ns) == (after.st_ino, after.st_size, after.st_mtime_ns)
        if same and len(data) == after.st_size:
            return data
        time.sleep(STABLE_GAP)  # a writer is mid-save; its next event restarts the debounce anyway
    return data


class _Handler(FileSystemEventHandler):
    """Runs on the watchdog observer thread: match the event to watched files, tell the settler."""

    def __init__(self, owner: LiveFiles) -> None:
        self._owner = owner

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Directory events count too: a watched path replaced by a directory must be noticed.
        if event.event_type in _IGNORED_EVENTS:
            return
        watched = self._owner._paths  # copy-on-write mapping: one reference read
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw) if raw else ""
            real = watched.get(_match_key(path)) if path else None
            if real is not None:
                self._owner._settler.notice(real)


class LiveFiles:
    """The watched files of one kernel.

    `make_vt(path)` gives the `VT` a file's code uses (its origin names the
    file); `schedule_main(fn)` must run `fn` later on the kernel's main
    thread, in order with cells (it is called from the settler thread);
    `report(text, is_error, path)` shows a save's result in the notebook
    (called on the main thread).

    Thread ownership: the kernel's main thread calls every public method
    but `stats`, which any thread may call (`%vt stats` runs on the kernel's
    `vt-verbs` worker: it copies the latencies in one C call); the observer
    and settler threads only reach `_Handler`, `_on_settled` and the
    copy-on-write `_paths` mapping.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        make_vt: Callable[[str], VT],
        schedule_main: Callable[[Callable[[], None]], None],
        report: Callable[[str, bool, str], None],
    ) -> None:
        self.engine = engine
        self._make_vt = make_vt
        self._schedule_main = schedule_main
        self._report = report
        self.ownership = Ownership()
        self._files: dict[str, LiveFile] = {}  # main thread only
        # match key (normcase: Windows and macOS compare names case-insensitively) -> the watched real path;
        # replaced whole on change, read by the observer thread
        self._paths: dict[str, str] = {}
        self._dirs: dict[str, ObservedWatch] = {}
        self._lock = threading.Lock()  # guards _settled and _scheduled
        self._settled: dict[str, _Settled] = {}
        self._scheduled: set[str] = set()
        self._missing: set[str] = set()
        self._not_a_file: dict[str, str] = {}  # path -> what it is now, reported once
        self._latencies: deque[float] = deque(maxlen=1024)
        self._observer: Any = None
        self._settler = _Settler(self._on_settled)
        self._closed = False

    # ----- main thread ------------------------------------------------------

    def watch(self, path: str) -> str:
        """Run the file once, here and now, then re-run it on every save. Returns a one-line summary.

        An error in the first run is reported (`report(text, True)`) and the
        file stays watched: the next good save applies.
        """
        if self._closed:
            raise VTError("invalid_command", "live files are closed")
        real = _resolve(path)
        if real in self._files:
            return f"already watching {path}"
        if not os.path.isfile(real):
            raise VTError("io_error", f"cannot watch {path}: no such file")
        live = LiveFile(real, self._make_vt(real), self.ownership)
        self._files[real] = live
        self._observe(real)  # before the first read, so no save is missed
        try:
            result = live.run(decode_source(_read_bytes(real)))
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            self._report(f"{os.path.basename(real)}: cannot read: {exc}", True, real)
            return f"watching {path} (it could not be read; the next save applies)"
        if not result.ok:
            self._report(result.text(), True, real)
            return f"watching {path} (its first run failed; fix it and save)"
        decl = live.declared
        return f"watching {path}: {len(decl.modules)} modules, {len(decl.connections)} connections (v{result.version})"

    def unwatch(self, path: str) -> str:
        """Stop watching. The modules the file made stay, no longer owned by it."""
        real = _resolve(path)
        live = self._files.pop(real, None)
        if live is None:
            watching = ", ".join(self.watched()) or "nothing"
            raise VTError("invalid_value", f"not watching {path} (watching: {watching})")
        self._unobserve(real)
        with self._lock:
            self._settled.pop(real, None)
        live.close()
        return f"stopped watching {path}; its modules stay"

    def watched(self) -> list[str]:
        return sorted(self._files)

    def file(self, path: str) -> LiveFile:
        """The `LiveFile` of a watched path (its namespace, declarations, last good text)."""
        return self._files[_resolve(path)]

    def stats(self) -> dict[str, Any]:
        """Save -> applied latency (first event of a save to the engine having applied it), in ms."""
        lat = sorted(self._latencies)
        return {
            "files": len(self._files),
            "saves_applied": len(lat),
            "latency_ms_p50": percentile(lat, 0.5),
            "latency_ms_p99": percentile(lat, 0.99),
            "latency_ms_max": round(lat[-1], 2) if lat else None,
        }

    def close(self) -> None:
        """Unwatch everything and stop the threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for real in list(self._files):
            self._files.pop(real).close()
        self._paths = {}
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._settler.is_alive():
            self._settler.stop()
            self._settler.join(timeout=5)

    def _apply_pending(self, real: str) -> None:
        """Runs on the main thread (via `schedule_main`): apply the newest settled text of one file."""
        with self._lock:
            self._scheduled.discard(real)
            settled = self._settled.pop(real, None)
        live = self._files.get(real)
        if settled is None or live is None:
            return
        name = os.path.basename(real)
        if settled.problem is not None:
            if self._not_a_file.get(real) != settled.problem:
                self._not_a_file[real] = settled.problem
                self._report(
                    f"{name} is now {settled.problem}, not a file; the engine keeps its last state; "
                    "watching for the file to come back",
                    True,
                    real,
                )
            return
        self._not_a_file.pop(real, None)
        if settled.data is None:
            if real not in self._missing:
                self._missing.add(real)
                self._report(f"{name} is gone; the engine keeps its last state; watching for it to come back", False, real)
            return
        self._missing.discard(real)
        try:
            text = decode_source(settled.data)
        except (UnicodeDecodeError, SyntaxError) as exc:
            self._report(f"{name}: cannot decode: {exc}; nothing applied", True, real)
            return
        if text == live.last_good_text:
            if live.last_failed:  # the user undid a broken edit
                live.last_failed = False
                self._report(f"{name}: back to the last good version (nothing to apply)", False, real)
            return
        try:
            result = live.run(text)
        except KeyboardInterrupt:  # the frontend's interrupt, outside the run's own transaction
            self._report(f"{name}: interrupted; nothing applied, the engine keeps its last good state", True, real)
            return
        if result.ok:
            self._latencies.append((time.monotonic() - settled.first) * 1000)
        self._report(result.text(), not result.ok, real)

    def _observe(self, real: str) -> None:
        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
            self._settler.start()
        directory = os.path.dirname(real)
        self._paths = {**self._paths, _match_key(real): real}
        if directory not in self._dirs:
            # Once `schedule` returns on a running observer, the inotify watch exists.
            self._dirs[directory] = self._observer.schedule(_Handler(self), directory, recursive=False)

    def _unobserve(self, real: str) -> None:
        self._paths = {k: v for k, v in self._paths.items() if v != real}
        self._settler.forget(real)
        directory = os.path.dirname(real)
        if not any(os.path.dirname(p) == directory for p in self._paths.values()):
            watch = self._dirs.pop(directory, None)
            if watch is not None:
                self._observer.unschedule(watch)

    # ----- settler thread ---------------------------------------------------

    def _on_settled(self, real: str, settled: _Settled) -> None:
        with self._lock:
            previous = self._settled.get(real)
            if previous is not None:  # not applied yet (a busy cell): keep the newest text, the oldest time
                settled = _Settled(settled.data, previous.first)
            self._settled[real] = settled
            if real in self._scheduled:
                return
            self._scheduled.add(real)
        try:
            self._schedule_main(lambda: self._apply_pending(real))
        except Exception:  # the kernel is going away: keep the text; a later save retries
            with self._lock:
                self._scheduled.discard(real)


def _match_key(path: str) -> str:
    """How an event's path is compared with a watched one.

    Observers report paths differently: inotify as given to `schedule`,
    FSEvents (macOS) through the real path (`/private/tmp/...` for
    `/tmp/...`), ReadDirectoryChangesW (Windows) with the case the file has
    on disk. Watched paths are real paths already; `normcase` makes the
    comparison case-insensitive where the file system is (Windows).
    """
    return os.path.normcase(os.path.normpath(path))


def _resolve(path: str) -> str:
    return os.path.normpath(os.path.realpath(os.path.expanduser(str(path))))


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


