"""The immutable, versioned document and its read-only views.

A `Document` is a frozen value: clock, modules and connections. Modules live
in a HAMT (`immutables.Map`) and connections in `Connections` (HAMTs plus a
chunked sorted order), so a new document shares all but the changed path
with the old one: publishing a version costs what the change costs, not the
size of the document.

A `Snapshot` is a published document plus its version, the changes that
produced it and their origin. It is a read-only `Mapping` shaped like the
JSON document, so `snap["modules"]["lfo1"]["params"]["rate"]` works, and it
is safe to hand to any thread: nothing in it can change.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import immutables

from vtkernel.jsonpatch import MISSING, from_json, to_json

# A path into the JSON document, as JSON-Pointer segments, e.g.
# ("modules", "lfo1", "params", "rate"). Changes are recorded as paths; the
# hub renders them into RFC 6902 ops against the client's base. One exception:
# a connection is named by its key, ("connections", SRC, DST), because its
# index in the sorted list depends on the document; `render_ops` turns it into
# an `add`/`remove` at `/connections/INDEX`.
Path = tuple[str, ...]
ConnKey = tuple[str, str]  # (src, dst), e.g. ("lfo1.out", "lfo2.rate")


@dataclass(frozen=True, slots=True)
class Clock:
    bpm: float = 120.0
    playing: bool = False
    meter: int = 4
    link: bool = False  # in an Ableton Link session (SPEC §10); written out only when on
    link_sync: bool = False  # ... and sharing play/stop with it (Link's start/stop sync); only when on

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bpm": self.bpm, "playing": self.playing, "meter": self.meter}
        if self.link:
            out["link"] = True
        if self.link_sync:
            out["link_sync"] = True
        return out


class Module(NamedTuple):
    """One module: its type and params. A NamedTuple: immutable, and cheap to build on the hot path."""

    type: str
    params: immutables.Map[str, Any]

    def to_json(self) -> dict[str, Any]:
        # Sorted: a HAMT's order varies with history, and `%vt state` should read the same every time.
        return {"type": self.type, "params": {k: to_json(v) for k, v in sorted(self.params.items())}}


EMPTY_MAP: immutables.Map[Any, Any] = immutables.Map()
_CHUNK = 64  # keys per chunk of the sorted order: an edit copies one chunk and the chunk index


class Connections:
    """The set of connections: immutable, sorted by (src, dst), indexed by module.

    - membership: a HAMT of keys, O(log n);
    - order: sorted chunks of at most 2x64 keys, so `index` (a key's position
      in the sorted list the JSON document shows) is two bisects, and an edit
      copies one chunk plus the chunk index (n/64 entries), not the list;
    - `of_module(name)`: a module's own connections from a HAMT of HAMTs, so
      removing a module costs its connections, not all of them.

    Iterating yields keys in sorted order; `keys()` is the same (it stands in
    for the HAMT this replaced).
    """

    __slots__ = ("_by_module", "_chunks", "_maxes", "_offsets", "_set")

    def __init__(self, keys: Iterable[ConnKey] = ()) -> None:
        ordered = sorted(set(keys))
        chunks = tuple(tuple(ordered[i : i + _CHUNK]) for i in range(0, len(ordered), _CHUNK))
        own: dict[str, list[ConnKey]] = {}
        for key in ordered:
            for name in _owners(key):
                own.setdefault(name, []).append(key)
        keyset: immutables.Map[ConnKey, bool] = immutables.Map((k, True) for k in ordered)
        by_module: immutables.Map[str, immutables.Map[ConnKey, bool]] = immutables.Map(
            (name, immutables.Map((k, True) for k in ks)) for name, ks in own.items()
        )
        self._init(keyset, chunks, by_module)

    def _init(
        self,
        keyset: immutables.Map[ConnKey, bool],
        chunks: tuple[tuple[ConnKey, ...], ...],
        by_module: immutables.Map[str, immutables.Map[ConnKey, bool]],
    ) -> None:
        self._set = keyset
        self._chunks = chunks
        self._maxes = tuple(c[-1] for c in chunks)
        offsets, total = [], 0
        for c in chunks:
            offsets.append(total)
            total += len(c)
        self._offsets = tuple(offsets)
        self._by_module = by_module

    @classmethod
    def _make(
        cls,
        keyset: immutables.Map[ConnKey, bool],
        chunks: tuple[tuple[ConnKey, ...], ...],
        by_module: immutables.Map[str, immutables.Map[ConnKey, bool]],
    ) -> Connections:
        new = cls.__new__(cls)
        new._init(keyset, chunks, by_module)
        return new

    # ----- reading ----------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def __len__(self) -> int:
        return len(self._set)

    def __bool__(self) -> bool:
        return len(self._set) > 0

    def __iter__(self) -> Iterator[ConnKey]:
        for chunk in self._chunks:
            yield from chunk

    def keys(self) -> Iterator[ConnKey]:
        return iter(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Connections):
            return self._set == other._set
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._set)

    def __repr__(self) -> str:
        return f"Connections({list(self)!r})"

    def index(self, key: ConnKey) -> int:
        """The position of `key` in the sorted list (it must be present). O(log n)."""
        c = bisect.bisect_left(self._maxes, key)
        chunk = self._chunks[c]
        i = bisect.bisect_left(chunk, key)
        if i == len(chunk) or chunk[i] != key:
            raise KeyError(key)
        return self._offsets[c] + i

    def of_module(self, name: str) -> list[ConnKey]:
        """The connections from or to module `name`, sorted. Costs their number, not all connections."""
        own = self._by_module.get(name)
        return [] if own is None else sorted(own.keys())

    # ----- edits (each returns a new set) -------------------------------------

    def add(self, key: ConnKey) -> Connections:
        if key in self._set:
            return self
        chunks = self._chunks
        if not chunks:
            return Connections._make(self._set.set(key, True), ((key,),), self._index_add(key))
        c = min(bisect.bisect_left(self._maxes, key), len(chunks) - 1)
        chunk = list(chunks[c])
        bisect.insort(chunk, key)
        pieces = (tuple(chunk),) if len(chunk) <= 2 * _CHUNK else (tuple(chunk[:_CHUNK]), tuple(chunk[_CHUNK:]))
        return Connections._make(self._set.set(key, True), chunks[:c] + pieces + chunks[c + 1 :], self._index_add(key))

    def remove(self, key: ConnKey) -> Connections:
        return self.remove_all([key]) if key in self._set else self

    def remove_all(self, keys: Iterable[ConnKey]) -> Connections:
        """Without `keys` (those present). Copies only the chunks they are in."""
        present = sorted(k for k in set(keys) if k in self._set)
        if not present:
            return self
        chunks = list(self._chunks)
        touched: dict[int, list[ConnKey]] = {}
        for key in present:
            c = bisect.bisect_left(self._maxes, key)
            touched.setdefault(c, []).append(key)
        for c, gone in touched.items():
            drop = set(gone)
            chunks[c] = tuple(k for k in chunks[c] if k not in drop)
        keyset = self._set
        by_module = self._by_module
        with keyset.mutate() as ks, by_module.mutate() as bm:
            for key in present:
                del ks[key]
                for name in _owners(key):
                    own = bm[name].delete(key)
                    if own:
                        bm[name] = own
                    else:
                        del bm[name]
            keyset, by_module = ks.finish(), bm.finish()
        return Connections._make(keyset, tuple(c for c in chunks if c), by_module)

    def _index_add(self, key: ConnKey) -> immutables.Map[str, immutables.Map[ConnKey, bool]]:
        by_module = self._by_module
        for name in _owners(key):
            by_module = by_module.set(name, by_module.get(name, EMPTY_MAP).set(key, True))
        return by_module


def _owners(key: ConnKey) -> tuple[str, ...]:
    src, dst = key[0].split(".", 1)[0], key[1].split(".", 1)[0]
    return (src,) if src == dst else (src, dst)


EMPTY_CONNECTIONS = Connections()


class Document(NamedTuple):
    """The versioned document: clock, modules, connections. Immutable (a NamedTuple of HAMTs).

    A NamedTuple rather than a frozen dataclass: every command builds one, and
    a NamedTuple is built in about half the time (0.18 vs 0.35 µs, measured).
    """

    clock: Clock = Clock()
    modules: immutables.Map[str, Module] = EMPTY_MAP
    connections: Connections = EMPTY_CONNECTIONS

    def sorted_connections(self) -> list[ConnKey]:
        return list(self.connections)

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
            if len(path) == 3:
                return {"src": path[1], "dst": path[2]} if (path[1], path[2]) in self.connections else MISSING
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
            return to_json(module.params.get(path[3], MISSING))
        return MISSING

    def with_patch_of(self, other: Document) -> Document:
        """This document's transport with `other`'s patch (modules, connections, bpm, meter).

        Undo and redo use it: they restore the patch, never the transport
        (playing, and membership of a Link session).
        """
        return Document(
            clock=replace(other.clock, playing=self.clock.playing, link=self.clock.link, link_sync=self.clock.link_sync),
            modules=other.modules,
            connections=other.connections,
        )


def document_from_json(data: Mapping[str, Any]) -> Document:
    """Build a Document from already-validated JSON (see `apply.validate_document`)."""
    clock = data.get("clock", {})
    modules = immutables.Map(
        {
            name: Module(m["type"], immutables.Map({k: from_json(v) for k, v in m.get("params", {}).items()}))
            for name, m in data.get("modules", {}).items()
        }
    )
    connections = Connections((c["src"], c["dst"]) for c in data.get("connections", []))
    return Document(
        Clock(
            float(clock.get("bpm", 120.0)),
            bool(clock.get("playing", False)),
            int(clock.get("meter", 4)),
            bool(clock.get("link", False)),
            bool(clock.get("link_sync", False)),
        ),
        modules,
        connections,
    )


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
    params = _View(lambda: sorted(m.params.keys()), lambda k: to_json(m.params[k]))

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
            return _View(lambda: tuple(doc.clock.to_json()), lambda k: doc.clock.to_json()[k])
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
