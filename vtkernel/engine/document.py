"""The immutable, versioned document and its read-only views.

A `Document` is a frozen value: clock, modules and connections. Modules and
connections live in HAMTs (`immutables.Map`), so a new document shares all
but the changed path with the old one: publishing a version costs what the
change costs (O(log n)), not the size of the document.

A `Snapshot` is a published document plus its version, the changes that
produced it and their origin. It is a read-only `Mapping` shaped like the
JSON document, so `snap["modules"]["lfo1"]["params"]["rate"]` works, and it
is safe to hand to any thread: nothing in it can change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import immutables

# A path into the JSON document, as JSON-Pointer segments, e.g.
# ("modules", "lfo1", "params", "rate"). Changes are recorded as paths; the
# hub renders them into RFC 6902 ops against the client's base.
Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Clock:
    bpm: float = 120.0
    playing: bool = False
    meter: int = 4

    def to_json(self) -> dict[str, Any]:
        return {"bpm": self.bpm, "playing": self.playing, "meter": self.meter}


class Module(NamedTuple):
    """One module: its type and params. A NamedTuple: immutable, and cheap to build on the hot path."""

    type: str
    params: immutables.Map[str, Any]

    def to_json(self) -> dict[str, Any]:
        # Sorted: a HAMT's order varies with history, and `%vt state` should read the same every time.
        return {"type": self.type, "params": {k: _json_value(v) for k, v in sorted(self.params.items())}}


def _json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


EMPTY_MAP: immutables.Map[Any, Any] = immutables.Map()


class Document(NamedTuple):
    """The versioned document: clock, modules, connections. Immutable (a NamedTuple of HAMTs).

    A NamedTuple rather than a frozen dataclass: every command builds one, and
    a NamedTuple is built in about half the time (0.18 vs 0.35 µs, measured).
    """

    clock: Clock = Clock()
    modules: immutables.Map[str, Module] = EMPTY_MAP
    # Keys are (src, dst); the value is unused. Sorted only when written out.
    connections: immutables.Map[tuple[str, str], bool] = EMPTY_MAP

    def sorted_connections(self) -> list[tuple[str, str]]:
        return sorted(self.connections.keys())

    def to_json(self, version: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {} if version is None else {"version": version}
        out["clock"] = self.clock.to_json()
        out["modules"] = {name: m.to_json() for name, m in sorted(self.modules.items())}
        out["connections"] = [{"src": s, "dst": d} for s, d in self.sorted_connections()]
        return out

    def get_path(self, path: Path) -> Any:
        """The JSON value at `path`, or `MISSING`. Cost is O(depth), not O(size)."""
        head = path[0]
        if head == "clock":
            return self.clock.to_json() if len(path) == 1 else self.clock.to_json().get(path[1], MISSING)
        if head == "connections":
            return [{"src": s, "dst": d} for s, d in self.sorted_connections()]
        if head == "modules":
            if len(path) == 1:
                return {name: m.to_json() for name, m in sorted(self.modules.items())}
            module = self.modules.get(path[1])
            if module is None:
                return MISSING
            if len(path) == 2:
                return module.to_json()
            if path[2] == "type":
                return module.type
            if len(path) == 3:
                return module.to_json()["params"]
            value = module.params.get(path[3], MISSING)
            return value if value is MISSING else _json_value(value)
        return MISSING

    def with_patch_of(self, other: Document) -> Document:
        """This document's transport with `other`'s patch (modules, connections, bpm, meter).

        Undo and redo use it: they restore the patch, never the transport.
        """
        return Document(
            clock=replace(other.clock, playing=self.clock.playing),
            modules=other.modules,
            connections=other.connections,
        )


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def document_from_json(data: Mapping[str, Any]) -> Document:
    """Build a Document from already-validated JSON (see `apply.validate_document`)."""
    clock = data.get("clock", {})
    modules = immutables.Map(
        {
            name: Module(m["type"], immutables.Map({k: _freeze(v) for k, v in m.get("params", {}).items()}))
            for name, m in data.get("modules", {}).items()
        }
    )
    connections = immutables.Map({(c["src"], c["dst"]): True for c in data.get("connections", [])})
    return Document(
        Clock(float(clock.get("bpm", 120.0)), bool(clock.get("playing", False)), int(clock.get("meter", 4))),
        modules,
        connections,
    )


def _freeze(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


@dataclass(frozen=True, slots=True)
class Change:
    """What one version changed: the paths touched, by whom, when."""

    version: int
    paths: tuple[Path, ...]
    origin: str
    time: float  # time.time() when published
    summary: str = ""
    # Paths whose *sound* waits for the next step/beat/bar (`quantize` on the command);
    # the state changes at once. Read by the scheduler process.
    quantize: tuple[tuple[Path, str], ...] = ()


class _View(Mapping[str, Any]):
    """A read-only mapping over part of a snapshot, built lazily on access."""

    __slots__ = ("_get", "_keys")

    def __init__(self, keys: Any, get: Any) -> None:
        self._keys = keys
        self._get = get

    def __getitem__(self, key: str) -> Any:
        return self._get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return sum(1 for _ in self._keys())

    def __repr__(self) -> str:
        return repr(dict(self))


def _module_view(m: Module) -> Mapping[str, Any]:
    params = _View(lambda: m.params.keys(), lambda k: _json_value(m.params[k]))

    def get(k: str) -> Any:
        if k == "type":
            return m.type
        if k == "params":
            return params
        raise KeyError(k)

    return _View(lambda: ("type", "params"), get)


@dataclass(frozen=True, slots=True)
class Snapshot(Mapping[str, Any]):
    """A published version: immutable, shareable across threads, shaped like the document."""

    version: int
    doc: Document
    change: Change | None = None

    def __getitem__(self, key: str) -> Any:
        doc = self.doc
        if key == "version":
            return self.version
        if key == "clock":
            return _View(lambda: ("bpm", "playing", "meter"), lambda k: doc.clock.to_json()[k])
        if key == "modules":
            return _View(lambda: sorted(doc.modules.keys()), lambda k: _module_view(doc.modules[k]))
        if key == "connections":
            return tuple({"src": s, "dst": d} for s, d in doc.sorted_connections())
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("version", "clock", "modules", "connections"))

    def __len__(self) -> int:
        return 4

    def __hash__(self) -> int:
        return hash((self.version, id(self.doc)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Snapshot):
            return self.version == other.version and self.doc == other.doc
        return Mapping.__eq__(self, other)

    def to_json(self) -> dict[str, Any]:
        return self.doc.to_json(self.version)

    def to_json_text(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent)

    def __repr__(self) -> str:
        return f"<vt snapshot v{self.version}: {len(self.doc.modules)} modules, {len(self.doc.connections)} connections>"
