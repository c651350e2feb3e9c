"""Pure update functions: `(state, command) -> (state, changed paths)` or VTError.

No threads, no clocks, no I/O: the engine thread calls these, and so do
tests and producers that want to check a command before queueing it. Every
function leaves its input untouched (the documents are immutable), so a
failing `batch` changes nothing by construction.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import immutables

from vtkernel.engine.document import Clock, Document, Module, Path, document_from_json
from vtkernel.engine.schema import Registry
from vtkernel.jsonpatch import to_json
from vtkernel.protocol import (
    NAME_RE,
    PORT_RE,
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
    find_unencodable,
)

BPM_MIN, BPM_MAX = 20.0, 999.0
METER_MIN, METER_MAX = 1, 64
UNDO_LIMIT = 500
# Consecutive set_param commands on one param from one origin within this
# window are one undo step, so undo reverts a whole slider drag.
UNDO_MERGE_SECONDS = 0.5

Changes = list[Path]


@dataclass(frozen=True, slots=True)
class LoadDocument:
    """Internal command (sessions): replace the patch with a loaded document.

    `undoable` makes it one undo step (`load`); `version_floor` makes the
    next version at least that number (`open` of a saved session, so versions
    never go back across restarts).
    """

    document: Document
    undoable: bool = True
    version_floor: int = 0
    keep_transport: bool = True
    # `open` of another session: undo must not bring back the previous session's document.
    clear_history: bool = False
    op: str = "load_document"


# --------------------------------------------------------------------------
# Undo history: a persistent stack (cons cells), so EditState stays immutable
# and pushing costs O(1).
# --------------------------------------------------------------------------


class UndoEntry(NamedTuple):
    before: Document
    paths: tuple[Path, ...]
    origin: str
    time: float
    merge_key: tuple[str, str, str] | None = None  # (origin, module, param) of a set_param


class Stack(NamedTuple):
    top: UndoEntry
    rest: Stack | None
    depth: int


def _push(stack: Stack | None, entry: UndoEntry) -> Stack:
    depth = 1 if stack is None else stack.depth + 1
    if depth > 2 * UNDO_LIMIT:  # amortised O(1): trim to the limit once in a while
        stack = _trim(stack, UNDO_LIMIT - 1)
        depth = UNDO_LIMIT
    return Stack(entry, stack, depth)


def _trim(stack: Stack | None, keep: int) -> Stack | None:
    items: list[UndoEntry] = []
    while stack is not None and len(items) < keep:
        items.append(stack.top)
        stack = stack.rest
    out: Stack | None = None
    for i, entry in enumerate(reversed(items)):
        out = Stack(entry, out, i + 1)
    return out


class EditState(NamedTuple):
    """The engine's whole mutable-by-replacement world: the document and its undo/redo stacks.

    NamedTuples here (and for `Document`, `UndoEntry`, `Stack`): immutable like
    frozen dataclasses, and about half the cost to build on every command.
    """

    doc: Document
    undo: Stack | None = None
    redo: Stack | None = None


# --------------------------------------------------------------------------
# Document-level operations
# --------------------------------------------------------------------------


def add_module(doc: Document, cmd: AddModule, reg: Registry) -> tuple[Document, Changes]:
    if cmd.name in doc.modules:
        raise VTError("duplicate_name", f"a module named {cmd.name!r} already exists; use set or remove it first")
    mtype = reg.get(cmd.type)
    given = cmd.params or {}
    for pname in given:
        if pname not in mtype.params:
            raise VTError("unknown_param", f"{cmd.type} has no param {pname!r}; params: {', '.join(mtype.params)}")
    params = {
        pname: spec.validate(cmd.name, pname, given[pname]) if pname in given else spec.default
        for pname, spec in mtype.params.items()
    }
    module = Module(mtype.type_name, immutables.Map(params))
    return Document(doc.clock, doc.modules.set(cmd.name, module), doc.connections), [("modules", cmd.name)]


def remove_module(doc: Document, cmd: RemoveModule) -> tuple[Document, Changes]:
    _module(doc, cmd.name)
    changes: Changes = [("modules", cmd.name)]
    dropped = doc.connections.of_module(cmd.name)  # its own connections only: no scan of the others
    changes.extend(("connections", s, d) for s, d in dropped)
    return Document(doc.clock, doc.modules.delete(cmd.name), doc.connections.remove_all(dropped)), changes


def set_param(doc: Document, cmd: SetParam, reg: Registry) -> tuple[Document, Changes]:
    module = _module(doc, cmd.module)
    spec = reg.get(module.type).params.get(cmd.param)
    if spec is None:
        params = ", ".join(reg.get(module.type).params)
        raise VTError("unknown_param", f"{cmd.module} ({module.type}) has no param {cmd.param!r}; params: {params}")
    value = spec.validate(cmd.module, cmd.param, cmd.value)
    old = module.params[cmd.param]
    if old == value and type(old) is type(value):
        return doc, []
    new_module = Module(module.type, module.params.set(cmd.param, value))
    return Document(doc.clock, doc.modules.set(cmd.module, new_module), doc.connections), [
        ("modules", cmd.module, "params", cmd.param)
    ]


def _check_link(doc: Document, src: str, dst: str, reg: Registry) -> None:
    smod, sport = src.split(".", 1)
    dmod, dport = dst.split(".", 1)
    stype = reg.get(_module(doc, smod).type)
    dtype = reg.get(_module(doc, dmod).type)
    if sport not in stype.outputs:
        outs = ", ".join(stype.outputs) or "none"
        raise VTError("unknown_port", f"{smod} ({stype.type_name}) has no output {sport!r}; outputs: {outs}")
    if dport not in dtype.input_ports():
        raise VTError(
            "unknown_port", f"{dmod} ({dtype.type_name}) has no input {dport!r}; inputs: {', '.join(dtype.input_ports())}"
        )


def connect(doc: Document, cmd: Connect, reg: Registry) -> tuple[Document, Changes]:
    _check_link(doc, cmd.src, cmd.dst, reg)
    key = (cmd.src, cmd.dst)
    if key in doc.connections:
        return doc, []
    return Document(doc.clock, doc.modules, doc.connections.add(key)), [("connections", cmd.src, cmd.dst)]


def disconnect(doc: Document, cmd: Disconnect, reg: Registry) -> tuple[Document, Changes]:
    key = (cmd.src, cmd.dst)
    if key not in doc.connections:
        _check_link(doc, cmd.src, cmd.dst, reg)  # say why if the names are wrong; else a no-op
        return doc, []
    return Document(doc.clock, doc.modules, doc.connections.remove(key)), [("connections", cmd.src, cmd.dst)]


def set_bpm(doc: Document, cmd: SetBpm) -> tuple[Document, Changes]:
    bpm = float(cmd.bpm)
    if not math.isfinite(bpm) or not BPM_MIN <= bpm <= BPM_MAX:
        raise VTError("invalid_value", f"bpm must be between {BPM_MIN:g} and {BPM_MAX:g}, got {cmd.bpm}")
    if bpm == doc.clock.bpm:
        return doc, []
    return Document(replace(doc.clock, bpm=bpm), doc.modules, doc.connections), [("clock", "bpm")]


def set_meter(doc: Document, cmd: SetMeter) -> tuple[Document, Changes]:
    """Beats per bar: what `@bar` and a pattern's default cycle count. Undoable, like bpm."""
    meter = cmd.meter
    if not METER_MIN <= meter <= METER_MAX:
        raise VTError("invalid_value", f"meter must be a whole number of beats from {METER_MIN} to {METER_MAX}, got {meter}")
    if meter == doc.clock.meter:
        return doc, []
    return Document(replace(doc.clock, meter=meter), doc.modules, doc.connections), [("clock", "meter")]


def set_link(doc: Document, cmd: SetLink) -> tuple[Document, Changes]:
    """Join or leave an Ableton Link session. Transport, like play: never undone.

    The timing process holds the Link peer (`vtkernel.engine.timing.link`);
    joining needs the `aalink` binding in this Python, checked here so the
    user gets one line instead of silence.
    """
    sync = doc.clock.link_sync if cmd.start_stop is None else cmd.start_stop
    sync = sync and cmd.link  # leaving the session stops sharing play/stop with it
    if cmd.link == doc.clock.link and sync == doc.clock.link_sync:
        return doc, []
    if cmd.link and importlib.util.find_spec("aalink") is None:
        raise VTError(
            "invalid_value", "Ableton Link needs the aalink package in the kernel's Python: pip install 'vtkernel[link]'"
        )
    changes: Changes = []
    if cmd.link != doc.clock.link:
        changes.append(("clock", "link"))
    if sync != doc.clock.link_sync:
        changes.append(("clock", "link_sync"))
    return Document(replace(doc.clock, link=cmd.link, link_sync=sync), doc.modules, doc.connections), changes


def set_playing(doc: Document, playing: bool) -> tuple[Document, Changes]:
    if doc.clock.playing == playing:
        return doc, []
    return Document(replace(doc.clock, playing=playing), doc.modules, doc.connections), [("clock", "playing")]


def _module(doc: Document, name: str) -> Module:
    module = doc.modules.get(name)
    if module is None:
        raise VTError("unknown_module", f"no module named {name!r}")
    return module


def _apply_batch(doc: Document, cmd: Batch, reg: Registry) -> tuple[Document, Changes]:
    changes: Changes = []
    for sub in cmd.commands:
        if isinstance(sub, (Undo, Redo, Batch)):
            raise VTError("invalid_command", f"{sub.op} cannot be inside a batch")
        doc, more = apply_to_document(doc, sub, reg)
        changes.extend(more)
    return doc, changes


def _load(doc: Document, cmd: LoadDocument, reg: Registry) -> tuple[Document, Changes]:
    new = doc.with_patch_of(cmd.document) if cmd.keep_transport else cmd.document
    return new, diff_paths(doc, new)


# One handler per op: a dict lookup on the command's class, not a chain of isinstance.
_HANDLERS: dict[type, Any] = {
    SetParam: set_param,
    AddModule: add_module,
    RemoveModule: lambda doc, cmd, reg: remove_module(doc, cmd),
    Connect: connect,
    Disconnect: disconnect,
    SetBpm: lambda doc, cmd, reg: set_bpm(doc, cmd),
    SetMeter: lambda doc, cmd, reg: set_meter(doc, cmd),
    SetLink: lambda doc, cmd, reg: set_link(doc, cmd),
    Play: lambda doc, cmd, reg: set_playing(doc, True),
    Stop: lambda doc, cmd, reg: set_playing(doc, False),
    Batch: _apply_batch,
    LoadDocument: _load,
}


def apply_to_document(doc: Document, cmd: Any, reg: Registry) -> tuple[Document, Changes]:
    """Apply one non-history command to a document."""
    handler = _HANDLERS.get(type(cmd))
    if handler is None:
        raise VTError("invalid_command", f"unsupported command {type(cmd).__name__}")
    result: tuple[Document, Changes] = handler(doc, cmd, reg)
    return result


def diff_paths(old: Document, new: Document) -> Changes:
    """Paths that differ between two documents (used when a whole document is replaced)."""
    changes: Changes = []
    for key in ("bpm", "playing", "meter", "link", "link_sync"):
        if getattr(old.clock, key) != getattr(new.clock, key):
            changes.append(("clock", key))
    if old.modules is not new.modules:
        for name in set(old.modules.keys()) | set(new.modules.keys()):
            a, b = old.modules.get(name), new.modules.get(name)
            if a != b:
                changes.append(("modules", name))
    if old.connections != new.connections:
        was, now = old.connections, new.connections
        differ = [k for k in was if k not in now] + [k for k in now if k not in was]
        # Few differences: name each (element ops); many: the whole list is the smaller delta.
        if len(differ) <= max(16, len(now) // 4):
            changes.extend(("connections", s, d) for s, d in differ)
        else:
            changes.append(("connections",))
    return changes


# --------------------------------------------------------------------------
# The whole edit state: undo/redo on top of the document operations
# --------------------------------------------------------------------------


def apply(state: EditState, cmd: Any, reg: Registry, origin: str = "api", now: float = 0.0) -> tuple[EditState, Changes]:
    """The engine's update step. Pure: returns a new state, or raises VTError and changes nothing."""
    if isinstance(cmd, Undo):
        return _undo(state)
    if isinstance(cmd, Redo):
        return _redo(state)
    doc, changes = apply_to_document(state.doc, cmd, reg)
    if not changes:
        return state, changes
    kind = type(cmd)
    if kind is LoadDocument and cmd.clear_history:
        return EditState(doc, None, None), changes
    if (
        kind is Play
        or kind is Stop
        or kind is SetLink
        or (kind is LoadDocument and not cmd.undoable)
        or (kind is Batch and all(p == ("clock", "playing") for p in changes))  # transport only
    ):
        return EditState(doc, state.undo, state.redo), changes
    key = (origin, cmd.module, cmd.param) if kind is SetParam else None
    top = state.undo.top if state.undo is not None else None
    if key is not None and top is not None and top.merge_key == key and now - top.time < UNDO_MERGE_SECONDS:
        # Same slider, same hand, moments apart: extend the last step instead of adding one.
        merged = UndoEntry(top.before, top.paths, origin, now, key)
        assert state.undo is not None
        return EditState(doc, Stack(merged, state.undo.rest, state.undo.depth), None), changes
    entry = UndoEntry(state.doc, tuple(changes), origin, now, key)
    return EditState(doc, _push(state.undo, entry), None), changes


def _step(source: Stack | None, target: Stack | None, doc: Document, word: str) -> tuple[Document, Stack | None, Stack, Changes]:
    """Move the top entry of `source` (undo or redo) to `target`: the patch it saved comes back."""
    if source is None:
        raise VTError("nothing_to_undo", f"nothing to {word}")
    entry = source.top
    back = UndoEntry(doc, entry.paths, entry.origin, entry.time)
    return doc.with_patch_of(entry.before), source.rest, _push(target, back), list(entry.paths)


def _undo(state: EditState) -> tuple[EditState, Changes]:
    doc, undo, redo, paths = _step(state.undo, state.redo, state.doc, "undo")
    return EditState(doc, undo, redo), paths


def _redo(state: EditState) -> tuple[EditState, Changes]:
    doc, redo, undo, paths = _step(state.redo, state.undo, state.doc, "redo")
    return EditState(doc, undo, redo), paths


# --------------------------------------------------------------------------
# Whole-document validation (sessions, load): the same rules as commands
# --------------------------------------------------------------------------


def validate_document(data: Any, reg: Registry) -> Document:
    """Validate a JSON document by replaying it as commands; raise VTError naming the field."""
    if not isinstance(data, Mapping):
        raise VTError("session_invalid", "the document must be a JSON object")
    extra = set(data) - {"version", "clock", "modules", "connections"}
    if extra:
        raise VTError("session_invalid", f"unknown document field {sorted(extra)[0]!r}")
    clock = data.get("clock", {})
    if not isinstance(clock, Mapping) or set(clock) - {"bpm", "playing", "meter", "link", "link_sync"}:
        raise VTError("session_invalid", "clock must be an object with bpm, playing, meter (and link, link_sync)")
    doc = Document()
    try:
        if "bpm" in clock:
            bpm = clock["bpm"]
            if isinstance(bpm, bool) or not isinstance(bpm, (int, float)):
                raise VTError("invalid_value", f"clock.bpm must be a number, got {bpm!r}"[:120])
            doc, _ = set_bpm(doc, SetBpm(bpm=bpm))
        playing = clock.get("playing", False)
        meter = clock.get("meter", 4)
        if not isinstance(playing, bool):
            raise VTError("invalid_value", "clock.playing must be true or false")
        if isinstance(meter, bool) or not isinstance(meter, int) or not METER_MIN <= meter <= METER_MAX:
            raise VTError("invalid_value", f"clock.meter must be an integer from {METER_MIN} to {METER_MAX}")
        link = clock.get("link", False)
        link_sync = clock.get("link_sync", False)
        if not isinstance(link, bool) or not isinstance(link_sync, bool):
            raise VTError("invalid_value", "clock.link and clock.link_sync must be true or false")
        doc = Document(Clock(doc.clock.bpm, playing, meter, link, link and link_sync), doc.modules, doc.connections)
        modules = data.get("modules", {})
        if not isinstance(modules, Mapping):
            raise VTError("invalid_value", "modules must be an object")
        for name, m in modules.items():
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise VTError("invalid_value", f"bad module name {name!r}")
            if not isinstance(m, Mapping) or set(m) - {"type", "params"} or not isinstance(m.get("type"), str):
                raise VTError("invalid_value", f"modules.{name} must be an object with type and params")
            params = m.get("params", {})
            if not isinstance(params, Mapping):
                raise VTError("invalid_value", f"modules.{name}.params must be an object")
            bad = find_unencodable(dict(params))
            if bad is not None:  # it could be sent to no client: every snapshot and delta would fail
                raise VTError("invalid_value", f"modules.{name}.params: a string holds a lone surrogate {bad!r}")
            # Name the exact field: in a file of thousands of modules the user needs the path.
            if m["type"] not in reg:
                raise VTError("unknown_type", f"modules.{name}.type: " + reg.get_error(m["type"]))
            spec = reg.get(m["type"]).params
            for pname in params:
                if pname not in spec:
                    where = pname if NAME_RE.fullmatch(pname) else repr(pname)  # a newline in it must not break the line
                    raise VTError(
                        "unknown_param",
                        f"modules.{name}.params.{where}: {m['type']} has no param {pname!r}; params: {', '.join(spec)}",
                    )
            try:
                doc, _ = add_module(doc, AddModule.model_construct(name=name, type=m["type"], params=dict(params)), reg)
            except VTError as exc:
                raise VTError(exc.code, f"modules.{name}: {exc.message}") from None
        conns = data.get("connections", [])
        if not isinstance(conns, list):
            raise VTError("invalid_value", "connections must be a list")
        for c in conns:
            if not isinstance(c, Mapping) or set(c) != {"src", "dst"}:
                raise VTError("invalid_value", f"bad connection {c!r}: expected {{src, dst}}")
            src, dst = c["src"], c["dst"]
            if not (isinstance(src, str) and isinstance(dst, str) and PORT_RE.fullmatch(src) and PORT_RE.fullmatch(dst)):
                raise VTError("invalid_value", f"bad connection {src!r} -> {dst!r}")
            doc, _ = connect(doc, Connect.model_construct(src=src, dst=dst), reg)
    except VTError as exc:
        raise VTError("session_invalid", f"invalid document: {exc.message}") from None
    return doc


def commands_for(doc: Document) -> Iterable[Any]:
    """Commands that build `doc` from an empty document (used by script generation and tests)."""
    if doc.clock.bpm != Clock().bpm:
        yield SetBpm(bpm=doc.clock.bpm)
    if doc.clock.meter != Clock().meter:
        yield SetMeter(meter=doc.clock.meter)
    for name, m in sorted(doc.modules.items()):
        yield AddModule(name=name, type=m.type, params={k: to_json(v) for k, v in m.params.items()})
    for src, dst in doc.sorted_connections():
        yield Connect(src=src, dst=dst)


__all__ = [
    "EditState",
    "LoadDocument",
    "apply",
    "apply_to_document",
    "commands_for",
    "diff_paths",
    "document_from_json",
    "validate_document",
]
