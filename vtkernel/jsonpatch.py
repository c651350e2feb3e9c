"""JSON Pointer (RFC 6901) and JSON Patch (RFC 6902) on plain JSON values: the one implementation.

The engine renders its deltas with it, the scheduler process applies them to
its copy of the patch, and the shells apply them to their mirrors, so every
Python reader of the protocol agrees on what a pointer and an op mean. Pure
standard library (no engine, no pydantic): `shells/` may import it.

- `MISSING` is the one "no value here" sentinel. It survives `copy.deepcopy`,
  so identity checks keep working on copied documents.
- `apply_patch(doc, ops)` returns a new document and leaves `doc` untouched:
  containers along each op's path are copied, the rest is shared, so a reader
  holding the old document never sees a half-applied delta.
- `apply_in_place(doc, ops)` edits `doc` itself, for an owner of a private
  copy (the scheduler's renderer), where copying would cost O(size).
- Arrays take indices and `-` as RFC 6902 says: `add` inserts before the
  index, `remove` shifts the rest down. The engine's connection deltas are
  such element ops on the sorted `connections` list.
- `to_json`/`from_json` convert the engine's frozen values (tuples) to JSON
  lists and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Segs = tuple[str, ...]


class _Missing:
    """The sentinel for "no value here"; copies of it are itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Missing:
        return self

    def __reduce__(self) -> str:
        return "MISSING"  # unpickles as this module's MISSING


MISSING: Any = _Missing()


class PatchError(ValueError):
    """A pointer or an op that does not fit the document it claims to patch."""


# ----- pointers ---------------------------------------------------------------


def encode_pointer(segs: Iterable[str]) -> str:
    """`("modules", "a/b")` -> `/modules/a~1b`."""
    return "".join("/" + seg.replace("~", "~0").replace("/", "~1") for seg in segs)


def decode_pointer(pointer: str) -> Segs:
    """`/modules/a~1b` -> `("modules", "a/b")`; `""` is the root, `()`."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise PatchError(f"bad JSON pointer {pointer!r}")
    return tuple(seg.replace("~1", "/").replace("~0", "~") for seg in pointer[1:].split("/"))


def _index(container: list[Any], seg: str, *, insert: bool) -> int:
    if insert and seg == "-":
        return len(container)
    if not seg.isdigit() or (len(seg) > 1 and seg[0] == "0"):
        raise PatchError(f"bad array index {seg!r}")
    i = int(seg)
    if i > len(container) or (not insert and i == len(container)):
        raise PatchError(f"array index {i} out of range")
    return i


def get(doc: Any, segs: Iterable[str]) -> Any:
    """The value at `segs`, or `MISSING` if any step is absent."""
    node = doc
    for seg in segs:
        if isinstance(node, dict):
            node = node.get(seg, MISSING)
            if node is MISSING:
                return MISSING
        elif isinstance(node, list):
            try:
                node = node[_index(node, seg, insert=False)]
            except PatchError:
                return MISSING
        else:
            return MISSING
    return node


def _child(node: Any, seg: str) -> Any:
    if isinstance(node, dict):
        if seg not in node:
            raise PatchError(f"no member {seg!r}")
        return node[seg]
    if isinstance(node, list):
        return node[_index(node, seg, insert=False)]
    raise PatchError(f"cannot descend into {type(node).__name__} at {seg!r}")


def _edit(parent: Any, kind: str, seg: str, value: Any) -> None:
    """One op on the container that holds the target."""
    if isinstance(parent, dict):
        if kind == "add":
            parent[seg] = value
        elif seg not in parent:
            raise PatchError(f"no member {seg!r} to {kind}")
        elif kind == "remove":
            del parent[seg]
        else:
            parent[seg] = value
    elif isinstance(parent, list):
        if kind == "add":
            parent.insert(_index(parent, seg, insert=True), value)
        elif kind == "remove":
            del parent[_index(parent, seg, insert=False)]
        else:
            parent[_index(parent, seg, insert=False)] = value
    else:
        raise PatchError(f"cannot descend into {type(parent).__name__} at {seg!r}")


def _check(op: Any) -> tuple[str, Segs]:
    if not isinstance(op, Mapping) or "path" not in op:
        raise PatchError(f"bad patch operation {op!r}")
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise PatchError(f"unknown patch op {kind!r}")
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"{kind} at {op['path']!r} has no value")
    return kind, decode_pointer(op["path"])


# ----- copy-on-write ------------------------------------------------------------


def _shallow(node: Any) -> Any:
    if isinstance(node, dict):
        return dict(node)
    if isinstance(node, list):
        return list(node)
    raise PatchError(f"cannot descend into {type(node).__name__}")


def _with_edit(doc: Any, segs: Segs, kind: str, value: Any) -> Any:
    """A copy of `doc` with one op applied; only the containers along `segs` are copied."""
    if not segs:
        if kind == "remove":
            raise PatchError("the root cannot be removed")
        return value
    root = _shallow(doc)
    node = root
    for seg in segs[:-1]:
        child = _shallow(_child(node, seg))
        if isinstance(node, dict):
            node[seg] = child
        else:
            node[_index(node, seg, insert=False)] = child
        node = child
    _edit(node, kind, segs[-1], value)
    return root


def apply_patch(doc: Any, ops: Iterable[Mapping[str, Any]]) -> Any:
    """Apply RFC 6902 `ops` to `doc` and return the new document; `doc` is left untouched."""
    for op in ops:
        kind, segs = _check(op)
        if kind in ("add", "replace", "remove"):
            doc = _with_edit(doc, segs, kind, op.get("value"))
        elif kind in ("move", "copy"):
            src = decode_pointer(op["from"])
            value = get(doc, src)
            if value is MISSING:
                raise PatchError(f"nothing at {op['from']!r} to {kind}")
            if kind == "move":
                doc = _with_edit(doc, src, "remove", None)
            doc = _with_edit(doc, segs, "add", value)
        elif get(doc, segs) != op.get("value"):
            raise PatchError(f"test failed at {op['path']}")
    return doc


# ----- in place -----------------------------------------------------------------


def apply_in_place(doc: Any, ops: Iterable[Mapping[str, Any]]) -> None:
    """Apply `add`/`remove`/`replace` ops to `doc` itself (its owner's private copy).

    Values are inserted as given: the caller copies them if it must not share.
    Raises `PatchError` on the first op that does not fit; earlier ops stay applied.
    """
    for op in ops:
        kind, segs = _check(op)
        if not segs or kind not in ("add", "remove", "replace"):
            raise PatchError(f"{kind} at {op['path']!r} cannot be applied in place")
        node = doc
        for seg in segs[:-1]:
            node = _child(node, seg)
        _edit(node, kind, segs[-1], op.get("value"))


# ----- frozen values --------------------------------------------------------------


def to_json(value: Any) -> Any:
    """An engine value as JSON: a tuple (a frozen list) becomes a list."""
    return list(value) if isinstance(value, tuple) else value


def from_json(value: Any) -> Any:
    """A JSON value frozen for the engine's immutable document: a list becomes a tuple."""
    return tuple(value) if isinstance(value, list) else value
