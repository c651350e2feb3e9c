"""Running a watched file: its namespace, incremental re-runs, and reconciliation with the engine.

`LiveFile` runs a file in its own module namespace (with `vt` injected),
first whole, then, on each save, only what `analysis.plan` says. Every run is
one transaction:

- All `vt.*` commands of the run, and the removals that reconciliation adds,
  go to the engine as ONE atomic `batch` (`VT.batch()`). A SyntaxError, an
  exception or an invalid command (`VTError` at the line that made it)
  applies nothing: the engine keeps its last good state, the namespace is
  restored, patched functions get their old code back, and the next save is
  diffed against the last text that applied. Inside the file,
  `vt.snapshot()` does not yet see the writes of the run in progress.
- Declarations are recorded per statement. A statement that does not run
  again keeps declaring what it declared when it last ran, so only removed
  or re-run statements can stop declaring something.

Ownership (shared by all watched files of a kernel, see `Ownership`):

- A file owns every module and connection it declares with `vt.module` /
  `vt.connect`. Declaring something that exists (made by a cell, the GUI or
  another file) updates it and takes ownership: the last declarer owns it.
- After a run, what the file declared before and no longer declares is
  removed, in the same batch, but only if the file still owns it. Things
  the file never declared are never touched.
- Other commands in a file (`vt.set`, `vt.remove`, `vt.bpm`, ...) are plain
  commands: applied with the run, not owned.
- Unwatching a file releases its ownership; its modules stay.

Feedback loop: a change made elsewhere (a GUI slider) to a param the file
declares persists until a save re-runs the statement that declares it
(because it was edited, or reads something that was).

The file is the truth for what it declares (cells keep merge semantics):

- a param that a `vt.module(...)` line no longer gives returns to its
  type's default (params the file never gave are left alone);
- a module whose type the file changes is replaced (remove + add, as in a
  cell), and the connections the file still declares to or from it are
  declared again in the same batch, though their lines did not change.

Thread ownership: a `LiveFile` belongs to the kernel's main thread; every
method is called there.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import importlib.util
import linecache
import os
import sys
import time
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import vtkernel
from vtkernel.api import VT
from vtkernel.jsonpatch import to_json
from vtkernel.live.analysis import Facts, Plan, Statement, collector_paused, plan, split_statements
from vtkernel.protocol import VTError

_VTKERNEL_DIR = os.path.dirname(os.path.abspath(vtkernel.__file__)) + os.sep
Connection = tuple[str, str]


# --------------------------------------------------------------------------
# Ownership and declarations
# --------------------------------------------------------------------------


class Ownership:
    """Which watched file owns which module and connection. Main thread only.

    Modules and connections absent from it belong to nobody in particular
    (cells, the GUI): no file removes them unless it declared them first.
    """

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}
        self.connections: dict[Connection, str] = {}

    def claim(self, owner: str, decl: Declarations) -> None:
        for name in decl.modules:
            self.modules[name] = owner
        for conn in decl.connections:
            self.connections[conn] = owner

    def owns_module(self, owner: str, name: str) -> bool:
        return self.modules.get(name) == owner

    def owns_connection(self, owner: str, conn: Connection) -> bool:
        return self.connections.get(conn) == owner

    def release(self, owner: str, modules: Any = None, connections: Any = None) -> None:
        """Drop `owner`'s claims: the ones named, or all of them."""
        for name in list(self.modules) if modules is None else modules:
            if self.modules.get(name) == owner:
                del self.modules[name]
        for conn in list(self.connections) if connections is None else connections:
            if self.connections.get(conn) == owner:
                del self.connections[conn]


@dataclass
class Declarations:
    """What one statement declared the last time it ran."""

    modules: dict[str, None] = field(default_factory=dict)  # ordered set
    connections: dict[Connection, None] = field(default_factory=dict)
    params: dict[str, set[str]] = field(default_factory=dict)  # module -> the params `vt.module` gave it

    def add(self, other: Declarations) -> None:
        self.modules.update(other.modules)
        self.connections.update(other.connections)
        for name, given in other.params.items():
            self.params.setdefault(name, set()).update(given)


@dataclass
class _Record:
    """Per-statement memory kept between runs: its declarations and the object a def bound."""

    decl: Declarations = field(default_factory=Declarations)
    bound: Any = None


class FileVT:
    """The `vt` a watched file sees: the kernel's `VT` for that file, recording declarations per statement.

    Everything but `module`, `connect` and `batch` is the wrapped `VT`'s.
    Outside a run (a callback the file registered, called later) calls pass
    straight through and are not declarations.
    """

    def __init__(self, vt: VT) -> None:
        self._vt = vt
        self._decl: Declarations | None = None
        self.recreated: set[str] = set()  # modules this run removed and added again (a new type)

    @property
    def wrapped(self) -> VT:
        return self._vt

    def module(self, name: str, type: str, **params: Any) -> str:
        existing = self._vt._doc().modules.get(name) if self._decl is not None else None
        result = self._vt.module(name, type, **params)
        if self._decl is not None:
            self._decl.modules[name] = None
            self._decl.params.setdefault(name, set()).update(params)
            if existing is not None and existing.type != type:
                self.recreated.add(name)
        return result

    def connect(self, src: str, dst: str) -> None:
        self._vt.connect(src, dst)
        if self._decl is not None:
            self._decl.connections[(src, dst)] = None

    @contextlib.contextmanager
    def batch(self) -> Iterator[FileVT]:
        with self._vt.batch():
            yield self

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """The run's one atomic batch (`VT.batch()`; it flattens the batches `vt.module` emits)."""
        with self._vt.batch():
            yield

    @contextlib.contextmanager
    def _recording(self, decl: Declarations) -> Iterator[None]:
        self._decl = decl
        try:
            yield
        finally:
            self._decl = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vt, name)

    def __repr__(self) -> str:
        return repr(self._vt)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveError:
    """An error in a watched file, pointing at the file's line."""

    path: str
    lineno: int | None
    summary: str  # one line: "patch.py, line 3: [invalid_value] l.rate must be > 0, got -1"
    traceback: str  # the user's frames only, then the exception

    def text(self) -> str:
        return f"{self.summary}\n{self.traceback}".rstrip()


@dataclass(frozen=True)
class RunResult:
    """What one run of a watched file did."""

    path: str
    ok: bool
    version: int | None = None  # the engine's version after the run applied
    ran: tuple[int, ...] = ()  # first lines of the statements executed
    patched: tuple[str, ...] = ()  # functions patched in place
    removed_modules: tuple[str, ...] = ()
    removed_connections: tuple[Connection, ...] = ()
    restored: tuple[str, ...] = ()  # params back to their default, connections declared again
    error: LiveError | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        """The report shown to the user."""
        name = os.path.basename(self.path)
        if self.error is not None:
            kept = "" if self.version is None else f" (v{self.version})"
            return f"{self.error.text()}\n{name}: nothing applied; the engine keeps its last good state{kept}"
        if not self.ran:
            head = f"{name}: no change"
        else:
            lines = ", ".join(map(str, self.ran[:8])) + (" ..." if len(self.ran) > 8 else "")
            head = f"{name}: applied v{self.version}, ran line{'s' if len(self.ran) > 1 else ''} {lines}"
        parts = [head]
        if self.patched:
            parts.append("patched " + ", ".join(f"{n}()" for n in self.patched))
        if self.removed_modules:
            parts.append("removed " + ", ".join(self.removed_modules))
        if self.removed_connections:
            parts.append("disconnected " + ", ".join(f"{s}->{d}" for s, d in self.removed_connections))
        if self.restored:
            parts.append("; ".join(self.restored))
        return "; ".join(parts) + "".join(f"\n{n}" for n in self.notes)


# --------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------


class LiveFile:
    """One watched file: its module namespace, its last good statements and their declarations.

    Thread ownership: the kernel's main thread only (the file's code shares
    the kernel with cells and must never run concurrently with them).
    """

    def __init__(self, path: str, vt: VT, ownership: Ownership | None = None) -> None:
        self.path = os.path.abspath(path)
        self.vt = FileVT(vt)
        self.ownership = ownership if ownership is not None else Ownership()
        stem = os.path.splitext(os.path.basename(self.path))[0]
        self._module_name = _unique_module_name(stem)
        self.module = types.ModuleType(self._module_name)
        self.module.__file__ = self.path
        self.module.__dict__["vt"] = self.vt
        # Registered so that pickle and dataclasses can find the file's classes.
        sys.modules[self._module_name] = self.module
        self.last_good_text: str | None = None
        self.last_failed = False
        self._statements: list[Statement] = []
        self._records: list[_Record] = []
        self._facts: Facts = {}  # analyses of the last text split, by statement text
        self._running = False

    @property
    def namespace(self) -> dict[str, Any]:
        return self.module.__dict__

    @property
    def declared(self) -> Declarations:
        """Everything the file currently declares (the union of its statements' declarations)."""
        return _union(self._records)

    def read(self) -> str:
        with open(self.path, "rb") as f:
            return decode_source(f.read())

    def run(self, text: str | None = None) -> RunResult:
        """Apply a version of the file (default: read it now). Never raises for errors in the file."""
        if self._running:
            raise VTError(
                "invalid_command", f"{os.path.basename(self.path)} is already running (a file cannot watch itself)"
            )
        self._running = True
        try:
            return self._run(self.read() if text is None else text)
        finally:
            self._running = False

    def close(self) -> None:
        """Stop being a live file: release ownership (the modules stay) and the module's registration."""
        self.ownership.release(self.path)
        if sys.modules.get(self._module_name) is self.module:
            del sys.modules[self._module_name]

    # ----- one run ---------------------------------------------------------

    def _run(self, text: str) -> RunResult:
        t0 = time.perf_counter()
        try:
            statements = split_statements(text, self.path, self._facts)
            steps = plan(self._statements, statements)
            flags = _future_flags(statements)
            # Compile everything that will run before anything runs: a
            # compile-time error (`return` outside a function) applies nothing.
            with collector_paused():
                codes = self._compile(statements, steps, flags)
        except SyntaxError as exc:
            return self._failed(self._syntax_error(exc), t0)
        except ValueError as exc:  # e.g. a NUL byte in the source
            name = os.path.basename(self.path)
            return self._failed(LiveError(self.path, None, f"{name}: {exc}", f"ValueError: {exc}"), t0)
        _cache_source(self.path, text)
        notes: list[str] = []
        try:
            self.vt.wrapped.flush()  # so the run's batch starts from a settled state
        except VTError as exc:
            notes.append(f"(an earlier command from this file failed: {exc})")

        ns = self.namespace
        saved_ns = dict(ns)
        undo: list[tuple[types.FunctionType, dict[str, Any]]] = []
        records: list[_Record] = [
            self._records[steps.matched[i]] if i in steps.matched else _Record() for i in range(len(statements))
        ]
        fresh = Declarations()
        patched: list[str] = []
        removed: tuple[list[str], list[Connection]] = ([], [])
        restored: list[str] = []
        self.vt.recreated.clear()
        try:
            with self.vt._transaction():
                for i in steps.run:
                    rec = _Record()
                    with self.vt._recording(rec.decl):
                        rec.bound = self._execute(statements[i], codes[i], steps, i, undo, patched)
                    records[i] = rec
                    fresh.add(rec.decl)
                for name in steps.stale:
                    ns.pop(name, None)
                removed = self._reconcile(records)
                restored = self._restore(records)
            self.vt.wrapped.flush()
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            ns.clear()
            ns.update(saved_ns)
            for fn, attrs in reversed(undo):
                _restore_function(fn, attrs)
            failed = self._failed(self._exception(exc), t0, notes)
            if self.last_good_text is not None:  # what the live functions were compiled from
                _cache_source(self.path, self.last_good_text)
            return failed

        # Committed: the engine applied the batch.
        for i, j in steps.matched.items():
            delta = statements[i].lineno - self._statements[j].lineno
            if delta and i not in steps.run:
                _shift_lines(records[i].bound, delta, self.path)
        self.ownership.release(self.path, removed[0], removed[1])
        self.ownership.claim(self.path, fresh)
        self._statements, self._records = statements, records
        self.last_good_text, self.last_failed = text, False
        return RunResult(
            self.path,
            True,
            version=self._version(),
            ran=tuple(statements[i].lineno for i in steps.run),
            patched=tuple(patched),
            removed_modules=tuple(removed[0]),
            removed_connections=tuple(removed[1]),
            restored=tuple(restored),
            seconds=time.perf_counter() - t0,
            notes=tuple(notes),
        )

    def _compile(self, statements: list[Statement], steps: Plan, flags: int) -> dict[int, types.CodeType]:
        return {
            i: compile(
                ast.Module(body=[statements[i].node], type_ignores=[]),
                self.path,
                "exec",
                flags=flags,
                dont_inherit=True,
            )
            for i in steps.run
        }

    def _execute(
        self,
        stmt: Statement,
        code: types.CodeType,
        steps: Plan,
        index: int,
        undo: list[tuple[types.FunctionType, dict[str, Any]]],
        patched: list[str],
    ) -> Any:
        """Run one statement; patch a function in place when the plan says so. Returns what a def bound."""
        ns = self.namespace
        old_index = steps.patch.get(index)
        old: object = self._records[old_index].bound if old_index is not None else None
        target = stmt.name
        if target is not None and ns.get(target) is old and isinstance(old, types.FunctionType):
            exec(code, ns)
            new = ns[target]
            undo.append((old, _function_attrs(old)))
            _restore_function(old, _function_attrs(new))  # the new code, in the old object
            ns[target] = old
            patched.append(target)
            return old
        exec(code, ns)
        return ns.get(target) if target is not None else None

    def _reconcile(self, records: list[_Record]) -> tuple[list[str], list[Connection]]:
        """Inside the run's batch: remove what the file no longer declares and still owns."""
        before, now = self.declared, _union(records)
        gone_conns = [
            c for c in before.connections if c not in now.connections and self.ownership.owns_connection(self.path, c)
        ]
        gone_mods = [m for m in before.modules if m not in now.modules and self.ownership.owns_module(self.path, m)]
        removed_conns: list[Connection] = []
        removed_mods: list[str] = []
        vt = self.vt.wrapped
        for src, dst in gone_conns:
            if _tolerant(lambda s=src, d=dst: vt.disconnect(s, d)):
                removed_conns.append((src, dst))
        for name in gone_mods:
            if _tolerant(lambda n=name: vt.remove(n)):
                removed_mods.append(name)
        return removed_mods, removed_conns

    def _restore(self, records: list[_Record]) -> list[str]:
        """Inside the run's batch: make the engine agree with what the file still declares.

        - A param that a `vt.module` line gave before and gives no longer goes
          back to its type's default (in a watched file the file is the
          truth). Params the file never gave (set from a slider, a cell) are
          left alone, and so is a module the file no longer owns.
        - A module that this run gave a new type was removed and added
          again, which drops its connections. Those the file still declares
          are declared again, although their `vt.connect` lines did not run.
        """
        before, now = self.declared, _union(records)
        vt = self.vt.wrapped
        doc = vt._doc()
        registry = vt._engine.registry
        done: list[str] = []
        for name, given in now.params.items():
            dropped = before.params.get(name, set()) - given
            module = doc.modules.get(name)
            if not dropped or module is None or name in self.vt.recreated:
                continue
            if not self.ownership.owns_module(self.path, name) and name not in now.modules:
                continue
            specs = registry.get(module.type).params
            for param in sorted(dropped):
                spec = specs.get(param)
                if spec is None or module.params.get(param) == spec.default:
                    continue
                vt.set(f"{name}.{param}", to_json(spec.default))
                done.append(f"{name}.{param} = {to_json(spec.default)!r} (the default)")
        if self.vt.recreated:
            for src, dst in now.connections:
                ends = {src.partition(".")[0], dst.partition(".")[0]}
                if ends & self.vt.recreated and (src, dst) not in doc.connections:
                    vt.connect(src, dst)
                    done.append(f"{src}->{dst} connected again ({', '.join(sorted(ends & self.vt.recreated))} has a new type)")
        return done

    def _version(self) -> int | None:
        try:
            return self.vt.wrapped.version
        except VTError:
            return None

    # ----- errors ------------------------------------------------------------

    def _failed(self, error: LiveError, t0: float, notes: list[str] | None = None) -> RunResult:
        self.last_failed = True
        return RunResult(
            self.path,
            False,
            version=self._version(),
            error=error,
            seconds=time.perf_counter() - t0,
            notes=tuple(notes or ()),
        )

    def _syntax_error(self, exc: SyntaxError) -> LiveError:
        name = os.path.basename(self.path)
        exc.filename = self.path
        detail = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        return LiveError(self.path, exc.lineno, f"{name}, line {exc.lineno}: SyntaxError: {exc.msg}", detail)

    def _exception(self, exc: BaseException) -> LiveError:
        name = os.path.basename(self.path)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_VTKERNEL_DIR)]
        lineno = next((f.lineno for f in reversed(frames) if f.filename == self.path), None)
        if isinstance(exc, VTError):
            what = f"[{exc.code}] {exc.message}"
        elif isinstance(exc, KeyboardInterrupt):
            what = "interrupted (KeyboardInterrupt, from the interrupt button)"
        else:
            what = f"{type(exc).__name__}: {exc}"
        where = f"{name}, line {lineno}" if lineno is not None else name
        body = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames)) if frames else ""
        body += f"{type(exc).__name__}: {exc.message if isinstance(exc, VTError) else exc}"
        return LiveError(self.path, lineno, f"{where}: {what}", body)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------




def _union(records: list[_Record]) -> Declarations:
    out = Declarations()
    for rec in records:
        out.add(rec.decl)
    return out


def decode_source(data: bytes) -> str:
    """Bytes of a Python file to text, honouring a coding cookie and normalising newlines."""
    return importlib.util.decode_source(data)


def _tolerant(fn: Any) -> bool:
    """Run a removal; False if its target is already gone (removed by a cell, or with its module)."""
    try:
        fn()
    except VTError as exc:
        if exc.code in ("unknown_module", "unknown_port"):
            return False
        raise
    return True


_FUNCTION_ATTRS = ("__code__", "__defaults__", "__kwdefaults__", "__annotations__", "__doc__")


def _function_attrs(fn: types.FunctionType) -> dict[str, Any]:
    return {a: getattr(fn, a) for a in _FUNCTION_ATTRS}


def _restore_function(fn: types.FunctionType, attrs: dict[str, Any]) -> None:
    for a, v in attrs.items():
        setattr(fn, a, v)


def _shift_lines(obj: Any, delta: int, path: str) -> None:
    """Keep tracebacks right when an unchanged def or class moves in the file (its code is not recompiled)."""
    functions = [obj] if isinstance(obj, types.FunctionType) else []
    if isinstance(obj, type):
        functions = [getattr(v, "__func__", v) for v in vars(obj).values()]
    for fn in functions:
        if isinstance(fn, types.FunctionType) and fn.__code__.co_filename == path:
            fn.__code__ = _shift_code(fn.__code__, delta)


def _shift_code(code: types.CodeType, delta: int) -> types.CodeType:
    consts = tuple(_shift_code(c, delta) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


def _future_flags(statements: list[Statement]) -> int:
    flags = 0
    for s in statements:
        if isinstance(s.node, ast.ImportFrom) and s.node.module == "__future__":
            for alias in s.node.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
    return flags


def _cache_source(path: str, text: str) -> None:
    """Tracebacks show the text that ran, even after the file changes again on disk."""
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)


def _unique_module_name(stem: str) -> str:
    base = "vtlive_" + "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    name, n = base, 1
    while name in sys.modules:
        n += 1
        name = f"{base}_{n}"
    return name
