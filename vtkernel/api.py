"""`vt`: the Python API that cells and watched files use (SPEC §4).

Calls are declarative and idempotent: `vt.module("lfo1", "lfo", rate=2)`
creates the module or updates its params in place, so re-running a cell or a
script is always safe.

Each call is checked at once against the state this caller will see (the
current snapshot plus its own not-yet-applied commands), so a mistake raises
`VTError` on the line that made it; then the command is queued without
waiting for the engine. `flush()` (run by the kernel when a cell ends, and
by `snapshot()`) waits until everything queued is applied, which gives
read-your-writes, and raises the first error the engine reported if the
state moved under us in between.

Thread ownership: a `VT` belongs to one thread (the kernel's main thread for
cells and watched files); other shells reach the engine through the hub.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from vtkernel.engine.apply import apply_to_document
from vtkernel.engine.document import Document, Snapshot
from vtkernel.engine.engine import Engine, Mailbox
from vtkernel.jsonpatch import to_json
from vtkernel.language import ShellAction, help_text, parse_get, parse_line
from vtkernel.protocol import (
    AddModule,
    Batch,
    Connect,
    Disconnect,
    Play,
    Redo,
    RemoveModule,
    SetBpm,
    SetLink,
    SetMeter,
    SetParam,
    Stop,
    Undo,
    VTError,
    parse_command,
)

Service = Callable[..., Any]


class EngineTimeout(VTError, TimeoutError):
    """`flush` gave up waiting for the engine: one `internal_error` line in the cell, no traceback.

    A `VTError`, so the kernel's end-of-cell flush fails the cell the same way.
    """

    def __init__(self, message: str) -> None:
        super().__init__("internal_error", message)


# Commands one `VT` may have queued that the engine has not applied yet. A cell that sets a
# param in a tight loop can queue faster than the engine applies while other threads share
# the GIL; past this many it waits for the engine to work off half of them. Other shells'
# commands, queued behind the cell's, then wait at most this many applies (a few ms each at worst),
# and the queue and this VT's mailbox stay bounded.
IN_FLIGHT = 256
CATCH_UP_SECONDS = 30.0  # a catch-up wait past this raises EngineTimeout, as `flush` does


class VT:
    """The engine's Python face. See the module docstring for the rules."""

    def __init__(self, engine: Engine, origin: str = "cell", services: dict[str, Service] | None = None) -> None:
        """`services`: the kernel's verbs (`open`, `watch`, ...), shared by every `VT` of one kernel."""
        self._engine = engine
        self.origin = origin
        self._box = Mailbox()
        self._pending = 0  # commands queued since the last flush
        self._sent = 0  # commands ever queued with `_box` as their reply: flush waits for that many outcomes
        self._errors: list[VTError] = []  # engine errors taken from `_box` by a catch-up, raised by `flush`
        self._work: Document | None = None  # predicted document while commands are pending
        self._batch: list[BaseModel] | None = None
        self._services: dict[str, Service] = {} if services is None else services

    # ----- declarations (idempotent) -------------------------------------

    def module(self, name: str, type: str, /, **params: Any) -> str:
        """Declare a module: create it, or update the params that differ. Returns its name."""
        doc = self._doc()
        existing = doc.modules.get(name)
        if existing is None:
            self.command(AddModule(name=name, type=type, params=params or None))
        elif existing.type != type:
            # A new type for an old name: replace it (its connections go with it).
            self.command(Batch(commands=[RemoveModule(name=name), AddModule(name=name, type=type, params=params or None)]))
        elif params:
            sets = [SetParam(module=name, param=p, value=v) for p, v in params.items()]
            self.command(sets[0] if len(sets) == 1 else Batch(commands=sets))
        return name

    @staticmethod
    def p(text: str) -> Any:
        """Mini-notation to a Pattern: `vt.p("bd*2 [~ sd]")` is `vtkernel.patterns.mini(...)`.

        The rest of the pattern language is imported, never injected:
        `from vtkernel.patterns import s, n, note, stack, cat, sine, rand, ...`
        (see `vtkernel.patterns`); `vt.patterns` is that module.
        """
        from vtkernel.patterns import mini

        return mini(text)

    @property
    def patterns(self) -> Any:
        """The module `vtkernel.patterns` (Strudel's functions: `vt.patterns.s("bd*2")`)."""
        import vtkernel.patterns

        return vtkernel.patterns

    def connect(self, src: str, dst: str) -> None:
        """Declare a connection `MODULE.OUT -> MODULE.IN` (a no-op if it exists)."""
        self.command(Connect(src=src, dst=dst))

    def disconnect(self, src: str, dst: str) -> None:
        self.command(Disconnect(src=src, dst=dst))

    def scsynth(self, name: str = "scsynth", /, *, connect: str | list[str] | None = None, **params: Any) -> str:
        """Declare a `scsynth` output (SuperCollider's server, default 127.0.0.1:57110) and what plays through it.

        `connect`: the pattern modules whose events it plays (names, or `MODULE.PORT`);
        by default every pattern module whose output goes nowhere yet. Idempotent, like `module`.
        Without sclang running, start the server as docs/scsynth.md shows; `%vt doctor` checks it.
        """
        return self._output(name, "scsynth", connect, params)

    def superdirt(self, name: str = "superdirt", /, *, connect: str | list[str] | None = None, **params: Any) -> str:
        """Declare a `superdirt` output (SuperDirt's `/dirt/play`, default 127.0.0.1:57120) and what plays through it.

        `connect`: the pattern modules whose events it plays (names, or `MODULE.PORT`);
        by default every pattern module whose output goes nowhere yet. Idempotent, like `module`.
        Params: `host`, `port`, `orbit` (for events that name none). The field mapping is in docs/outputs.md.
        """
        return self._output(name, "superdirt", connect, params)

    def _output(self, name: str, type: str, connect: str | list[str] | None, params: dict[str, Any]) -> str:
        """Declare an output module and connect sources to its `in`, in one batch."""
        with self.batch():
            self.module(name, type, **params)
            doc = self._doc()
            if connect is None:
                used = {src.partition(".")[0] for src, _ in doc.connections.keys()}
                registry = self._engine.registry
                sources = [
                    f"{m}.out"
                    for m, mod in sorted(doc.modules.items())
                    if m not in used and mod.type in registry and registry.get(mod.type).role() == "pattern"
                ]
            else:
                sources = [s if "." in s else f"{s}.out" for s in ([connect] if isinstance(connect, str) else connect)]
            for src in sources:
                self.connect(src, f"{name}.in")
        return name

    def remove(self, name: str) -> None:
        self.command(RemoveModule(name=name))

    def set(self, target: str, value: Any, quantize: str | None = None) -> None:
        """`vt.set("lfo1.rate", 3)`: set one param."""
        module, _, param = target.partition(".")
        self.command(SetParam(module=module, param=param, value=value, quantize=quantize))

    def get(self, target: str) -> Any:
        module, _, param = target.partition(".")
        return _param(self.snapshot(), module, param)

    def bpm(self, bpm: float) -> None:
        self.command(SetBpm(bpm=bpm))

    def link(self, on: bool = True, *, sync: bool = False) -> None:
        """Join (or, with `False`, leave) an Ableton Link session: tempo, beat and phase follow the session.

        A bar here starts with the session's bar (quantum = the meter). `sync=True` also shares
        play and stop with the session (Link's start/stop sync). Needs the `aalink` package
        (`pip install 'vtkernel[link]'`). See docs/link.md.
        """
        self.command(SetLink(link=bool(on), start_stop=bool(sync) and bool(on)))

    def meter(self, beats: int) -> None:
        """Beats per bar (1..64): where `@bar` lands and how long a pattern's default cycle is."""
        self.command(SetMeter(meter=beats))

    def play(self) -> None:
        self.command(Play())

    def stop(self) -> None:
        self.command(Stop())

    def undo(self) -> int:
        return self._now(Undo())

    def redo(self) -> int:
        return self._now(Redo())

    def register(self, cls: type) -> type:
        """Register a module type defined in a cell or a watched file (usable as a decorator).

        Registering a class again with the same `type_name` hot-swaps live
        instances between two ticks; their params stay (they live in the document).
        """
        self._engine.registry.register(cls)
        hook = self._services.get("registered")
        if hook is not None:
            hook(cls)
        return cls

    # ----- reading -----------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current immutable snapshot (after this caller's own commands are applied)."""
        self.flush()
        return self._engine.snapshot

    def at(self, version: int) -> Snapshot:
        """An older version's snapshot, while the history ring holds it."""
        return self._engine.at(version)

    @property
    def version(self) -> int:
        return self.snapshot().version

    # ----- raw commands, batches, the command language ---------------------

    def command(self, cmd: BaseModel | dict[str, Any]) -> None:
        """Check one command against what this caller sees, then queue it."""
        if isinstance(cmd, dict):
            cmd = parse_command(cmd)
        if isinstance(cmd, (Undo, Redo)):
            self._now(cmd)
            return
        if self._batch is not None:
            self._work, _ = apply_to_document(self._doc(), cmd, self._engine.registry)
            # A batch inside a batch is flattened: the engine accepts one level only.
            self._batch.extend(cmd.commands if isinstance(cmd, Batch) else [cmd])
            return
        self._work, _ = apply_to_document(self._doc(), cmd, self._engine.registry)
        self._pending += 1
        self._sent += 1
        self._engine.submit(cmd, origin=self.origin, reply=self._box)
        if self._sent - self._box.received > IN_FLIGHT:
            self._catch_up()

    def _catch_up(self) -> None:
        """Wait until at most half of `IN_FLIGHT` of this VT's commands are unapplied; keep their errors for `flush`.

        The VT's own thread (a cell's or a watched file's main thread), never the engine thread,
        which would wait here for itself until `CATCH_UP_SECONDS` ran out.
        """
        if not self._box.wait_for(self._sent - IN_FLIGHT // 2, CATCH_UP_SECONDS):
            missing = self._sent - self._box.received
            raise EngineTimeout(
                f"the engine has not applied {missing} of this cell's queued commands within {CATCH_UP_SECONDS:g} s; "
                "they stay queued, and the state may not show them yet"
            )
        self._errors.extend(o.error for o in self._box.take_all() if o.error is not None)

    @contextlib.contextmanager
    def batch(self) -> Iterator[VT]:
        """Collect the commands of a block and apply them as one atomic batch."""
        if self._batch is not None:
            yield self  # nested: part of the outer batch
            return
        self._batch = []
        saved = self._work
        try:
            yield self
        except BaseException:
            self._batch, self._work = None, saved
            raise
        commands, self._batch = self._batch, None
        self._work = saved
        if commands:
            self.command(Batch(commands=commands))

    def run(self, text: str) -> Any:
        """Run command-language text: one line, or several as one atomic batch.

        Returns what to show: text (`get`, `state`, ...), an object to display (`panel`), or None.
        """
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if len(lines) > 1:
            parsed = [parse_line(ln) for ln in lines]
            commands = [p for p in parsed if isinstance(p, BaseModel)]
            if len(commands) != len(parsed):
                raise VTError("invalid_command", "a %%vt batch may hold only engine commands (add, set, connect, ...)")
            self.command(Batch(commands=commands))
            self.flush()
            return None
        if not lines:
            return None
        parsed_line = parse_line(lines[0])
        if parsed_line is None:
            return None
        if isinstance(parsed_line, (Undo, Redo)):
            return self._undo_text(parsed_line.op, self._now(parsed_line))
        if isinstance(parsed_line, BaseModel):
            self.command(parsed_line)
            self.flush()
            return None
        return self.action(parsed_line)

    def action(self, action: ShellAction) -> Any:
        """Carry out a non-engine verb (state, get, open, ...): text, an object to display, or None."""
        verb = action.verb
        if verb == "state":
            return self.snapshot().to_json_text()
        if verb == "get":
            module, param = parse_get(action)
            return json.dumps(_param(self.snapshot(), module, param))
        if verb == "help":
            return help_text(action.args[0] if action.args else None)
        if verb == "history":
            return self.history_text(int(action.args[0]) if action.args else 20)
        if verb == "stats":
            return format_stats(self.stats())
        result = self._service(verb, *action.args)
        return result if result is None or hasattr(result, "_repr_mimebundle_") or hasattr(result, "_ipython_display_") else str(result)

    def _undo_text(self, verb: str, version: int) -> str:
        """`undo -> v12: lfo1.rate 3.0 -> 2.0`: what an undo or redo changed, read from the history."""
        hist = self._engine.history()
        for i in range(len(hist) - 1, 0, -1):
            after = hist[i]
            if after.version == version and after.change is not None:
                lines = describe_paths(hist[i - 1].doc, after.doc, after.change.paths)
                shown = "; ".join(lines[:6]) + (f"; ... and {len(lines) - 6} more" if len(lines) > 6 else "")
                return f"{verb} -> v{version}: {shown or 'nothing changed'}"
        return f"{verb} -> v{version}"

    def history_text(self, n: int = 20) -> str:
        import datetime

        lines = []
        for snap in self._engine.history()[-n:]:
            ch = snap.change
            if ch is None:
                lines.append(f"v{snap.version}  (start)")
                continue
            when = datetime.datetime.fromtimestamp(ch.time).strftime("%H:%M:%S")
            what = ", ".join("/".join(p) for p in ch.paths[:4]) + (" ..." if len(ch.paths) > 4 else "")
            if ch.summary:
                what = f"{ch.summary}: {what}"
            lines.append(f"v{snap.version}  {when}  {ch.origin:<10} {what}")
        return "\n".join(lines)

    # ----- synchronisation ----------------------------------------------------

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every command this `VT` queued is applied; raise the first engine error, if any.

        It waits for its own outcomes (one per command, in its mailbox), so
        commands other threads submit meanwhile can neither hurry nor delay it.
        Raises `EngineTimeout` if they have not all come back within `timeout`.
        """
        if self._pending:
            if not self._box.wait_for(self._sent, timeout):
                missing = self._sent - self._box.received
                raise EngineTimeout(
                    f"the engine has not applied {missing} of this cell's commands within {timeout:g} s; "
                    "they stay queued, and the state may not show them yet"
                )
            self._pending = 0
            self._work = None
        errors = self._errors + [o.error for o in self._box.take_all() if o.error is not None]
        self._errors = []
        if errors:
            raise errors[0]

    def _now(self, cmd: BaseModel) -> int:
        self.flush()
        outcome = self._engine.call(cmd, origin=self.origin)
        if outcome.error is not None:
            raise outcome.error
        return outcome.version

    def _doc(self) -> Document:
        return self._work if self._work is not None else self._engine.snapshot.doc

    # ----- kernel services (sessions, live files, GUI) ------------------------

    def _service(self, verb: str, *args: Any) -> Any:
        self.flush()
        fn = self._services.get(verb)
        if fn is None:
            raise VTError("invalid_command", f"'{verb}' is not available in this kernel yet")
        return fn(*args)

    def open(self, path: str) -> Any:
        return self._service("open", str(path))

    def save(self, path: str | None = None) -> Any:
        return self._service("save", *(() if path is None else (str(path),)))

    def load(self, path: str) -> Any:
        return self._service("load", str(path))

    def close_session(self) -> Any:
        """Save the session file one last time and release it (another kernel may then open it)."""
        return self._service("close")

    def session(self) -> str:
        """One line: the open session file, its saved version and autosave state."""
        return str(self._service("session"))

    def watch(self, path: str) -> Any:
        return self._service("watch", str(path))

    def unwatch(self, path: str) -> Any:
        return self._service("unwatch", str(path))

    def sync(self, timeout: float = 2.0) -> str:
        """Apply pending saves of watched files now (they otherwise apply between cells)."""
        return str(self._service("sync", timeout))

    def script(self) -> str:
        return str(self._service("script"))

    def stats(self) -> Any:
        """The kernel's figures as a dict of sections (`%vt stats` prints them formatted)."""
        return self._service("stats")

    def graph(self) -> Any:
        """An SVG picture of the patch: modules, their ports, connections."""
        return self._service("graph")

    def recorded(self, name: str) -> list[Any]:
        """What recorder `name` received: `(wall-clock time, beat, value)`, oldest first."""
        return list(self._service("recorded", name))

    def timeline(self, name: str | None = None) -> Any:
        """An SVG timeline of recorded events (one recorder, or all)."""
        return self._service("timeline", *(() if name is None else (name,)))

    def lookahead(self, seconds: float) -> Any:
        """How far ahead events are sent (default 50 ms; timetags keep them exact)."""
        return self._service("lookahead", seconds)

    def panel(self) -> Any:
        return self._service("panel")

    def __repr__(self) -> str:
        snap = self._engine.snapshot
        return f"<vt: engine v{snap.version}, {len(snap.doc.modules)} modules; help: %vt help>"


def _show(value: Any) -> str:
    text = json.dumps(to_json(value))
    return text if len(text) <= 40 else text[:37] + "..."


def describe_paths(before: Document, after: Document, paths: Any) -> list[str]:
    """Short lines for what changed at `paths` between two documents: `lfo1.rate 3.0 -> 2.0`, `rm lfo2`."""
    out: list[str] = []
    for path in paths:
        head = path[0]
        if head == "clock" and len(path) == 2:
            out.append(f"{path[1]} {_show(before.get_path(path))} -> {_show(after.get_path(path))}")
        elif head == "modules" and len(path) == 4:
            out.append(f"{path[1]}.{path[3]} {_show(before.get_path(path))} -> {_show(after.get_path(path))}")
        elif head == "modules" and len(path) == 2:
            old, new = before.modules.get(path[1]), after.modules.get(path[1])
            if new is None:
                out.append(f"rm {path[1]}")
            elif old is None:
                out.append(f"add {path[1]} {new.type}")
            else:
                out.append(f"{path[1]} is a {new.type} again" if old.type != new.type else f"{path[1]} params")
        elif head == "connections" and len(path) == 3:
            key = (path[1], path[2])
            if (key in after.connections) != (key in before.connections):
                out.append(f"{'connect' if key in after.connections else 'disconnect'} {path[1]} {path[2]}")
        elif head == "connections":
            gone = [k for k in before.connections.keys() if k not in after.connections]
            came = [k for k in after.connections.keys() if k not in before.connections]
            out += [f"disconnect {s} {d}" for s, d in sorted(gone)] + [f"connect {s} {d}" for s, d in sorted(came)]
        else:
            out.append("/".join(path))
    return list(dict.fromkeys(out))


def format_stats(stats: Any) -> str:
    """`%vt stats`: one block per section, one aligned `name  value` line per figure."""
    lines: list[str] = []
    for section, values in stats.items():
        flat = list(_flatten(values)) if isinstance(values, dict) else [("", values)]
        lines.append(str(section))
        width = max((len(k) for k, _ in flat), default=0)
        lines += [f"  {k:<{width}}  {_figure(v)}".rstrip() for k, v in flat]
    return "\n".join(lines)


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_figure(v) for v in value) or "-"
    return str(value)


def _param(snap: Snapshot, module: str, param: str) -> Any:
    m = snap.doc.modules.get(module)
    if m is None:
        raise VTError("unknown_module", f"no module named {module!r}")
    if param not in m.params:
        raise VTError("unknown_param", f"{module} ({m.type}) has no param {param!r}; params: {', '.join(m.params)}")
    return to_json(m.params[param])
