"""A client's copy of the document: snapshots, RFC 6902 deltas, and one-line change descriptions.

Pure (no I/O, no threads, no Jupyter), so the protocol rules a shell relies on
are tested without a kernel:

- `apply_patch` applies `add`/`remove`/`replace` (plus `move`/`copy`/`test`)
  without mutating its input: containers along each op's path are copied,
  the rest is shared, so a reader holding the old document never sees a
  half-applied delta;
- `Mirror.apply` accepts a delta only if its `base` is the version held, and
  returns `None` on a gap (the caller then sends `resync`);
- `describe` turns the ops of one delta into short lines such as
  `lfo1.rate = 3.0`, each with a key (`lfo1.rate`, `lfo1`, `clock.bpm`,
  `connection lfo1.out lfo2.rate`) used to recognise a shell's own changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class PatchError(ValueError):
    """A delta that does not fit the document it claims to patch."""


def parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"bad JSON pointer {pointer!r}")
    return [seg.replace("~1", "/").replace("~0", "~") for seg in pointer[1:].split("/")]


def _index(container: list[Any], seg: str, *, insert: bool) -> int:
    if insert and seg == "-":
        return len(container)
    if not seg.isdigit() or (len(seg) > 1 and seg[0] == "0"):
        raise PatchError(f"bad array index {seg!r}")
    i = int(seg)
    if i > len(container) or (not insert and i == len(container)):
        raise PatchError(f"array index {i} out of range")
    return i


def _get(doc: Any, parts: list[str]) -> Any:
    node = doc
    for seg in parts:
        if isinstance(node, dict):
            if seg not in node:
                raise PatchError(f"no member {seg!r}")
            node = node[seg]
        elif isinstance(node, list):
            node = node[_index(node, seg, insert=False)]
        else:
            raise PatchError(f"cannot descend into {type(node).__name__} at {seg!r}")
    return node


def _with_parent(doc: Any, parts: list[str], edit: Any) -> Any:
    """Return a copy of `doc` in which `edit(parent_copy, last_segment)` has been applied."""
    if not parts:
        raise PatchError("the root cannot be edited this way")
    root = _shallow(doc)
    node = root
    for seg in parts[:-1]:
        if isinstance(node, dict):
            if seg not in node:
                raise PatchError(f"no member {seg!r}")
            child = node[seg] = _shallow(node[seg])
        elif isinstance(node, list):
            i = _index(node, seg, insert=False)
            child = node[i] = _shallow(node[i])
        else:
            raise PatchError(f"cannot descend into {type(node).__name__} at {seg!r}")
        node = child
    edit(node, parts[-1])
    return root


def _shallow(node: Any) -> Any:
    if isinstance(node, dict):
        return dict(node)
    if isinstance(node, list):
        return list(node)
    raise PatchError(f"cannot descend into {type(node).__name__}")


def _add(value: Any) -> Any:
    def edit(parent: Any, seg: str) -> None:
        if isinstance(parent, dict):
            parent[seg] = value
        else:
            parent.insert(_index(parent, seg, insert=True), value)

    return edit


def _remove(parent: Any, seg: str) -> None:
    if isinstance(parent, dict):
        if seg not in parent:
            raise PatchError(f"no member {seg!r} to remove")
        del parent[seg]
    else:
        del parent[_index(parent, seg, insert=False)]


def _replace(value: Any) -> Any:
    def edit(parent: Any, seg: str) -> None:
        if isinstance(parent, dict):
            if seg not in parent:
                raise PatchError(f"no member {seg!r} to replace")
            parent[seg] = value
        else:
            parent[_index(parent, seg, insert=False)] = value

    return edit


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply RFC 6902 `ops` to `doc` and return the new document; `doc` is left untouched."""
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError(f"bad patch operation {op!r}")
        kind = op.get("op")
        parts = parse_pointer(op["path"])
        if kind in ("add", "replace") and not parts:
            doc = op["value"]
        elif kind == "add":
            doc = _with_parent(doc, parts, _add(op["value"]))
        elif kind == "remove":
            doc = _with_parent(doc, parts, _remove)
        elif kind == "replace":
            doc = _with_parent(doc, parts, _replace(op["value"]))
        elif kind in ("move", "copy"):
            src = parse_pointer(op["from"])
            value = _get(doc, src)
            if kind == "move":
                doc = _with_parent(doc, src, _remove)
            doc = _with_parent(doc, parts, _add(value)) if parts else value
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise PatchError(f"test failed at {op['path']}")
        else:
            raise PatchError(f"unknown patch op {kind!r}")
    return doc


# --------------------------------------------------------------------------
# Describing changes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change of one delta, as a short line, with a key naming what it touched."""

    key: str
    text: str


def show(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= 60 else text[:57] + "..."


def _clock_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name == "playing":
            out.append(Change("clock.playing", "play" if after.get(name) else "stop"))
        else:
            out.append(Change(f"clock.{name}", f"{name} = {show(after.get(name))}"))
    return out


def _connection_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[Change]:
    old = {(c.get("src"), c.get("dst")) for c in before or []}
    new = {(c.get("src"), c.get("dst")) for c in after or []}
    out = [Change(f"connection {s} {d}", f"disconnect {s} {d}") for s, d in sorted(old - new)]
    out += [Change(f"connection {s} {d}", f"connect {s} {d}") for s, d in sorted(new - old)]
    return out


def _param_changes(module: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    return [
        Change(f"{module}.{p}", f"{module}.{p} = {show(after[p])}")
        for p in after
        if p not in before or before[p] != after[p]
    ]


def describe(before: dict[str, Any], after: dict[str, Any], ops: list[dict[str, Any]]) -> list[Change]:
    """Short lines for the ops of one delta (values are read from `after`, the patched document)."""
    out: list[Change] = []
    for op in ops:
        try:
            parts = parse_pointer(op.get("path", ""))
        except PatchError:
            continue
        head = parts[0] if parts else ""
        if head == "modules" and len(parts) >= 2:
            name = parts[1]
            old = (before.get("modules") or {}).get(name)
            new = (after.get("modules") or {}).get(name)
            if new is None:
                out.append(Change(name, f"rm {name}"))
            elif old is None:
                out.append(Change(name, f"add {name} {new.get('type')}"))
            elif old.get("type") != new.get("type"):
                out.append(Change(name, f"replace {name} with a {new.get('type')}"))
            else:
                out.extend(_param_changes(name, old.get("params") or {}, new.get("params") or {}))
        elif head == "modules":
            old_mods = before.get("modules") or {}
            new_mods = after.get("modules") or {}
            for name in sorted(set(old_mods) - set(new_mods)):
                out.append(Change(name, f"rm {name}"))
            for name in sorted(new_mods):
                if name not in old_mods:
                    out.append(Change(name, f"add {name} {new_mods[name].get('type')}"))
                else:
                    out.extend(
                        _param_changes(name, old_mods[name].get("params") or {}, new_mods[name].get("params") or {})
                    )
        elif head == "connections":
            out.extend(_connection_changes(before.get("connections") or [], after.get("connections") or []))
        elif head == "clock":
            out.extend(_clock_changes(before.get("clock") or {}, after.get("clock") or {}))
        else:
            out.append(Change(op.get("path", ""), f"{op.get('op')} {op.get('path')}"))
    return list(dict.fromkeys(out))  # a coalesced delta may name one thing twice


# --------------------------------------------------------------------------
# The mirror
# --------------------------------------------------------------------------


class Mirror:
    """The newest document a client holds, and its version.

    Owner: one thread applies snapshots and deltas; other threads may read
    `doc` and `version` at any time (each delta swaps in a new document).
    """

    def __init__(self) -> None:
        self.version: int | None = None
        self.doc: dict[str, Any] = {}
        self.schema: dict[str, Any] = {}

    @property
    def ready(self) -> bool:
        return self.version is not None

    def load(self, msg: dict[str, Any]) -> None:
        self.doc = msg["state"]
        self.version = msg["version"]

    def apply(self, msg: dict[str, Any]) -> list[Change] | None:
        """Apply a delta and describe it; `None` means a gap or a bad patch: resync."""
        if self.version is None or msg.get("base") != self.version:
            return None
        before = self.doc
        try:
            after = apply_patch(before, msg.get("ops") or [])
        except (PatchError, KeyError, TypeError):
            return None
        self.doc, self.version = after, msg["version"]
        return describe(before, after, msg.get("ops") or [])

    # ----- names for completion -------------------------------------------------

    def modules(self) -> dict[str, Any]:
        return dict(self.doc.get("modules") or {})

    def params(self) -> list[str]:
        return [f"{m}.{p}" for m, mod in self.modules().items() for p in (mod.get("params") or {})]

    def outputs(self) -> list[str]:
        out = []
        for name, mod in self.modules().items():
            spec = self.schema.get(mod.get("type"), {})
            out += [f"{name}.{port}" for port in spec.get("outputs", ["out"])]
        return out

    def inputs(self) -> list[str]:
        out = []
        for name, mod in self.modules().items():
            spec = self.schema.get(mod.get("type"), {})
            ports = spec.get("inputs") or list(mod.get("params") or {})
            out += [f"{name}.{port}" for port in ports]
        return out

    def connections(self) -> list[tuple[str, str]]:
        return [(c["src"], c["dst"]) for c in self.doc.get("connections") or []]
