"""`SessionManager`: binds a running engine to a session file (`open`, `save`, `load`, `close`).

- `open PATH` takes the session lock, loads the file (falling back to the
  newest valid backup if it must), puts its document into the engine as a
  non-undoable change whose version continues from the file's, and starts
  the autosaving `vt-saver` thread. A missing file is created from the
  current document.
- `save` returns once the current version is durably on disk; `save PATH`
  is "save as": it writes PATH, then binds the session to it.
- `load PATH` replaces the document with a file's content as one new,
  undoable version; the bound session (if any) autosaves it as usual.
- `close` flushes the last version, stops the saver within a bound and
  releases the lock (emptying the lock file: the mark of a clean close).

Default resume mode
-------------------
A kernel resumes where it was when it restarts if one of these is set in
its environment (for example in the kernelspec's `env`):

- `VTKERNEL_SESSION=/path/to/show.vtsession`: open this file at start;
- `VTKERNEL_SESSION_DIR=/path/to/dir`: open `DIR/<notebook>.vtsession`,
  where `<notebook>` is the stem of `JPY_SESSION_NAME` (set by
  jupyter_server to the notebook's path), or `DIR/default.vtsession`.

`VTKERNEL_SESSION` wins if both are set. The kernel calls
`SessionManager.from_env(engine, report=...)` once the engine runs: it opens
that path (recovering from a crash if there was one) and reports the one
line `open` returns; if the session cannot be opened (locked, invalid) it
reports why and the kernel starts without a session.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vtkernel.engine.apply import LoadDocument
from vtkernel.engine.engine import Engine
from vtkernel.protocol import VTError
from vtkernel.session.format import Encoder
from vtkernel.session.lock import SessionLock, format_time
from vtkernel.session.saver import Saver
from vtkernel.session.store import FileOps, Loaded, SessionStore, age_text, check_session_path

ENV_SESSION = "VTKERNEL_SESSION"
ENV_SESSION_DIR = "VTKERNEL_SESSION_DIR"
SESSION_SUFFIX = ".vtsession"
ORIGIN = "session"  # the origin of the versions `open` and `load` publish


def default_session_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The session a kernel resumes at start, from the environment (see the module docstring)."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_SESSION, "").strip()
    if explicit:
        return _absolute(explicit)
    folder = env.get(ENV_SESSION_DIR, "").strip()
    if not folder:
        return None
    notebook = env.get("JPY_SESSION_NAME", "").strip()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(notebook).stem).strip("._") if notebook else ""
    return Path(os.path.realpath(os.path.expanduser(folder))) / f"{stem or 'default'}{SESSION_SUFFIX}"


@dataclass(frozen=True)
class SessionStatus:
    """A point-in-time view of the bound session, for `%vt session` and the like."""

    path: Path | None
    engine_version: int
    saved_version: int | None = None
    saved_at: float | None = None
    autosave_delay: float = 1.0
    failures: int = 0
    last_error: str | None = None
    writes: int = 0  # files written by this binding's saver

    @property
    def up_to_date(self) -> bool:
        return self.path is not None and self.saved_version == self.engine_version

    def __str__(self) -> str:
        if self.path is None:
            return f"no session open (engine at version {self.engine_version}); use `open PATH`"
        saved = "nothing saved yet" if self.saved_version is None else f"version {self.saved_version} on disk"
        if self.saved_at is not None:
            saved += f" (saved {age_text(time.time() - self.saved_at)})"
        state = "up to date" if self.up_to_date else f"engine at version {self.engine_version}, saving"
        line = f"session {self.path}: {saved}, {state}; autosave within {self.autosave_delay:g} s"
        if self.failures:
            line += f"; the last {self.failures} save(s) failed: {self.last_error}"
        return line


@dataclass(frozen=True)
class _Binding:
    path: Path
    lock: SessionLock
    store: SessionStore
    saver: Saver


class SessionManager:
    """Binds one engine to at most one session file at a time.

    Owner: the kernel. `open`, `save`, `load`, `close` may be called from any
    thread except the engine's and `vt-saver` (the main shell and the comm
    hub both run commands); they are serialized by a lock that neither the
    engine nor the saver ever takes. `status` and `path` read one reference
    and may be called from any thread. `report` is called from `vt-saver`
    (background save failures) and must be thread-safe.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        report: Callable[[str], None],
        autosave_delay: float = 1.0,
        file_ops: FileOps | None = None,
    ) -> None:
        self.engine = engine
        self.autosave_delay = autosave_delay
        self._report = report
        self._ops = file_ops
        self._lock = threading.RLock()
        self._binding: _Binding | None = None

    @classmethod
    def from_env(
        cls,
        engine: Engine,
        *,
        report: Callable[[str], None],
        environ: Mapping[str, str] | None = None,
        autosave_delay: float = 1.0,
        file_ops: FileOps | None = None,
    ) -> SessionManager:
        """A manager that has opened the default session, if the environment names one."""
        manager = cls(engine, report=report, autosave_delay=autosave_delay, file_ops=file_ops)
        env = os.environ if environ is None else environ
        path = default_session_path(env)
        if path is not None:
            try:
                if not env.get(ENV_SESSION, "").strip():
                    path.parent.mkdir(parents=True, exist_ok=True)
                report(manager.open(path))
            except (VTError, OSError) as exc:
                reason = exc.message if isinstance(exc, VTError) else f"{path.parent}: {exc.strerror}"
                report(f"session {path} not resumed: {reason}")
        return manager

    @property
    def path(self) -> Path | None:
        binding = self._binding
        return None if binding is None else binding.path

    # ----- commands -----------------------------------------------------------

    def open(self, path: str | os.PathLike[str]) -> str:
        """Bind to `path`: load it (or recover, or create it), lock it, autosave. One line about what happened."""
        target = _resolve(path)
        with self._lock:
            old = self._binding
            if old is not None and old.path == target:
                status = old.saver.status()
                return f"{target} is already open (version {status.saved_version} on disk)"
            lock = SessionLock(target)
            takeover = lock.acquire()
            try:
                store = SessionStore(target, self.engine.registry, ops=self._ops)
                loaded = store.load(repair=True)
            except BaseException:
                lock.release()
                raise
            notes: list[str] = []
            if takeover is not None and takeover.dead and loaded is not None:
                notes.append(
                    f"recovered from crash: version {loaded.version} saved at {format_time(loaded.saved_at)} "
                    f"({takeover.describe()})"
                )
            elif takeover is not None:
                notes.append(takeover.describe())
            if loaded is not None and loaded.warning:
                notes.append(loaded.warning)
            if old is not None:
                # The old file gets the current document before the engine's changes.
                notes.append(self._unbind(old, 5.0))
            try:
                saved, main = self._adopt(store, loaded)
            except BaseException:
                lock.release()
                raise
            saved_at = loaded.saved_at if loaded is not None else time.time()
            saver = Saver(
                self.engine,
                store,
                report=self._report,
                delay=self.autosave_delay,
                saved_version=saved,
                saved_at=saved_at,
            )
            self._binding = _Binding(target, lock, store, saver.start())
            if saved is None:  # recovered from a backup: make the main file good again now
                try:
                    saver.flush()
                except VTError as exc:
                    notes.append(exc.message)
            notes.append(main)
            return "; ".join(notes)

    def _adopt(self, store: SessionStore, loaded: Loaded | None) -> tuple[int | None, str]:
        """Put the loaded document into the engine (or create the file); (version on disk, summary)."""
        autosave = f"autosave within {self.autosave_delay:g} s of each change"
        if loaded is None:
            snap = self.engine.snapshot
            store.remove_stale_temps()
            store.save(Encoder().encode(snap.version, snap.doc), snap.version)
            return snap.version, f"created {store.path} at version {snap.version}; {autosave}"
        command = LoadDocument(loaded.document, undoable=False, version_floor=loaded.version, clear_history=True)
        outcome = self.engine.call(command, origin=ORIGIN)
        if outcome.error is not None:
            raise outcome.error
        on_disk = loaded.version if loaded.source == store.path else None
        modules = len(loaded.document.modules)
        age = age_text(time.time() - loaded.saved_at)
        return on_disk, f"opened {store.path}: version {outcome.version}, {modules} modules, saved {age}; {autosave}"

    def save(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 10.0) -> str:
        """Save now and return once it is durably on disk; with `path`, save as `path` and bind to it."""
        with self._lock:
            binding = self._binding
            if path is not None and (binding is None or binding.path != _resolve(path)):
                return self._save_as(_resolve(path), timeout)
            if binding is None:
                raise VTError("invalid_command", "no session is open: use `open PATH` or `save PATH`")
            version = binding.saver.flush(timeout)
            return f"saved {binding.path} at version {version}"

    def _save_as(self, target: Path, timeout: float) -> str:
        lock = SessionLock(target)
        lock.acquire()  # a takeover is not news here: the file is about to be overwritten
        try:
            store = SessionStore(target, self.engine.registry, ops=self._ops)
            store.remove_stale_temps()
            snap = self.engine.snapshot
            notes = store.save(Encoder().encode(snap.version, snap.doc), snap.version)
        except BaseException:
            lock.release()
            raise
        old = self._binding
        if old is not None:
            notes.append(self._unbind(old, timeout))
        saver = Saver(
            self.engine,
            store,
            report=self._report,
            delay=self.autosave_delay,
            saved_version=snap.version,
            saved_at=time.time(),
        )
        self._binding = _Binding(target, lock, store, saver.start())
        return "; ".join([*notes, f"saved as {target} at version {snap.version}; autosaving there from now on"])

    def load(self, path: str | os.PathLike[str]) -> str:
        """Replace the document with the content of `path`, as one new undoable version."""
        target = _resolve(path)
        with self._lock:
            loaded = SessionStore(target, self.engine.registry, ops=self._ops).load(repair=False)
            if loaded is None:
                raise VTError("io_error", f"cannot load {target}: no such file")
            before = self.engine.version
            outcome = self.engine.call(LoadDocument(loaded.document, undoable=True), origin=ORIGIN)
            if outcome.error is not None:
                raise outcome.error
            if outcome.version == before:
                line = f"{target} (version {loaded.version}) is the same as the current document; nothing changed"
            else:
                modules = len(loaded.document.modules)
                line = (
                    f"loaded {target} (saved version {loaded.version}, {modules} modules) as version "
                    f"{outcome.version}; `undo` brings back the previous patch"
                )
            return line if loaded.warning is None else f"{loaded.warning}; {line}"

    def close(self, timeout: float = 5.0) -> str:
        """Save the last version, stop the saver (within `timeout`) and release the lock."""
        with self._lock:
            binding = self._binding
            if binding is None:
                return "no session is open"
            return self._unbind(binding, timeout)

    def _unbind(self, binding: _Binding, timeout: float) -> str:
        error = binding.saver.stop(timeout, flush=True)
        self._binding = None
        status = binding.saver.status()
        name = binding.path
        if binding.saver.alive:
            # Still writing (a hung disk?): keep the lock so no other kernel writes
            # under it; it is released when this process exits.
            return (
                f"{name}: the saver did not stop within {timeout:g} s; the session stays locked until this kernel exits"
            )
        binding.lock.release()
        if error is not None:
            return f"closed {name}, but its last changes are not saved: {error.message}"
        return f"closed {name} at version {status.saved_version}"

    def status(self) -> SessionStatus:
        binding = self._binding
        version = self.engine.version
        if binding is None:
            return SessionStatus(None, version, autosave_delay=self.autosave_delay)
        s = binding.saver.status()
        return SessionStatus(
            binding.path, version, s.saved_version, s.saved_at, self.autosave_delay, s.failures, s.last_error, s.writes
        )

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SessionManager {self.status()}>"


def _resolve(path: str | os.PathLike[str]) -> Path:
    """Absolute, with links in the directories resolved, and the file itself as given.

    The file must not be a link (`check_session_path` refuses one): following
    it would make a save replace whatever the link points to.
    """
    resolved = _absolute(path)
    check_session_path(resolved)
    return resolved


def _absolute(path: str | os.PathLike[str]) -> Path:
    given = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    return Path(os.path.realpath(given.parent)) / given.name


__all__ = ["ENV_SESSION", "ENV_SESSION_DIR", "SessionManager", "SessionStatus", "default_session_path"]
